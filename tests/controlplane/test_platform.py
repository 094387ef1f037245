"""deploy/ on the real control plane, set up as the platform team would (testing/controlplane/platform.py):
it applies cleanly and idempotently, the worker's RBAC is exactly what rbac.yaml grants, restricted Pod
Security, the LimitRange and the ResourceQuota are enforced, and the SparkApplications ``make manifests``
writes are accepted and get driver pods that restricted Pod Security admits, as the project asked for."""

from __future__ import annotations

import copy
import time

import pytest
import yaml

from testing.controlplane import harness
from testing.controlplane.platform import CLUSTER_DIR, FIELD_MANAGER, TEST_OVERLAY, WORKER_ACCOUNT, Platform

pytestmark = pytest.mark.controlplane

NAMESPACE = "flight-delays-test"
NODE = "kwok-node-0"
WORKER = f"system:serviceaccount:{NAMESPACE}:{WORKER_ACCOUNT}"
GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
DAY = "2013-06-30"
SPARK_APPLICATION_COUNT = f"count/{PLURAL}.{GROUP}"
#: What ``make manifests`` writes for a scheduled run (tests/devtools/test_manifests.py pins the same).
MANIFEST_FILES = ["profiles/submit_features.cpu.yaml", "profiles/submit_training.cpu.yaml",
                  "profiles/submit_training.gpu.yaml", "profiles/submit_validation.cpu.yaml",
                  "submit_features.yaml", "submit_training.yaml"]
#: The resource kubectl names each kind of deploy/ by, in its ``<resource>/<name> serverside-applied``.
KUBECTL_RESOURCE = {
    "PriorityClass": "priorityclass.scheduling.k8s.io", "Namespace": "namespace",
    "ResourceQuota": "resourcequota", "ServiceAccount": "serviceaccount",
    "Role": "role.rbac.authorization.k8s.io", "RoleBinding": "rolebinding.rbac.authorization.k8s.io",
    "ConfigMap": "configmap", "Service": "service", "LimitRange": "limitrange",
    "PersistentVolumeClaim": "persistentvolumeclaim", "Deployment": "deployment.apps",
    "NetworkPolicy": "networkpolicy.networking.k8s.io",
}
RESTRICTED_POD_SECURITY = {
    "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.37",
    "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/audit-version": "v1.37",
    "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/warn-version": "v1.37",
}
#: The tolerations every pod gets from the DefaultTolerationSeconds admission plugin.
DEFAULT_TOLERATIONS = [
    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
     "tolerationSeconds": 300},
    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists",
     "tolerationSeconds": 300},
]


@pytest.fixture(scope="module")
def platform():
    with harness.ControlPlane(kwok=True) as plane:
        plane.add_node(NODE)
        yield Platform(plane).set_up()


@pytest.fixture(scope="module")
def manifests(platform, tmp_path_factory) -> dict[str, dict]:
    """What ``make manifests DATE=2013-06-30`` writes with the test environment's settings, by file."""
    out = tmp_path_factory.mktemp("manifests")
    return {str(p.relative_to(out / DAY)): yaml.safe_load(p.read_text())
            for p in platform.render_manifests(out, DAY)}


def _sanitize(obj) -> object:
    from kubernetes import client
    return client.ApiClient().sanitize_for_serialization(obj)


def _api_error(call) -> tuple[int, str]:
    """The status and the server's message of a refused call."""
    import json

    from kubernetes.client.exceptions import ApiException
    with pytest.raises(ApiException) as info:
        call()
    return info.value.status, json.loads(info.value.body)["message"]


def _pod(name: str, *, container_security: dict | None = None, resources: dict | None = None) -> dict:
    """A pod that restricted Pod Security admits, unless ``container_security`` says otherwise."""
    container = {"name": "job", "image": "busybox:1.36",
                 "securityContext": container_security if container_security is not None else
                 {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
    if resources is not None:
        container["resources"] = resources
    spec: dict = {"containers": [container]}
    if container_security is None:
        spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000,
                                   "seccompProfile": {"type": "RuntimeDefault"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec}


# ------------------------------------------------------------------------------------------- apply


def test_deploy_applies_to_the_real_api_server_server_dry_run_first(platform) -> None:
    from testing.controlplane.platform import render

    def expected(directory, suffix: str) -> list[str]:
        return sorted(f"{KUBECTL_RESOURCE[o['kind']]}/{o['metadata']['name']} serverside-applied{suffix}"
                      for o in render(directory))

    set_up = platform.applies[:4]  # what Platform.set_up applied (later tests apply again)
    assert [(a.directory, a.dry_run) for a in set_up] == [
        (CLUSTER_DIR, True), (TEST_OVERLAY, True), (CLUSTER_DIR, False), (TEST_OVERLAY, False)]
    for applied in set_up:
        suffix = " (server dry run)" if applied.dry_run else ""
        assert sorted(applied.lines) == expected(applied.directory, suffix)
        assert applied.warnings == ""  # no deprecation, no Pod Security warning on the Deployment
    applied_kinds = {line.split("/")[0] for a in set_up for line in a.lines}
    assert applied_kinds == set(KUBECTL_RESOURCE.values())  # every kind of deploy/, none left out


def test_strict_field_validation_refuses_an_unknown_field(platform, tmp_path) -> None:
    from testing.controlplane.platform import PlatformError

    (tmp_path / "kustomization.yaml").write_text("resources: [limitrange.yaml]\n")
    limitrange = yaml.safe_load((TEST_OVERLAY.parents[1] / "base" / "limitrange.yaml").read_text())
    limitrange["metadata"]["namespace"] = NAMESPACE
    limitrange["spec"]["limits"][0]["defaults"] = limitrange["spec"]["limits"][0].pop("default")
    (tmp_path / "limitrange.yaml").write_text(yaml.safe_dump(limitrange))
    with pytest.raises(PlatformError) as info:
        platform.apply(tmp_path, dry_run=True)
    assert info.value.args[0].splitlines()[-1] == (
        f"Error from server: failed to create typed patch object ({NAMESPACE}/container-defaults; /v1, "
        "Kind=LimitRange): .spec.limits[0].defaults: field not declared in schema")


def test_a_second_apply_changes_nothing(platform) -> None:
    import json

    def state(directory) -> dict[tuple[str, str], tuple[str, list]]:
        got = json.loads(platform.kubectl("get", "-k", str(directory), "-o", "json",
                                          "--show-managed-fields").stdout)
        return {(o["kind"], o["metadata"]["name"]): (
                    o["metadata"]["resourceVersion"],
                    [m for m in o["metadata"]["managedFields"] if m["manager"] == FIELD_MANAGER],
                    sorted({m["manager"] for m in o["metadata"]["managedFields"]}))
                for o in got.get("items", [got])}  # a List, or the one object deploy/cluster has

    assert platform.diff(CLUSTER_DIR) == ""
    assert platform.diff(TEST_OVERLAY) == ""
    before = {d: state(d) for d in (CLUSTER_DIR, TEST_OVERLAY)}
    for directory in (CLUSTER_DIR, TEST_OVERLAY):
        platform.apply(directory)
    after = {d: state(d) for d in (CLUSTER_DIR, TEST_OVERLAY)}
    for directory in before:
        assert after[directory].keys() == before[directory].keys()
        for key, (version, ours, managers) in before[directory].items():
            assert len(ours) == 1 and ours[0]["operation"] == "Apply", key
            assert after[directory][key][1] == ours, key  # our fields were not written again
            if managers == [FIELD_MANAGER]:  # nobody else writes it: not written at all
                assert after[directory][key][0] == version, key
    # the namespace was the operator's first (start_spark_operator creates its job namespaces)
    assert before[TEST_OVERLAY][("Namespace", NAMESPACE)][2] == ["OpenAPI-Generator", FIELD_MANAGER]


def test_the_namespace_enforces_restricted_pod_security(platform) -> None:
    from kubernetes import client

    with platform.plane.api_client() as api:
        labels = client.CoreV1Api(api).read_namespace(NAMESPACE).metadata.labels
    assert labels == {**RESTRICTED_POD_SECURITY, "kubernetes.io/metadata.name": NAMESPACE,
                      "app.kubernetes.io/part-of": "flight-delays", "flight-delays/environment": "test"}


# --------------------------------------------------------------------- admission: PSA, limits, quota


def test_a_privileged_pod_is_refused_by_pod_security(platform) -> None:
    from kubernetes import client

    with platform.plane.api_client() as api:  # as admin: the worker may not create pods at all
        core = client.CoreV1Api(api)
        pod = _pod("privileged", container_security={"privileged": True},
                   resources={"limits": {"cpu": "100m", "memory": "64Mi"}})
        assert _api_error(lambda: core.create_namespaced_pod(NAMESPACE, pod)) == (403, (
            'pods "privileged" is forbidden: violates PodSecurity "restricted:v1.37": '
            'privileged (container "job" must not set securityContext.privileged=true), '
            'allowPrivilegeEscalation != false (container "job" must set '
            'securityContext.allowPrivilegeEscalation=false), '
            'unrestricted capabilities (container "job" must set securityContext.capabilities.drop=["ALL"]), '
            'runAsNonRoot != true (pod or container "job" must set securityContext.runAsNonRoot=true), '
            'seccompProfile (pod or container "job" must set securityContext.seccompProfile.type to '
            '"RuntimeDefault" or "Localhost")'))
        # the same pod made restricted is admitted
        admitted = core.create_namespaced_pod(NAMESPACE, _pod("restricted"), dry_run="All")
        assert admitted.metadata.name == "restricted"


def test_the_limit_range_gives_defaults_and_caps_a_container(platform) -> None:
    from kubernetes import client

    with platform.plane.api_client() as api:
        core = client.CoreV1Api(api)
        admitted = core.create_namespaced_pod(NAMESPACE, _pod("no-resources"), dry_run="All")
        assert _sanitize(admitted.spec.containers[0].resources) == {
            "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "250m", "memory": "512Mi"}}
        too_big = _pod("too-big", resources={"limits": {"cpu": "9", "memory": "1Gi"}})
        assert _api_error(lambda: core.create_namespaced_pod(NAMESPACE, too_big, dry_run="All")) == (
            403, 'pods "too-big" is forbidden: maximum cpu usage per Container is 8, but limit is 9')


def test_the_quota_refuses_more_gpus_than_the_namespace_has(platform) -> None:
    from kubernetes import client

    with platform.plane.api_client() as api:
        core = client.CoreV1Api(api)
        pod = _pod("gpus", resources={"limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "5"}})
        assert _api_error(lambda: core.create_namespaced_pod(NAMESPACE, pod, dry_run="All")) == (
            403, 'pods "gpus" is forbidden: exceeded quota: compute, requested: requests.nvidia.com/gpu=5, '
                 'used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=4')


def test_a_quota_applied_before_the_operator_refuses_every_spark_application(manifests) -> None:
    """docs/DEPLOYMENT.md applies the overlays (their quota counts SparkApplications) before installing
    the Spark Operator: on a fresh control plane in that order, every SparkApplication is refused, still
    once the quota controller knows the CRD, until the quota is made again."""
    from kubernetes import client

    manifest = manifests["submit_features.yaml"]
    with harness.ControlPlane() as plane:
        documented = Platform(plane)
        for directory in (CLUSTER_DIR, TEST_OVERLAY):
            documented.apply(directory)
        plane.start_spark_operator(namespaces=[NAMESPACE])
        documented.wait_until_quotable([SPARK_APPLICATION_COUNT])  # the controller counts them now
        with plane.api_client() as api:
            core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

            def create() -> dict:
                return custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, manifest,
                                                              dry_run="All")

            assert SPARK_APPLICATION_COUNT not in core.read_namespaced_resource_quota(
                "compute", NAMESPACE).status.used
            assert _api_error(create) == (403, (
                f'{PLURAL}.{GROUP} "{manifest["metadata"]["name"]}" is forbidden: status unknown for quota: '
                f'compute, resources: {SPARK_APPLICATION_COUNT}'))
            # the remedy: the same quota made again
            core.delete_namespaced_resource_quota("compute", NAMESPACE)
            documented.apply(TEST_OVERLAY)
            documented.wait_for_quotas()
            assert create()["metadata"]["name"] == manifest["metadata"]["name"]


def test_the_spark_history_server_of_deploy_is_admitted_and_runs(platform) -> None:
    from kubernetes import client

    with platform.plane.api_client() as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        deadline = time.monotonic() + 60
        while (apps.read_namespaced_deployment("spark-history", NAMESPACE).status.ready_replicas or 0) != 1:
            assert time.monotonic() < deadline, core.list_namespaced_event(NAMESPACE).items[-5:]
            time.sleep(0.5)
        (pod,) = core.list_namespaced_pod(NAMESPACE,
                                          label_selector="app.kubernetes.io/name=spark-history").items
        assert (pod.status.phase, pod.spec.node_name) == ("Running", NODE)
        claim = core.read_namespaced_persistent_volume_claim("flight-delays-data", NAMESPACE)
        assert (claim.status.phase, claim.spec.volume_name) == ("Bound", f"{NAMESPACE}-flight-delays-data")


# ---------------------------------------------------------------------------------- worker's RBAC


def test_the_worker_may_do_exactly_what_rbac_yaml_grants_in_its_namespace(platform) -> None:
    from kubernetes import client

    with platform.api_client() as api:
        auth = client.AuthorizationV1Api(api)
        review = auth.create_self_subject_rules_review(
            client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace=NAMESPACE)))
    rules = sorted((tuple(r.api_groups or []), tuple(r.resources or []), tuple(r.verbs),
                    tuple(r.resource_names or [])) for r in review.status.resource_rules)
    assert review.status.incomplete is False
    assert rules == sorted([
        (("sparkoperator.k8s.io",), ("sparkapplications",), ("create", "get", "list", "watch", "delete"), ()),
        (("",), ("pods",), ("get",), ()),
        (("",), ("pods/log",), ("get",), ()),
        # every authenticated user's (system:basic-user, the cluster trust bundles' reader)
        (("authentication.k8s.io",), ("selfsubjectreviews",), ("create",), ()),
        (("authorization.k8s.io",), ("selfsubjectaccessreviews", "selfsubjectrulesreviews"), ("create",), ()),
        (("certificates.k8s.io",), ("clustertrustbundles",), ("get", "list", "watch"), ()),
    ])


@pytest.mark.parametrize(("verb", "group", "resource", "subresource", "namespace", "allowed"), [
    *[(v, GROUP, PLURAL, "", NAMESPACE, True) for v in ("create", "get", "list", "watch", "delete")],
    ("get", "", "pods", "", NAMESPACE, True),
    ("get", "", "pods", "log", NAMESPACE, True),
    # no changing an application (the operator would rerun it), nor its status
    *[(v, GROUP, PLURAL, "", NAMESPACE, False) for v in ("update", "patch", "deletecollection")],
    ("update", GROUP, PLURAL, "status", NAMESPACE, False),
    ("create", GROUP, "scheduledsparkapplications", "", NAMESPACE, False),
    # pods: read the driver by name only; the scheduler's account launches pods, not the worker's
    *[(v, "", "pods", "", NAMESPACE, False) for v in ("list", "watch", "create", "delete", "patch")],
    ("create", "", "pods", "exec", NAMESPACE, False),
    ("get", "", "pods", "exec", NAMESPACE, False),
    *[(v, "", "secrets", "", NAMESPACE, False) for v in ("get", "list", "watch")],
    ("get", "", "configmaps", "", NAMESPACE, False),
    ("create", "", "serviceaccounts", "token", NAMESPACE, False),
    ("create", "rbac.authorization.k8s.io", "rolebindings", "", NAMESPACE, False),
    ("get", "", "resourcequotas", "", NAMESPACE, False),
    # nothing in another namespace
    *[(v, GROUP, PLURAL, "", ns, False) for v in ("create", "get", "list")
      for ns in ("default", "flight-delays-prod", harness.SPARK_OPERATOR_NAMESPACE)],
    ("get", "", "pods", "", "default", False),
    ("list", "", "namespaces", "", "", False),
])
def test_the_worker_access_review(platform, verb, group, resource, subresource, namespace, allowed) -> None:
    from kubernetes import client

    with platform.api_client() as api:
        attributes = client.V1ResourceAttributes(verb=verb, group=group, resource=resource,
                                                 subresource=subresource or None, namespace=namespace or None)
        review = client.AuthorizationV1Api(api).create_self_subject_access_review(
            client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=attributes)))
    assert review.status.allowed is allowed


def test_the_worker_is_refused_with_403_by_the_server(platform) -> None:
    from kubernetes import client

    with platform.api_client() as api:
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        assert custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"] == []
        refused = {
            "create pod": lambda: core.create_namespaced_pod(NAMESPACE, _pod("job"), dry_run="All"),
            "list pods": lambda: core.list_namespaced_pod(NAMESPACE),
            "read secret": lambda: core.read_namespaced_secret("flight-delays-mlflow", NAMESPACE),
            "list secrets": lambda: core.list_namespaced_secret(NAMESPACE),
            "list elsewhere": lambda: custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL),
        }
        got = {what: _api_error(call) for what, call in refused.items()}

    def forbidden(verb: str, resource: str, group: str, namespace: str, name: str = "") -> tuple[int, str]:
        qualified = f"{resource}.{group}" if group else resource
        subject = f'{qualified} "{name}"' if name else qualified
        return 403, (f'{subject} is forbidden: User "{WORKER}" cannot {verb} resource "{resource}" in API '
                     f'group "{group}" in the namespace "{namespace}"')

    assert got == {
        "create pod": forbidden("create", "pods", "", NAMESPACE),
        "list pods": forbidden("list", "pods", "", NAMESPACE),
        "read secret": forbidden("get", "secrets", "", NAMESPACE, "flight-delays-mlflow"),
        "list secrets": forbidden("list", "secrets", "", NAMESPACE),
        "list elsewhere": forbidden("list", PLURAL, GROUP, "default"),
    }


@pytest.mark.parametrize("inline", [False, True], ids=["kube_config_path", "kube_config"])
def test_the_airflow_connection_authenticates_as_the_worker(platform, monkeypatch, inline) -> None:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes import client

    for name, value in platform.connection_env(inline=inline).items():
        monkeypatch.setenv(name, value)
    hook = KubernetesHook(conn_id="kubernetes_default")
    assert hook.get_namespace() == NAMESPACE
    review = client.AuthenticationV1Api(hook.get_conn()).create_self_subject_review(
        client.V1SelfSubjectReview())
    assert review.status.user_info.username == WORKER
    assert sorted(review.status.user_info.groups) == [
        "system:authenticated", "system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}"]


# ------------------------------------------------------------------------------ the project's apps


def test_make_manifests_writes_applications_for_the_test_namespace(manifests) -> None:
    assert sorted(manifests) == MANIFEST_FILES
    assert {m["metadata"]["namespace"] for m in manifests.values()} == {NAMESPACE}
    assert {m["spec"]["driver"]["serviceAccount"] for m in manifests.values()} == {"spark"}


def test_every_manifest_is_accepted_with_strict_field_validation_as_the_worker(platform, manifests) -> None:
    from kubernetes import client

    with platform.api_client() as api:
        custom = client.CustomObjectsApi(api)
        for path, manifest in manifests.items():
            stored = custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, manifest,
                                                            dry_run="All", field_validation="Strict")
            # nothing pruned, nothing defaulted by the operator's webhook
            assert stored["spec"] == manifest["spec"], path
            assert {k: stored["metadata"][k] for k in ("name", "namespace", "labels", "annotations")} == \
                manifest["metadata"], path
        # strict: an unknown field is refused, not pruned in silence
        typo = copy.deepcopy(manifests["submit_features.yaml"])
        typo["spec"]["driver"]["coreLimits"] = typo["spec"]["driver"].pop("coreLimit")
        assert _api_error(lambda: custom.create_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, typo, dry_run="All", field_validation="Strict")) == (
            400, 'SparkApplication in version "v1beta2" cannot be handled as a SparkApplication: '
                 'strict decoding error: unknown field "spec.driver.coreLimits"')


def _quota_used(platform, resource: str) -> int:
    from kubernetes import client
    with platform.plane.api_client() as api:  # as admin: the worker may not read quotas
        used = client.CoreV1Api(api).read_namespaced_resource_quota("compute", NAMESPACE).status.used
    return int(used[resource])


def _settled_application_count(platform, timeout: float = 60) -> int:
    """The quota's count of SparkApplications once it equals how many there are (the controller
    recounts after a deletion, asynchronously; creation is counted by admission, synchronously)."""
    from kubernetes import client
    deadline = time.monotonic() + timeout
    with platform.plane.api_client() as api:
        custom = client.CustomObjectsApi(api)
        while True:
            there = len(custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"])
            counted = _quota_used(platform, SPARK_APPLICATION_COUNT)
            if counted == there:
                return counted
            assert time.monotonic() < deadline, f"the quota counts {counted} SparkApplications, {there} exist"
            time.sleep(0.5)


def _exists(read) -> bool:
    """Whether ``read()`` finds its object (False on 404)."""
    from kubernetes.client.exceptions import ApiException
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _wait_until_gone(platform, name: str, *, pods: list[str], timeout: float = 60) -> None:
    """Wait until application ``name`` and ``pods`` are gone (read as the worker, which may get both)."""
    from kubernetes import client
    with platform.api_client() as api:
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        reads = {name: lambda: custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name),
                 **{pod: (lambda pod=pod: core.read_namespaced_pod(pod, NAMESPACE)) for pod in pods}}
        deadline = time.monotonic() + timeout
        while left := [what for what, read in reads.items() if _exists(read)]:
            assert time.monotonic() < deadline, f"still there {timeout:.0f} s after the deletion: {left}"
            time.sleep(0.5)


def _wait_for_driver(api, name: str, timeout: float = 120):
    """The application RUNNING and its driver pod Running, read as the worker."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while True:
        app = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        state = app.get("status", {}).get("applicationState", {})
        assert state.get("state") not in ("SUBMISSION_FAILED", "FAILED"), state
        if state.get("state") == "RUNNING":
            try:
                pod = core.read_namespaced_pod(f"{name}-driver", NAMESPACE)
            except ApiException as exc:
                if exc.status != 404:
                    raise
            else:
                if pod.status.phase == "Running":
                    return app, pod
        assert time.monotonic() < deadline, (state, app.get("status"))
        time.sleep(0.5)


# Resources of the driver container: requests = limits = cores / coreLimit, and memory plus Spark's
# overhead for a Python application (40%, at least 384Mi): 1g -> 1433Mi, 2g -> 2867Mi.
@pytest.mark.parametrize(("path", "resources", "priority_class", "priority"), [
    ("submit_features.yaml", {"cpu": "1", "memory": "1433Mi"}, None, 0),
    ("profiles/submit_training.gpu.yaml", {"cpu": "1", "memory": "2867Mi"}, "ml-training", 100000),
])
def test_the_driver_pod_is_admitted_and_carries_what_the_manifest_asks(
        platform, manifests, monkeypatch, path, resources, priority_class, priority) -> None:

    from sparkapp.hooks.kubernetes import SparkApplicationHook

    manifest = manifests[path]
    name, driver = manifest["metadata"]["name"], manifest["spec"]["driver"]
    for key, value in platform.connection_env().items():
        monkeypatch.setenv(key, value)
    hook = SparkApplicationHook(kubernetes_conn_id="kubernetes_default")
    counted = _settled_application_count(platform)
    hook.create_application(manifest)
    try:
        assert _quota_used(platform, SPARK_APPLICATION_COUNT) == counted + 1  # the quota admitted it
        with platform.api_client() as api:
            app, pod = _wait_for_driver(api, name)
        assert app["status"]["driverInfo"]["podName"] == f"{name}-driver"
        spec = _sanitize(pod.spec)
        (container,) = spec["containers"]
        assert "initContainers" not in spec
        assert container["name"] == "spark-kubernetes-driver"
        assert (container["image"], container["imagePullPolicy"]) == (manifest["spec"]["image"],
                                                                      manifest["spec"]["imagePullPolicy"])
        # set by the webhook from the manifest, exactly
        assert spec["securityContext"] == driver["podSecurityContext"]
        assert container["securityContext"] == driver["securityContext"]
        assert container["envFrom"] == driver["envFrom"]
        assert [v for v in spec["volumes"] if v["name"] == "data"] == manifest["spec"]["volumes"]
        assert [m for m in container["volumeMounts"] if m["name"] == "data"] == driver["volumeMounts"]
        assert container["resources"] == {"requests": resources, "limits": resources}
        assert spec["tolerations"] == DEFAULT_TOLERATIONS  # the driver has none of its own in any profile
        assert "nodeSelector" not in spec and "affinity" not in spec
        assert (spec.get("priorityClassName"), spec["priority"]) == (priority_class, priority)
        assert spec["serviceAccountName"] == driver["serviceAccount"]
        assert {k: pod.metadata.labels[k] for k in driver["labels"]} == driver["labels"]
        assert {p["containerPort"]: p["name"] for p in container["ports"]}[
            manifest["spec"]["monitoring"]["prometheus"]["port"]] == "jmx-exporter"
        # every volume is of a type restricted Pod Security allows; the spark account's token is mounted
        kinds = {v["name"]: sorted(set(v) - {"name"}) for v in spec["volumes"]}
        assert {k for vs in kinds.values() for k in vs} == {"configMap", "emptyDir", "persistentVolumeClaim",
                                                            "projected"}
        assert any(n.startswith("kube-api-access-") for n in kinds)
        assert (pod.status.phase, spec["nodeName"], pod.status.qos_class) == ("Running", NODE, "Guaranteed")
    finally:
        assert hook.delete_application(name, NAMESPACE) is True
    # the garbage collector removes the driver pod with its application (it owns the pod)
    _wait_until_gone(platform, name, pods=[f"{name}-driver"])


# ------------------------------------------------------------------------- the GPU profile's executors


def _java_properties(text: str) -> dict[str, str]:
    """``key=value`` lines of a Java properties file (Spark's spark.properties), unescaped."""
    def unescape(value: str) -> str:
        return value.replace("\\:", ":").replace("\\=", "=").replace("\\\\", "\\")
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {unescape(k): unescape(v) for k, v in pairs}


def _mebibytes(size: str) -> int:
    """A JVM size (``8g``, ``512m``) in MiB."""
    return int(size[:-1]) * {"g": 1024, "m": 1}[size[-1].lower()]


def _executor_pod(conf: dict[str, str], driver, exec_id: int) -> dict:
    """Executor ``exec_id`` as Spark's driver builds it (BasicExecutorFeatureStep) from its
    spark.properties: what the webhook then mutates. The driver does not run on KWOK, so the test
    stands in for it; everything else here (webhook, admission, scheduler) is the real component."""
    prefix = {kind: f"spark.kubernetes.executor.{kind}." for kind in ("label", "annotation")}
    memory = _mebibytes(conf["spark.executor.memory"]) + _mebibytes(conf["spark.executor.memoryOverhead"])
    cores = conf.get("spark.kubernetes.executor.request.cores", conf["spark.executor.cores"])
    limits = {"cpu": conf["spark.kubernetes.executor.limit.cores"], "memory": f"{memory}Mi"}
    if "spark.executor.resource.gpu.amount" in conf:
        vendor = conf["spark.executor.resource.gpu.vendor"]
        limits[f"{vendor}/gpu"] = conf["spark.executor.resource.gpu.amount"]
    labels = {k[len(prefix["label"]):]: v for k, v in conf.items() if k.startswith(prefix["label"])}
    labels.update({"spark-app-selector": conf["spark.app.id"], "spark-role": "executor",
                   "spark-exec-id": str(exec_id), "spark-exec-resourceprofile-id": "0",
                   "spark-app-name": driver.metadata.labels["spark-app-name"]})
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{conf['spark.app.name']}-exec-{exec_id}", "labels": labels,
                     "annotations": {k[len(prefix["annotation"]):]: v for k, v in conf.items()
                                     if k.startswith(prefix["annotation"])},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": driver.metadata.name,
                                          "uid": driver.metadata.uid, "controller": True}]},
        "spec": {"restartPolicy": "Never", "hostname": f"{conf['spark.app.name']}-exec-{exec_id}",
                 "serviceAccountName": conf.get("spark.kubernetes.authenticate.executor.serviceAccountName",
                                                driver.spec.service_account_name),
                 "containers": [{
                     "name": conf["spark.kubernetes.executor.podTemplateContainerName"],
                     "image": conf["spark.kubernetes.executor.container.image"],
                     "imagePullPolicy": conf["spark.kubernetes.container.image.pullPolicy"],
                     "args": ["executor"],
                     "resources": {"requests": {"cpu": cores, "memory": f"{memory}Mi"}, "limits": limits}}]},
    }


def _add_gpu_node(plane, name: str) -> None:
    """A KWOK node as NVIDIA's GPU Operator leaves one: 2 GPUs, GPU Feature Discovery's label, and the
    taint GPU node pools carry."""
    from kubernetes import client
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "2"}
    with plane.api_client() as api:
        client.CoreV1Api(api).create_node(client.V1Node(
            metadata=client.V1ObjectMeta(name=name, annotations={harness.KWOK_NODE_ANNOTATION: "fake"},
                                         labels={"type": "kwok", "kubernetes.io/hostname": name,
                                                 "nvidia.com/gpu.present": "true"}),
            spec=client.V1NodeSpec(taints=[client.V1Taint(key="nvidia.com/gpu", value="present",
                                                          effect="NoSchedule")]),
            status=client.V1NodeStatus(capacity=capacity, allocatable=capacity)))


def test_a_gpu_executor_gets_its_profile_from_the_webhook_and_runs_only_on_a_gpu_node(
        platform, manifests, monkeypatch) -> None:
    from kubernetes import client

    from sparkapp.hooks.kubernetes import SparkApplicationHook

    manifest = manifests["profiles/submit_training.gpu.yaml"]
    name, executor = manifest["metadata"]["name"], manifest["spec"]["executor"]
    for key, value in platform.connection_env().items():
        monkeypatch.setenv(key, value)
    hook = SparkApplicationHook(kubernetes_conn_id="kubernetes_default")
    hook.create_application(manifest)
    try:
        with platform.api_client() as api:
            _, driver = _wait_for_driver(api, name)
        (conf_volume,) = [v for v in driver.spec.volumes if v.name == "spark-conf-volume-driver"]
        with platform.plane.api_client() as api:
            conf = _java_properties(client.CoreV1Api(api).read_namespaced_config_map(
                conf_volume.config_map.name, NAMESPACE).data["spark.properties"])
        gpus = _quota_used(platform, "requests.nvidia.com/gpu")
        with platform.api_client("spark") as api:  # as the driver: deploy/'s spark Role lets it
            core = client.CoreV1Api(api)
            created = core.create_namespaced_pod(NAMESPACE, _executor_pod(conf, driver, 1))
        assert _quota_used(platform, "requests.nvidia.com/gpu") == gpus + 1
        spec = _sanitize(created.spec)
        (container,) = spec["containers"]
        gpu = {"cpu": "4", "memory": "14Gi", "nvidia.com/gpu": "1"}  # 8g heap + 6g overhead, one GPU
        assert container["resources"] == {"requests": gpu, "limits": gpu}
        assert spec["nodeSelector"] == executor["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert spec["tolerations"] == DEFAULT_TOLERATIONS + executor["tolerations"]
        assert (spec["priorityClassName"], spec["priority"]) == (executor["priorityClassName"], 100000)
        assert spec["securityContext"] == executor["podSecurityContext"]
        assert container["securityContext"] == executor["securityContext"]
        assert container["envFrom"] == executor["envFrom"]
        assert [v for v in spec["volumes"] if v["name"] == "data"] == manifest["spec"]["volumes"]
        assert [m for m in container["volumeMounts"] if m["name"] == "data"] == executor["volumeMounts"]

        # no GPU node: it waits, and the scheduler says why
        pod_name = created.metadata.name
        with platform.plane.api_client() as api:
            admin = client.CoreV1Api(api)
            deadline = time.monotonic() + 60
            while not (conditions := {c.type: c for c in admin.read_namespaced_pod(
                    pod_name, NAMESPACE).status.conditions or []}).get("PodScheduled"):
                assert time.monotonic() < deadline, "the scheduler did not consider the executor"
                time.sleep(0.5)
            scheduled = conditions["PodScheduled"]
            assert (scheduled.status, scheduled.reason, scheduled.message) == (
                "False", "Unschedulable", "0/1 nodes are available: 1 node(s) didn't match Pod's node "
                "affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for "
                "scheduling.")
            _add_gpu_node(platform.plane, "kwok-gpu-node-0")
            while (pod := admin.read_namespaced_pod(pod_name, NAMESPACE)).status.phase != "Running":
                assert time.monotonic() < deadline + 60, pod.status.conditions
                time.sleep(0.5)
            assert pod.spec.node_name == "kwok-gpu-node-0"
    finally:
        assert hook.delete_application(name, NAMESPACE) is True
    # the executor goes with its driver (it owns it), the driver with its application
    _wait_until_gone(platform, name, pods=[f"{name}-driver", f"{name}-exec-1"])
