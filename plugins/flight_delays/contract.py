"""The model's contract, shared by the Spark jobs, the registry, the benchmarks and the tests: the
pipeline's names, the label, the feature columns and the MLflow tag that links a model to the
SparkApplication that trained it. Plain values only (no pyspark), importable anywhere.
"""

from __future__ import annotations

#: The DAG that runs the pipeline.
DAG_ID = "flight_delay_retraining"
EXPERIMENT_NAME = "flight-delays"
#: One experiment and one registered model: versions from either trainer compete for `champion`.
MODEL_NAME = "flight-delays"

#: A flight is delayed when it arrives this many minutes late or more.
DELAY_THRESHOLD_MINUTES = 15
LABEL_COLUMN = "is_delayed"

CARRIERS = ("9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV")
ORIGINS = ("EWR", "JFK", "LGA")
WEATHER_COLUMNS = ("temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib")
#: (feature name, grouping keys) of the rolling delay rates over earlier days.
HISTORY_RATES = (
    ("carrier_delay_rate", ("carrier",)),
    ("route_delay_rate", ("origin", "dest")),
    ("origin_hour_delay_rate", ("origin", "hour")),
)
#: The columns that identify a flight in the feature table.
KEY_COLUMNS = ("date", "carrier", "flight", "origin", "dest", "sched_dep_time")
#: What the model reads, in this order: only what is known before departure.
FEATURE_COLUMNS = (
    "month", "day_of_week", "sched_dep_hour", "sched_dep_minute", "sched_arr_hour", "distance",
    "carrier_code", "origin_code", *WEATHER_COLUMNS, "plane_age", "seats", "engines",
    *(name for name, _ in HISTORY_RATES),
)

#: The MLflow run tag that names the SparkApplication that trained the model: how the registration
#: task finds the training's run.
APPLICATION_TAG = "spark_application"
