"""Airflow parts for Spark Operator ``SparkApplication``s, laid out like a provider package.

- :mod:`sparkapp.application`: the typed description of a job and its rendering into a manifest;
- :mod:`sparkapp.states`: the application states of the Spark Operator, as the CRD names them;
- :mod:`sparkapp.client`: the seam between the operators and where applications run;
- :mod:`sparkapp.local_backend`: the embedded backend, running a manifest with local ``spark-submit``;
- :mod:`sparkapp.operators` and :mod:`sparkapp.sensors`: what DAGs use.
"""
