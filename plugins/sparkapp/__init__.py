"""Airflow parts for Spark Operator ``SparkApplication``s, laid out like a provider package.

- :mod:`sparkapp.application`: the typed description of a job and its rendering into a manifest;
- :mod:`sparkapp.states`: the application states of the Spark Operator, as the CRD names them, and
  the waiting policy built on them;
- :mod:`sparkapp.client`: the seam between the operators and where applications run (a Protocol);
- :mod:`sparkapp.backends`: choosing the backend of a task;
- :mod:`sparkapp.hooks`: both backends, side by side: :mod:`~sparkapp.hooks.kubernetes` (the Spark
  Operator through the Kubernetes API, sync and async) and :mod:`~sparkapp.hooks.local` (the embedded
  backend, running a manifest with local ``spark-submit``);
- :mod:`sparkapp.operators`, :mod:`sparkapp.sensors` and :mod:`sparkapp.triggers`: what DAGs use;
- :mod:`sparkapp.cost` and :mod:`sparkapp.links`: cost inputs and extra links of finished applications.
"""
