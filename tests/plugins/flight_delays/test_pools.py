"""The DAG's pools, created where missing."""

from __future__ import annotations

from flight_delays.pools import TRAINING_POOL, TRAINING_POOL_SLOTS


def test_the_training_pool_is_created_once_with_deferred_tasks_counted():
    from airflow.models.pool import Pool
    from airflow.utils.db import initdb

    from flight_delays.pools import ensure_pools

    initdb()
    assert ensure_pools() == [TRAINING_POOL]
    pool = Pool.get_pool(TRAINING_POOL)
    assert (pool.slots, pool.include_deferred) == (TRAINING_POOL_SLOTS, True)
    Pool.create_or_update_pool(TRAINING_POOL, 3, pool.description, include_deferred=True)
    assert ensure_pools() == []  # an existing pool keeps the size its operator gave it
    assert Pool.get_pool(TRAINING_POOL).slots == 3
