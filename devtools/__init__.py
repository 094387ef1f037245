"""Developer tools: the demo, the manifest and backfill previews, the local Airflow launcher and the
embedded-default environment. Not part of the Airflow image: production runs what plugins/ holds."""
