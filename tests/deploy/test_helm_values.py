"""The Helm values of deploy/helm: what each environment's Airflow release and the Spark Operator get,
checked against the objects deploy/ creates (namespaces, service accounts) and the project's settings.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.deploy.conftest import OVERLAY_NAMESPACES
from tests.deploy.policies import (
    literal_credential_findings,
    resource_findings,
    restricted_container_findings,
)

#: Where every Airflow container's environment comes from: the project's settings, then the Secrets
#: (keys = variable names) of the connections and credentials; nothing is written in the values.
EXPECTED_ENV_FROM = [
    {"configMapRef": {"name": "flight-delays-settings"}},
    {"secretRef": {"name": "flight-delays-connections"}},
    {"secretRef": {"name": "flight-delays-mlflow"}},
    {"secretRef": {"name": "flight-delays-object-storage"}},
]
#: The settings each overlay gives the project (ConfigMap flight-delays-settings), placeholders included.
EXPECTED_SETTINGS = {env: {
    "SPARKAPP_BACKEND": "kubernetes",
    "SPARK_NAMESPACE": f"flight-delays-{env}",
    "FLIGHT_DELAYS_DATA_ROOT": "/data",
    "SPARKAPP_DATA_CLAIM": "flight-delays-data",
    "SPARKAPP_DATA_MOUNT": "/data",
    "SPARKAPP_ENV_SECRETS": "flight-delays-mlflow,flight-delays-object-storage",  # pragma: allowlist secret
    "SPARK_EVENT_LOG_DIR": "file:///data/spark-events",
    "MLFLOW_ARTIFACT_LOCATION": f"s3://flight-delays-{env}/mlflow",
    "MLFLOW_UI_URL": f"https://mlflow-{env}.example.internal",
    "SPARK_HISTORY_SERVER_URL": f"https://spark-history-{env}.example.internal",
} for env in OVERLAY_NAMESPACES}
#: The Airflow components that run pods in this configuration, with their sidecars.
AIRFLOW_COMPONENTS = ("scheduler", "apiServer", "triggerer", "dagProcessor", "workers", "statsd",
                      "migrateDatabaseJob")
SIDECARS = ("scheduler.logGroomerSidecar", "triggerer.logGroomerSidecar", "dagProcessor.logGroomerSidecar")
INIT_CONTAINERS = tuple(f"{c}.waitForMigrations" for c in ("scheduler", "apiServer", "triggerer",
                                                             "dagProcessor", "workers"))


def get(values: dict, dotted: str):
    for key in dotted.split("."):
        values = values[key]
    return values


@pytest.mark.parametrize("env", OVERLAY_NAMESPACES)
def test_airflow_runs_the_project_image_with_kubernetes_executor_and_external_db(airflow_values, env):
    values = airflow_values[env]
    assert values["images"]["airflow"] == {"repository": "ghcr.io/flight-delays/airflow", "tag": "0.1.0",
                                           "pullPolicy": "IfNotPresent"}
    assert values["airflowVersion"] == "3.3.2"
    assert values["executor"] == "KubernetesExecutor"
    assert values["triggerer"]["enabled"] is True
    assert values["dags"] == {"persistence": {"enabled": False}, "gitSync": {"enabled": False}}
    assert values["postgresql"] == {"enabled": False}
    # pragma: allowlist nextline secret (a Secret's name)
    assert values["data"] == {"metadataSecretName": "flight-delays-airflow-metadata"}
    assert values["createUserJob"] == {"enabled": False}
    assert values["networkPolicies"] == {"enabled": False}


@pytest.mark.parametrize("env", OVERLAY_NAMESPACES)
def test_airflow_reads_the_environments_settings_and_credentials_from_the_namespace(airflow_values, overlays,
                                                                                   env):
    values = airflow_values[env]
    assert yaml.safe_load(values["extraEnvFrom"]) == EXPECTED_ENV_FROM
    assert "env" not in values and "secret" not in values  # no variable written into the values
    assert literal_credential_findings(values) == []
    (settings,) = [obj for obj in overlays[env] if obj["kind"] == "ConfigMap"
                   and obj["metadata"]["name"] == "flight-delays-settings"]
    assert settings["data"] == EXPECTED_SETTINGS[env]
    assert values["config"]["openlineage"]["namespace"] == OVERLAY_NAMESPACES[env]
    transport = json.loads(values["config"]["openlineage"]["transport"])
    assert transport["type"] == "http" and transport["url"].startswith("http")
    assert values["config"]["openlineage"]["spark_inject_parent_job_info"] == "True"
    assert values["config"]["metrics"]["statsd_on"] == "True" and values["statsd"]["enabled"] is True


@pytest.mark.parametrize("env", OVERLAY_NAMESPACES)
def test_the_settings_name_what_the_overlay_creates_and_what_the_code_reads(airflow_values, overlays, env):
    from sparkapp.application import PodEnvironment

    values = airflow_values[env]
    data = EXPECTED_SETTINGS[env]
    claims = {obj["metadata"]["name"]: obj for obj in overlays[env] if obj["kind"] == "PersistentVolumeClaim"}
    assert claims[data["SPARKAPP_DATA_CLAIM"]]["spec"]["accessModes"] == ["ReadWriteMany"]
    # Airflow's task pods mount the same volume where the Spark pods do: the data root
    (volume,) = values["workers"]["extraVolumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": data["SPARKAPP_DATA_CLAIM"]}
    assert values["workers"]["extraVolumeMounts"] == [{"name": volume["name"], "mountPath": "/data"}]
    assert data["FLIGHT_DELAYS_DATA_ROOT"] == data["SPARKAPP_DATA_MOUNT"]
    # the Spark pods' Secrets are among Airflow's, and the code accepts the settings
    airflow_secrets = {ref["secretRef"]["name"] for ref in EXPECTED_ENV_FROM if "secretRef" in ref}
    environment = PodEnvironment.from_environ(data)
    assert set(environment.env_secrets) <= airflow_secrets
    assert environment.event_log_dir == "file:///data/spark-events"


@pytest.mark.parametrize("env", OVERLAY_NAMESPACES)
def test_airflow_pods_use_the_service_accounts_deploy_creates(airflow_values, overlays, env):
    values = airflow_values[env]
    accounts = {obj["metadata"]["name"] for obj in overlays[env] if obj["kind"] == "ServiceAccount"}
    paths = ("scheduler.serviceAccount", "triggerer.serviceAccount", "workers.serviceAccount",
             "workers.kubernetes.serviceAccount")
    used = {path: get(values, path) for path in paths}
    assert used == {
        "scheduler.serviceAccount": {"create": False, "name": "airflow-scheduler"},
        "triggerer.serviceAccount": {"create": False, "name": "airflow-worker"},
        "workers.serviceAccount": {"create": False, "name": "airflow-worker"},
        "workers.kubernetes.serviceAccount": {"create": False, "name": "airflow-worker"},
    }
    assert {sa["name"] for sa in used.values()} <= accounts
    # The chart's pod-launcher Role would also bind the worker and triggerer accounts.
    assert values["allowPodLaunching"] is False


@pytest.mark.parametrize("env", OVERLAY_NAMESPACES)
def test_every_airflow_container_has_requests_and_limits(airflow_values, env):
    values = airflow_values[env]
    assert resource_findings(values) == []
    for path in AIRFLOW_COMPONENTS + SIDECARS:
        assert set(get(values, f"{path}.resources")) == {"requests", "limits"}, path


@pytest.mark.parametrize("env", OVERLAY_NAMESPACES)
def test_every_airflow_container_meets_pod_security_restricted(airflow_values, env):
    values = airflow_values[env]
    pod = values["securityContexts"]["pod"]
    assert pod["runAsUser"] == 50000
    containers = values["securityContexts"]["containers"]
    assert restricted_container_findings("securityContexts", containers, pod) == []
    for path in SIDECARS + INIT_CONTAINERS + ("workers", "statsd"):
        container = get(values, f"{path}.securityContexts.container")
        component_pod = get(values, path.split(".")[0]).get("securityContexts", {}).get("pod", pod)
        assert restricted_container_findings(path, container, component_pod) == []


def test_the_operator_watches_exactly_the_overlay_namespaces(spark_operator_values, overlays):
    rendered = {obj["metadata"]["name"] for objects in overlays.values() for obj in objects
                if obj["kind"] == "Namespace"}
    assert spark_operator_values["spark"]["jobNamespaces"] == list(OVERLAY_NAMESPACES.values())
    assert set(spark_operator_values["spark"]["jobNamespaces"]) == rendered


def test_the_operator_leaves_the_spark_account_to_deploy_keeps_webhook(spark_operator_values, overlays):
    spark = spark_operator_values["spark"]
    assert spark["serviceAccount"] == {"create": False, "name": "spark"}
    assert spark["rbac"] == {"create": False}
    assert all(any(obj["kind"] == "ServiceAccount" and obj["metadata"]["name"] == "spark" for obj in objects)
               for objects in overlays.values())
    assert spark_operator_values["webhook"]["enable"] is True
    assert spark_operator_values["webhook"]["failurePolicy"] == "Fail"
    assert spark_operator_values["prometheus"]["metrics"]["enable"] is True


def test_the_operator_pods_are_restricted_and_sized(spark_operator_values):
    assert resource_findings(spark_operator_values) == []
    for component in ("controller", "webhook"):
        values = spark_operator_values[component]
        assert set(values["resources"]) == {"requests", "limits"}
        pod = values["podSecurityContext"]
        assert restricted_container_findings(component, values["securityContext"], pod) == []
