"""The policy checks of tests/deploy/policies.py on deliberately bad objects: each check the deploy
tests rely on must flag what it exists to catch (a check that cannot fail proves nothing).
"""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from tests.deploy.policies import (
    is_default_deny,
    literal_credential_findings,
    merge_values,
    name_findings,
    pod_security_findings,
    quantity,
    resource_findings,
    restricted_container_findings,
    rule_set,
    wildcard_findings,
)

ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "airflow-worker", "namespace": "flight-delays-dev"},
    "rules": [{"apiGroups": ["sparkoperator.k8s.io"], "resources": ["sparkapplications"], "verbs": ["get"]}],
}
RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
              "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.mark.parametrize(("field", "value"), [("verbs", ["*"]), ("resources", ["*"]), ("apiGroups", ["*"]),
                                              ("resources", ["sparkapplications/*"])])
def test_a_wildcard_in_any_rule_field_is_flagged(field, value):
    role = copy.deepcopy(ROLE)
    role["rules"][0][field] = value
    assert wildcard_findings(role) == [f"Role/airflow-worker rules[0].{field}: {value}"]
    assert wildcard_findings(ROLE) == []


def test_rule_sets_compare_grants_not_layout():
    merged = {"rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get"]}]}
    split = {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                       {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]}
    assert rule_set(merged) == rule_set(split) == {("", "pods", "get"), ("", "pods/log", "get")}
    extra = copy.deepcopy(split)
    extra["rules"][0]["verbs"].append("delete")
    assert rule_set(extra) - rule_set(split) == {("", "pods", "delete")}


def test_only_a_policy_selecting_all_pods_with_no_rules_is_a_default_deny():
    deny = {"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    assert is_default_deny(deny)
    assert not is_default_deny({"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    assert not is_default_deny({"spec": {"podSelector": {"matchLabels": {"app": "x"}},
                                         "policyTypes": ["Ingress", "Egress"]}})
    assert not is_default_deny({"spec": {**deny["spec"], "egress": [{}]}})


def test_bad_names_are_flagged():
    def obj(kind, name):
        return {"kind": kind, "metadata": {"name": name}}

    assert name_findings(obj("Namespace", "flight-delays-prod")) == []
    assert name_findings(obj("Namespace", "flight.delays")) == [
        "Namespace/flight.delays: not a DNS-1123 label"]
    assert name_findings(obj("ServiceAccount", "Airflow_Worker")) == [
        "ServiceAccount/Airflow_Worker: not a DNS-1123 subdomain"]
    long = "a" * 64
    assert name_findings(obj("Role", long)) == [f"Role/{long}: name longer than 63 characters (64)"]


def test_a_namespace_without_pinned_restricted_pod_security_is_flagged():
    labels = {f"pod-security.kubernetes.io/{mode}{suffix}": value for mode in ("enforce", "audit", "warn")
              for suffix, value in (("", "restricted"), ("-version", "v1.37"))}
    namespace = {"metadata": {"name": "flight-delays-dev", "labels": labels}}
    assert pod_security_findings(namespace) == []
    namespace["metadata"]["labels"] = {**labels, "pod-security.kubernetes.io/enforce": "baseline",
                                       "pod-security.kubernetes.io/warn-version": "latest"}
    assert pod_security_findings(namespace) == [
        "Namespace/flight-delays-dev: enforce is 'baseline', not 'restricted'",
        "Namespace/flight-delays-dev: warn-version 'latest' is not a pinned v1.N",
    ]


def test_containers_that_restricted_refuses_are_flagged():
    assert restricted_container_findings("c", RESTRICTED) == []
    assert restricted_container_findings("c", {**RESTRICTED, "allowPrivilegeEscalation": True}) == [
        "c: allowPrivilegeEscalation is not false"]
    assert restricted_container_findings("c", {**RESTRICTED, "capabilities": {"drop": ["NET_RAW"]}}) == [
        "c: capabilities do not drop ALL"]
    assert restricted_container_findings("c", {**RESTRICTED, "runAsNonRoot": False}) == [
        "c: runAsNonRoot is not true"]
    # Pod-level settings count for the container.
    without_seccomp = {k: v for k, v in RESTRICTED.items() if k != "seccompProfile"}
    assert restricted_container_findings("c", without_seccomp) == [
        "c: seccompProfile is None, not RuntimeDefault or Localhost"]
    pod = {"seccompProfile": {"type": "RuntimeDefault"}}
    assert restricted_container_findings("c", without_seccomp, pod) == []
    assert restricted_container_findings("c", RESTRICTED, {"runAsUser": 0}) == ["c: runs as uid 0"]


def test_a_credential_written_into_helm_values_is_flagged():
    from_secret = {"secretKeyRef": {"name": "s", "key": "k"}}
    values = {"env": [{"name": "SPARK_NAMESPACE", "value": "flight-delays-dev"},
                      {"name": "MLFLOW_TRACKING_URI", "valueFrom": from_secret}],
              # pragma: allowlist nextline secret (a reference, which the policy must accept)
              "secret": [{"envName": "AWS_SECRET_ACCESS_KEY", "secretName": "s", "secretKey": "k"}]}
    assert literal_credential_findings(values) == []
    values["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": "<literal>"})
    values["workers"] = {"env": [{"name": "AIRFLOW_CONN_KUBERNETES_DEFAULT", "value": "{}"}]}
    values["webserver"] = {"defaultUser": {"password": "admin"}}  # pragma: allowlist secret (planted)
    assert literal_credential_findings(values) == [
        "env[2]: env AWS_SECRET_ACCESS_KEY has a literal value",
        "workers.env[0]: env AIRFLOW_CONN_KUBERNETES_DEFAULT has a literal value",
        "webserver.defaultUser.password: a credential in clear",
    ]


def test_a_resources_block_without_requests_or_limits_is_flagged():
    good = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    assert resource_findings({"scheduler": {"resources": good}}) == []
    no_memory_limit = {"requests": good["requests"], "limits": {"cpu": "1"}}
    assert resource_findings({"scheduler": {"resources": {}}, "statsd": {"resources": no_memory_limit}}) == [
        "scheduler.resources.requests: no cpu, memory", "scheduler.resources.limits: no cpu, memory",
        "statsd.resources.limits: no memory"]


def test_values_merge_like_helm_maps_merge_and_lists_are_replaced():
    base = {"config": {"metrics": {"statsd_on": "True"}}, "env": [{"name": "A", "value": "1"}]}
    override = {"config": {"openlineage": {"namespace": "n"}}, "env": [{"name": "B", "value": "2"}]}
    assert merge_values(base, override) == {"config": {"metrics": {"statsd_on": "True"},
                                                       "openlineage": {"namespace": "n"}},
                                            "env": [{"name": "B", "value": "2"}]}


def test_quantities_compare_by_size():
    assert quantity("500m") < quantity("1") < quantity("1Gi") < quantity("2G") < quantity("64Gi")
    assert quantity("16") == 16
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity("16 cores")


def test_strict_schema_validation_rejects_an_unknown_field():
    # Strict mode is what catches a misspelt key (it would otherwise be silently dropped on apply).
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
             "spec": {"hard": {"pods": "10"}}}
    kubernetes_validate.validate(quota, "1.37", strict=True)
    quota["spec"]["hrad"] = quota["spec"].pop("hard")
    with pytest.raises(kubernetes_validate.ValidationError, match="hrad"):
        kubernetes_validate.validate(quota, "1.37", strict=True)
