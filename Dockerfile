# The Airflow image of the project: scheduler, API server, DAG processor, triggerer and workers.
# Matches the pinned apache-airflow and Python; the project is baked in under /opt/airflow.
FROM apache/airflow:3.3.2-python3.11

# The version recorded with every model this deployment trains (MLflow tag code_version), e.g. the git sha.
ARG CODE_VERSION=unknown
ENV FLIGHT_DELAYS_CODE_VERSION=${CODE_VERSION}

# The lock pins every package, so no resolution is needed (and --no-deps keeps pyspark-client,
# which would overwrite pyspark's files, out). Installed as the image's airflow user.
COPY --chown=airflow:0 requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --no-deps -r /tmp/requirements.txt
# PyTorch's CPU build: the promotion gate loads torch models to score them. The CPU index keeps the
# several GB of CUDA packages of PyPI's build out of the image (it also serves the pinned dependencies).
COPY --chown=airflow:0 requirements-torch.txt /tmp/requirements-torch.txt
RUN pip install --no-cache-dir --no-deps --index-url https://download.pytorch.org/whl/cpu \
      -r /tmp/requirements-torch.txt

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 spark_jobs/ /opt/airflow/spark_jobs/

# The official image's airflow user (uid 50000), numeric so the kubelet can check runAsNonRoot.
USER 50000
