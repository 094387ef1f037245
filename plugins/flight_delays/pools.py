"""The Airflow pools the DAG's tasks use, created where missing: ``python -m flight_delays.pools``.

A task whose pool does not exist is never scheduled, so every Airflow that runs the DAG needs them:
``make airflow`` runs this after ``airflow db migrate``; on a cluster, run it once in the scheduler's
image (docs). An existing pool is left as it is: its size is the operator's choice.
"""

from __future__ import annotations

#: The Airflow pool every training takes a slot of, for as long as it trains: its size is how many
#: trainings may run at once (GPUs are the scarce part). Created with ``include_deferred``, so the
#: deferred sensor that waits on a training keeps its slot.
TRAINING_POOL = "gpu_training"
TRAINING_POOL_SLOTS = 1

#: name -> (slots, description). Deferred tasks count: a sensor waiting on a training holds its slot.
POOLS = {
    TRAINING_POOL: (TRAINING_POOL_SLOTS,
                             "Trainings running at once (GPUs are the scarce part): the submit and wait "
                             "tasks of a training hold one slot while it trains."),
}


def ensure_pools() -> list[str]:
    """Create the pools that do not exist yet; return their names."""
    from airflow.models.pool import Pool

    created = []
    for name, (slots, description) in POOLS.items():
        if Pool.get_pool(name) is None:
            Pool.create_or_update_pool(name, slots, description, include_deferred=True)
            created.append(name)
    return created


if __name__ == "__main__":
    created = ensure_pools()
    print(f"created pool(s) {', '.join(created)}" if created else "pools already exist: "
          + ", ".join(POOLS))
