"""The DAG's Params: the typed trigger form (JSON Schema), one title, description and bound each.

Airflow refuses a bad value naming the param, at the form and through the REST API; the
``preflight`` task then checks what a schema cannot (:mod:`flight_delays.preflight`).
"""

from __future__ import annotations

from airflow.sdk import Param

PARAMS = {
    "window_days": Param(28, type="integer", minimum=7, maximum=120, title="Training window (days)",
                         description="Days of features the model trains and tests on, "
                                     "ending on the run's day."),
    "test_days": Param(3, type="integer", minimum=1, maximum=14, title="Test days",
                       description="The last days of the window, held out for the test metrics "
                                   "and for comparing the new model with the champion."),
    "validation_days": Param(3, type="integer", minimum=1, maximum=14, title="Validation days",
                             description="The days before the test days: early stopping watches "
                                         "their log loss."),
    "history_days": Param(14, type="integer", minimum=1, maximum=60, title="History (days)",
                          description="Earlier days behind the rolling delay-rate features."),
    "validation_engine": Param("pandas", type="string", enum=["pandas", "spark"],
                               title="Validation engine",
                               description="pandas: in the Airflow worker (a day is ~1,000 flights). "
                                           "spark: as a SparkApplication, for partitions too large "
                                           "for one worker. Same suites, same gate."),
    "trainer": Param("xgboost", type="string", enum=["xgboost", "torch"], title="Trainer",
                     description="xgboost: XGBoost on Spark. torch: a PyTorch network trained "
                                 "with Spark's TorchDistributor."),
    "device": Param("cpu", type="string", enum=["cpu", "cuda"], title="Training device",
                    description="cuda needs GPU executors (Kubernetes GPU profile)."),
    "num_workers": Param(2, type="integer", minimum=1, maximum=64, title="XGBoost workers",
                         description="Spark tasks training in parallel."),
    "n_estimators": Param(200, type="integer", minimum=10, maximum=5000, title="Boosting rounds"),
    "max_depth": Param(6, type="integer", minimum=2, maximum=16, title="Maximum tree depth"),
    "learning_rate": Param(0.1, type="number", exclusiveMinimum=0, maximum=1,
                           title="Learning rate (xgboost)"),
    "early_stopping_rounds": Param(20, type="integer", minimum=1, maximum=500,
                                   title="Early stopping patience",
                                   description="Boosting rounds (xgboost) or epochs (torch) without a "
                                               "better validation log loss before training stops."),
    "epochs": Param(30, type="integer", minimum=1, maximum=1000, title="Epochs (torch)"),
    "distributor": Param("torch", type="string", enum=["torch", "horovod"], title="Distributor (torch)",
                         description="torch: Spark's TorchDistributor. horovod: Horovod on Spark "
                                     "(build it with `make horovod`; not in the job images)."),
    "torch_learning_rate": Param(0.001, type="number", exclusiveMinimum=0, maximum=1,
                                 title="Learning rate (torch)", description="Adam's step size."),
    "promotion_policy": Param("auto", type="string", enum=["auto", "never", "force"],
                              title="Promotion policy",
                              description="auto: champion only if it beats the champion by the margin "
                                          "on the same test days without worse guard metrics. never: "
                                          "challenger. force: champion (give a reason). Backfill runs "
                                          "never move champion."),
    "promotion_margin": Param(0.002, type="number", minimum=0, maximum=0.1, title="Promotion margin",
                              description="ROC-AUC the new model must gain over the champion."),
    # Nullable: the trigger form treats a non-nullable param as required and an empty string as
    # missing, which would disable Trigger until a reason is typed, whatever the policy.
    "promotion_reason": Param(None, type=["null", "string"], maxLength=500, title="Reason (force)",
                              description="Why the model is forced to champion; recorded on the "
                                          "model version with who triggered the run."),
    "sample_fraction": Param(1.0, type="number", exclusiveMinimum=0, maximum=1,
                             title="Training sample fraction",
                             description="Share of the training days' flights the model is fitted on "
                                         "(validation and test days stay whole): below 1 for a quick "
                                         "experiment."),
    "backfill_training": Param(False, type="boolean", title="Train in backfill runs",
                               description="Off: a backfill run ingests, validates and featurises its "
                                           "day, and trains nothing. On: it also trains and registers "
                                           "a model (never promoted to champion)."),
}
