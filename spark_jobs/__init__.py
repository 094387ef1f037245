"""PySpark entry points. Each module's ``main()`` parses arguments and wires read -> transform -> write;
the transforms are pure functions of DataFrames. The project root and its ``plugins/`` are on
``PYTHONPATH`` (``sparkapp.application.PYTHON_PATH``: the job image sets it, the local backend passes
it), so jobs import ``spark_jobs.<module>`` and the pipeline's shared ``flight_delays`` package."""
