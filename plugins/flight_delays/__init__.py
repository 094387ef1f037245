"""The flight-delay model's pipeline: what runs inside Airflow tasks and Spark jobs in production.

One idea a module: :mod:`~flight_delays.settings` (environment knobs), :mod:`~flight_delays.layout`
(the data root), :mod:`~flight_delays.window` (which days a run processes),
:mod:`~flight_delays.contract` (the model's names, label and features), :mod:`~flight_delays.params`
(the DAG's Params), :mod:`~flight_delays.jobs` (the Spark jobs), :mod:`~flight_delays.tasks` (the
Python tasks' adapters), :mod:`~flight_delays.report`, :mod:`~flight_delays.ingest`,
:mod:`~flight_delays.validation`, :mod:`~flight_delays.registry`, :mod:`~flight_delays.evaluation`,
:mod:`~flight_delays.preflight`, :mod:`~flight_delays.pools`, :mod:`~flight_delays.operators`.
Developer tools (the demo, previews, the local Airflow) live in ``devtools/``, outside the image.

Heavy libraries (pandas, Great Expectations, MLflow) are imported inside functions so that the DAG
file stays fast to parse.
"""
