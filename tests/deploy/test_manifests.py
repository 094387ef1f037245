"""deploy/ as kustomize renders it: valid Kubernetes 1.37 objects, one namespace per environment, and
the least-privilege, quota and network rules the platform team relies on, with exact expected values.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections import Counter

import kubernetes_validate
import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.deploy.conftest import DEPLOY_DIR, OVERLAY_NAMESPACES
from tests.deploy.policies import (
    is_default_deny,
    name_findings,
    pod_security_findings,
    quantity,
    restricted_container_findings,
    rule_set,
    wildcard_findings,
)

KUBERNETES_VERSION = "1.37"

#: The rights of each Role, as (apiGroup, resource, verb); anything more or less fails.
EXPECTED_ROLES = {
    "airflow-worker": {
        *{("sparkoperator.k8s.io", "sparkapplications", verb)
          for verb in ("create", "get", "list", "watch", "delete")},
        ("", "pods", "get"),
        ("", "pods/log", "get"),
    },
    "airflow-scheduler": {("", "pods", verb)
                          for verb in ("create", "get", "list", "watch", "patch", "delete")},
    "spark": {
        *{("", "pods", verb)
          for verb in ("create", "get", "list", "watch", "delete", "deletecollection", "patch")},
        *{("", resource, verb) for resource in ("services", "configmaps")
          for verb in ("create", "get", "list", "watch", "delete", "deletecollection")},
    },
}
#: ServiceAccount -> automountServiceAccountToken: only accounts that call the API get a token.
EXPECTED_SERVICE_ACCOUNTS = {"default": False, "airflow-worker": True, "airflow-scheduler": True,
                             "spark": True}
SPARKAPPS = "count/sparkapplications.sparkoperator.k8s.io"
QUOTA_KEYS = {"requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "requests.nvidia.com/gpu",
              "pods", SPARKAPPS}
EXPECTED_QUOTAS = {
    "dev": {"requests.cpu": "16", "requests.memory": "64Gi", "limits.cpu": "32", "limits.memory": "96Gi",
            "requests.nvidia.com/gpu": "2", "pods": "40", SPARKAPPS: "300"},
    "test": {"requests.cpu": "32", "requests.memory": "128Gi", "limits.cpu": "64", "limits.memory": "192Gi",
             "requests.nvidia.com/gpu": "4", "pods": "80", SPARKAPPS: "1000"},
    "prod": {"requests.cpu": "64", "requests.memory": "256Gi", "limits.cpu": "128", "limits.memory": "384Gi",
             "requests.nvidia.com/gpu": "8", "pods": "160", SPARKAPPS: "1500"},
}
#: The per-environment CIDRs the overlays give (placeholders from the RFC 5737 documentation ranges).
EXPECTED_CIDRS = {
    "dev": {"allow-object-storage-egress": "192.0.2.0/28", "allow-kube-api-egress": "192.0.2.16/28",
            "allow-airflow-metadata-db-egress": "192.0.2.32/28"},
    "test": {"allow-object-storage-egress": "198.51.100.0/28", "allow-kube-api-egress": "198.51.100.16/28",
             "allow-airflow-metadata-db-egress": "198.51.100.32/28"},
    "prod": {"allow-object-storage-egress": "203.0.113.0/28", "allow-kube-api-egress": "203.0.113.16/28",
             "allow-airflow-metadata-db-egress": "203.0.113.32/28"},
}
SPARK_PODS = {"matchExpressions": [{"key": "spark-role", "operator": "In", "values": ["driver", "executor"]}]}
AIRFLOW_PODS = {"matchLabels": {"tier": "airflow", "release": "airflow"}}
#: Airflow's pods and the Spark drivers (the only other pods in the namespace are executors).
ALL_BUT_EXECUTORS = {"matchExpressions": [{"key": "spark-role", "operator": "NotIn", "values": ["executor"]}]}
#: NetworkPolicy -> (pods it selects, {(direction, peer namespace or "same" or "ipBlock", protocol, port)}).
#: Port None: all ports. Every flow of every policy is here: a flow added or widened fails.
EXPECTED_FLOWS = {
    "default-deny-all": ({}, set()),
    "allow-dns-egress": ({}, {("egress", "kube-system", "UDP", 53), ("egress", "kube-system", "TCP", 53)}),
    "allow-spark-driver-executor": (SPARK_PODS, {("ingress", "same", None, None),
                                                 ("egress", "same", None, None)}),
    "allow-object-storage-egress": ({}, {("egress", "ipBlock", "TCP", 443)}),
    "allow-mlflow-egress": ({}, {("egress", "mlflow", "TCP", 5000)}),
    "allow-kube-api-egress": (ALL_BUT_EXECUTORS,
                              {("egress", "ipBlock", "TCP", 443), ("egress", "ipBlock", "TCP", 6443)}),
    "allow-airflow-internal": (AIRFLOW_PODS, {("ingress", "same", None, None),
                                              ("egress", "same", None, None)}),
    "allow-airflow-metadata-db-egress": (AIRFLOW_PODS, {("egress", "ipBlock", "TCP", 5432)}),
    "allow-openlineage-egress": (ALL_BUT_EXECUTORS, {("egress", "marquez", "TCP", 5000)}),
    "allow-api-server-ingress": ({"matchLabels": {**AIRFLOW_PODS["matchLabels"], "component": "api-server"}},
                                 {("ingress", "ingress-nginx", "TCP", 8080)}),
    "allow-prometheus-scrape-spark": (SPARK_PODS, {("ingress", "monitoring", "TCP", 8090)}),
    "allow-prometheus-scrape-statsd": ({"matchLabels": {**AIRFLOW_PODS["matchLabels"],
                                                        "component": "statsd"}},
                                       {("ingress", "monitoring", "TCP", 9102)}),
    "allow-spark-history-ingress": ({"matchLabels": {"app.kubernetes.io/name": "spark-history"}},
                                    {("ingress", "ingress-nginx", "TCP", 18080)}),
}
PURPOSE_ANNOTATION = "flight-delays/purpose"


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def flows(policy: dict) -> set[tuple]:
    """A NetworkPolicy's allowed flows as (direction, peer, protocol, port) tuples."""
    found = set()
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for rule in policy["spec"].get(direction) or []:
            peers = []
            for peer in rule.get(peers_key) or []:
                if "ipBlock" in peer:
                    peers.append("ipBlock")
                elif "namespaceSelector" in peer:
                    peers.append(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
                else:
                    peers.append("same")
            ports = [(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports") or []] or [(None, None)]
            found |= {(direction, peer, protocol, port) for peer in peers for protocol, port in ports}
    return found


def test_every_object_validates_against_the_kubernetes_schema_in_strict_mode(overlays, cluster_objects):
    objects = [obj for rendered in overlays.values() for obj in rendered] + cluster_objects
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {e.message} at {list(e.path)}")
    assert errors == []
    assert len(objects) == 3 * 30 + 1


def test_each_overlay_renders_one_namespace_and_puts_everything_in_it(overlays):
    for env, objects in overlays.items():
        namespaces = of_kind(objects, "Namespace")
        assert list(namespaces) == [OVERLAY_NAMESPACES[env]]
        assert {obj["metadata"].get("namespace") for obj in objects if obj["kind"] != "Namespace"} \
            == {OVERLAY_NAMESPACES[env]}
        assert Counter(obj["kind"] for obj in objects) == {
            "Namespace": 1, "ServiceAccount": 4, "Role": 3, "RoleBinding": 3, "ResourceQuota": 1,
            "LimitRange": 1, "NetworkPolicy": 13, "ConfigMap": 1, "PersistentVolumeClaim": 1,
            "Deployment": 1, "Service": 1}
        assert {obj["metadata"]["labels"]["flight-delays/environment"] for obj in objects} == {env}


def test_only_the_settings_configmap_reaches_the_cluster_not_the_parameters(overlays):
    for objects in overlays.values():
        assert list(of_kind(objects, "ConfigMap")) == ["flight-delays-settings"]  # no network-endpoints


def test_every_workload_container_meets_restricted_with_requests_and_limits(overlays):
    for objects in overlays.values():
        for name, deployment in of_kind(objects, "Deployment").items():
            pod = deployment["spec"]["template"]["spec"]
            containers = pod.get("initContainers", []) + pod["containers"]
            assert [c["name"] for c in containers] == ["event-log-directory", "history-server"]
            for container in containers:
                where = f"{name}/{container['name']}"
                assert restricted_container_findings(where, container["securityContext"],
                                                     pod["securityContext"]) == []
                assert set(container["resources"]) == {"requests", "limits"}, where
            assert pod["automountServiceAccountToken"] is False
            assert pod["volumes"] == [{"name": "data",
                                       "persistentVolumeClaim": {"claimName": "flight-delays-data"}}]


def test_namespaces_enforce_pod_security_restricted_at_a_pinned_version(overlays):
    for objects in overlays.values():
        (namespace,) = of_kind(objects, "Namespace").values()
        assert pod_security_findings(namespace) == []
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce-version"] == "v1.37"


def test_no_cluster_wide_rbac_and_no_wildcard_anywhere_in_deploy(overlays, cluster_objects):
    rendered = [obj for objects in overlays.values() for obj in objects] + cluster_objects
    written = [doc for path in sorted(DEPLOY_DIR.rglob("*.yaml"))
               for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict) and "kind" in doc]
    for obj in rendered + written:
        assert obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"), obj["metadata"]["name"]
        assert wildcard_findings(obj) == []


@pytest.mark.parametrize("env", OVERLAY_NAMESPACES)
def test_roles_grant_exactly_the_expected_rights(overlays, env):
    roles = of_kind(overlays[env], "Role")
    assert {name: rule_set(role) for name, role in roles.items()} == EXPECTED_ROLES


def test_each_role_is_bound_to_its_own_account_in_its_own_namespace(overlays):
    for objects in overlays.values():
        accounts, roles = of_kind(objects, "ServiceAccount"), of_kind(objects, "Role")
        for name, binding in of_kind(objects, "RoleBinding").items():
            assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                          "name": name}
            assert name in roles
            # The base names no namespace: kustomize sets the overlay's, as on the account itself.
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name,
                                            "namespace": binding["metadata"]["namespace"]}]
            assert name in accounts


def test_only_accounts_that_call_the_api_mount_a_token(overlays):
    for objects in overlays.values():
        assert {name: sa["automountServiceAccountToken"]
                for name, sa in of_kind(objects, "ServiceAccount").items()} == EXPECTED_SERVICE_ACCOUNTS


def test_each_namespace_has_one_quota_and_one_limit_range_sized_dev_below_test_below_prod(overlays):
    hard = {}
    for env, objects in overlays.items():
        quotas, limit_ranges = of_kind(objects, "ResourceQuota"), of_kind(objects, "LimitRange")
        assert len(quotas) == 1 and len(limit_ranges) == 1
        hard[env] = next(iter(quotas.values()))["spec"]["hard"]
        assert set(hard[env]) == QUOTA_KEYS
    assert hard == EXPECTED_QUOTAS
    for key in QUOTA_KEYS:
        assert quantity(hard["dev"][key]) < quantity(hard["test"][key]) < quantity(hard["prod"][key]), key


def test_limit_range_admits_the_largest_spark_pod_and_defaults_the_rest(overlays):
    # The GPU executor (jobs.GPU_TRAINING): 4 cores, limit 4, 8g heap + 6g overhead.
    for objects in overlays.values():
        (limit_range,) = of_kind(objects, "LimitRange").values()
        (container,) = limit_range["spec"]["limits"]
        assert container["type"] == "Container"
        assert quantity(container["max"]["cpu"]) >= 4
        assert quantity(container["max"]["memory"]) >= quantity("14Gi")
        for key in ("cpu", "memory"):
            assert quantity(container["defaultRequest"][key]) <= quantity(container["default"][key]) \
                <= quantity(container["max"][key])


def test_every_namespace_denies_all_traffic_by_default(overlays):
    for objects in overlays.values():
        policies = of_kind(objects, "NetworkPolicy")
        assert [name for name, policy in policies.items() if is_default_deny(policy)] == ["default-deny-all"]


def test_network_policies_allow_exactly_the_expected_flows(overlays):
    for objects in overlays.values():
        policies = of_kind(objects, "NetworkPolicy")
        assert {name: (p["spec"]["podSelector"], flows(p)) for name, p in policies.items()} == EXPECTED_FLOWS


def test_every_network_policy_says_what_it_allows_and_why(overlays):
    for objects in overlays.values():
        for name, policy in of_kind(objects, "NetworkPolicy").items():
            assert len(policy["metadata"]["annotations"][PURPOSE_ANNOTATION].split()) >= 10, name


def test_ip_blocks_are_the_overlays_cidrs(overlays):
    for env, objects in overlays.items():
        cidrs = {name: p["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"]
                 for name, p in of_kind(objects, "NetworkPolicy").items()
                 if any("ipBlock" in peer for rule in p["spec"].get("egress") or [] for peer in rule["to"])}
        assert cidrs == EXPECTED_CIDRS[env]
        for cidr in cidrs.values():
            assert ipaddress.ip_network(cidr).prefixlen > 0


def test_object_names_are_valid_kubernetes_names(overlays, cluster_objects):
    for obj in [obj for objects in overlays.values() for obj in objects] + cluster_objects:
        assert name_findings(obj) == []


def test_the_training_priority_class_is_the_one_the_gpu_profile_names(cluster_objects):
    from flight_delays.jobs import TRAINING_PRIORITY_CLASS

    assert [(o["kind"], o["metadata"]["name"], o["value"], o["preemptionPolicy"], o["globalDefault"])
            for o in cluster_objects] == [
        ("PriorityClass", TRAINING_PRIORITY_CLASS, 100000, "PreemptLowerPriority", False)]
    assert cluster_objects[0]["description"]


def test_make_deploy_render_writes_what_kustomize_renders_and_refuses_an_unknown_env(overlays):
    # -o: take the venv as installed (a lock edited meanwhile must not trigger a reinstall here).
    make = ["make", "-s", "-o", ".venv/.installed", "deploy-render"]
    bad = subprocess.run([*make, "ENV=staging"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         check=False)
    assert bad.returncode == 2
    assert "usage: make deploy-render ENV=dev|test|prod (got 'staging')" in bad.stderr
    good = subprocess.run([*make, "ENV=test"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stderr
    written = PROJECT_ROOT / "build" / "deploy" / "test.yaml"
    assert [doc for doc in yaml.safe_load_all(written.read_text()) if doc] == overlays["test"]
