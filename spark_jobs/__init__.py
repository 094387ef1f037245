"""PySpark entry points. Each module's ``main()`` parses arguments and wires read -> transform -> write;
the transforms are pure functions of DataFrames. The project root is on ``PYTHONPATH`` (the job image
sets it; the local backend passes it), so jobs import each other as ``spark_jobs.<module>``."""
