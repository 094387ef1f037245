"""What tests and benchmarks share: the fake Kubernetes API server (fault injection) and the real-Airflow
harness. Never imports from ``tests/``; ``bench/`` imports from here, not from ``tests/``."""
