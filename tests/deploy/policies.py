"""The deployment's policy checks, as small functions of plain objects that return what is wrong.

Each returns a list of findings (empty: the object complies), so a test asserts ``== []`` and its
failure message names the offending object and field. The tests in this folder apply them to what
``deploy/`` renders, and to deliberately bad objects to prove that each check can fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

#: Kubernetes' DNS-1123 label (namespaces) and subdomain (most other object names).
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_NAME_LENGTH = 63
#: Kinds whose names Kubernetes validates as DNS-1123 labels rather than subdomains.
LABEL_NAMED_KINDS = frozenset({"Namespace"})

PSA_MODES = ("enforce", "audit", "warn")
#: A pinned Pod Security version: a Kubernetes minor version, not "latest".
PSA_VERSION = re.compile(r"^v1\.[0-9]+$")

#: Env var names that carry a credential or a connection (which may embed one).
SECRET_ENV_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY|^AIRFLOW_CONN_|_CONN$"
                             r"|TRACKING_URI|SQL_ALCHEMY_CONN|FERNET)", re.IGNORECASE)
#: Chart value keys that hold a credential in clear when set (the chart's own password knobs).
SECRET_VALUE_KEYS = frozenset({"password", "pass", "fernetKey", "webserverSecretKey", "apiSecretKey",
                               "jwtSecret", "postgresPassword", "brokerUrl", "sshKey", "keytabBase64Content"})

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_QUANTITY_FACTORS = {None: 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                     "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value: str | int) -> Decimal:
    """A Kubernetes quantity (``"500m"``, ``"64Gi"``, ``"16"``) as a number, to compare sizes."""
    match = _QUANTITY.match(str(value))
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return Decimal(match.group(1)) * _QUANTITY_FACTORS[match.group(2)]


def wildcard_findings(obj: Mapping[str, Any]) -> list[str]:
    """Every ``*`` in a Role's or ClusterRole's rules (verbs, resources, apiGroups, names, URLs)."""
    findings = []
    for i, rule in enumerate(obj.get("rules") or []):
        for field in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
            if any("*" in item for item in rule.get(field) or []):
                findings.append(f"{obj['kind']}/{obj['metadata']['name']} rules[{i}].{field}: {rule[field]}")
    return findings


def rule_set(role: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """A Role's grants as (apiGroup, resource, verb) triples: rules split or merged compare equal."""
    return {(group, resource, verb)
            for rule in role.get("rules") or []
            for group in rule.get("apiGroups") or []
            for resource in rule.get("resources") or []
            for verb in rule.get("verbs") or []}


def is_default_deny(policy: Mapping[str, Any]) -> bool:
    """True for a NetworkPolicy that selects every pod and allows nothing in or out."""
    spec = policy.get("spec") or {}
    return (spec.get("podSelector") == {}
            and sorted(spec.get("policyTypes") or []) == ["Egress", "Ingress"]
            and not spec.get("ingress") and not spec.get("egress"))


def name_findings(obj: Mapping[str, Any]) -> list[str]:
    """Names Kubernetes would refuse: over 63 characters, or not a DNS-1123 label/subdomain."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    form, pattern = (("label", DNS_1123_LABEL) if kind in LABEL_NAMED_KINDS
                     else ("subdomain", DNS_1123_SUBDOMAIN))
    findings = []
    if len(name) > MAX_NAME_LENGTH:
        findings.append(f"{kind}/{name}: name longer than {MAX_NAME_LENGTH} characters ({len(name)})")
    if not pattern.match(name):
        findings.append(f"{kind}/{name}: not a DNS-1123 {form}")
    for key, value in (obj["metadata"].get("labels") or {}).items():
        if len(str(value)) > MAX_NAME_LENGTH:
            findings.append(f"{kind}/{name}: label {key} value longer than {MAX_NAME_LENGTH} characters")
    return findings


def pod_security_findings(namespace: Mapping[str, Any]) -> list[str]:
    """A Namespace that does not enforce, audit and warn Pod Security "restricted" at a pinned version."""
    labels = namespace["metadata"].get("labels") or {}
    name = namespace["metadata"]["name"]
    findings = []
    for mode in PSA_MODES:
        level = labels.get(f"pod-security.kubernetes.io/{mode}")
        version = labels.get(f"pod-security.kubernetes.io/{mode}-version", "")
        if level != "restricted":
            findings.append(f"Namespace/{name}: {mode} is {level!r}, not 'restricted'")
        if not PSA_VERSION.match(version):
            findings.append(f"Namespace/{name}: {mode}-version {version!r} is not a pinned v1.N")
    return findings


def restricted_container_findings(where: str, container: Mapping[str, Any] | None,
                                  pod: Mapping[str, Any] | None = None) -> list[str]:
    """A container securityContext (with its pod's) that Pod Security "restricted" would refuse."""
    container, pod = container or {}, pod or {}
    findings = []
    if container.get("allowPrivilegeEscalation") is not False:
        findings.append(f"{where}: allowPrivilegeEscalation is not false")
    if container.get("privileged"):
        findings.append(f"{where}: privileged")
    if "ALL" not in ((container.get("capabilities") or {}).get("drop") or []):
        findings.append(f"{where}: capabilities do not drop ALL")
    if set((container.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}:
        findings.append(f"{where}: adds capabilities {container['capabilities']['add']}")
    if not (container.get("runAsNonRoot") or pod.get("runAsNonRoot")):
        findings.append(f"{where}: runAsNonRoot is not true")
    if 0 in (container.get("runAsUser"), pod.get("runAsUser")):
        findings.append(f"{where}: runs as uid 0")
    seccomp = (container.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        findings.append(f"{where}: seccompProfile is {seccomp!r}, not RuntimeDefault or Localhost")
    return findings


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) of a nested structure of mappings and lists, parents first."""
    yield path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")


def literal_credential_findings(values: Mapping[str, Any]) -> list[str]:
    """Credentials written into Helm values instead of referenced from a Secret.

    Flags an env entry whose name looks like a credential or connection and that has a literal
    ``value`` (``valueFrom.secretKeyRef`` and the chart's ``secret:`` list are fine), and any of the
    chart's password-like keys given a value.
    """
    findings = []
    for path, item in walk(values):
        if isinstance(item, Mapping):
            name = item.get("name")
            if isinstance(name, str) and "value" in item and SECRET_ENV_NAME.search(name):
                findings.append(f"{path}: env {name} has a literal value")
            for key in SECRET_VALUE_KEYS & set(item):
                if item[key] not in (None, "", {}):
                    findings.append(f"{path}.{key}: a credential in clear")
    return findings


def resource_findings(values: Mapping[str, Any]) -> list[str]:
    """Every ``resources`` block in Helm values without both requests and limits of cpu and memory."""
    findings = []
    for path, item in walk(values):
        if path.split(".")[-1] == "resources" and isinstance(item, Mapping):
            for bound in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(item.get(bound) or {})
                if missing:
                    findings.append(f"{path}.{bound}: no {', '.join(sorted(missing))}")
    return findings


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of two values files: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged
