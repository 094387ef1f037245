"""The Kubernetes backend's hook against the fake API server: its answers to the API's errors.

How the operator and the sensor behave through it, scenario by scenario, is in
``tests/scenarios/test_kubernetes_backend.py``.
"""

from __future__ import annotations

import json
import re

import pytest
from airflow.providers.cncf.kubernetes import kubernetes_helper_functions
from kubernetes.client.exceptions import ApiException

from sparkapp.application import render_manifest
from sparkapp.client import ApplicationNotFound, SparkApplicationApiError
from sparkapp.hooks import kubernetes as kubernetes_hook
from sparkapp.hooks.kubernetes import SparkApplicationHook, api_message, retry_after
from testing.kubernetes_api import Fault
from tests.plugins.sparkapp.fakes import CONN_ID, JOB, NAMESPACE


def test_invalid_name_is_refused_with_the_api_message(fake_k8s):
    manifest = render_manifest(JOB, name="features-20130630-abcdef12", namespace=NAMESPACE)
    manifest["metadata"]["name"] = "Features_X"  # bypassing render-time validation on purpose
    expected = 'HTTP 422: SparkApplication.sparkoperator.k8s.io "Features_X" is invalid'
    with pytest.raises(SparkApplicationApiError, match=re.escape(expected)):
        SparkApplicationHook(kubernetes_conn_id=CONN_ID).create_application(manifest)


def test_api_message_is_the_status_message_else_the_http_reason():
    status = ApiException(status=403, reason="Forbidden")
    status.body = json.dumps({"kind": "Status", "message": 'sparkapplications is forbidden: User "x"'})
    assert api_message(status) == 'sparkapplications is forbidden: User "x"'
    not_json = ApiException(status=502, reason="Bad Gateway")
    not_json.body = "<html>bad gateway</html>"
    assert api_message(not_json) == "502 Bad Gateway"
    assert api_message(ApiException(status=500, reason="Server Error")) == "500 Server Error"


def test_retry_after_is_the_header_else_the_status_details_capped_at_a_minute():
    header = ApiException(status=429, reason="TooManyRequests")
    header.headers = {"Retry-After": "3"}
    details = ApiException(status=500, reason="InternalError")
    details.body = json.dumps({"kind": "Status", "details": {"retryAfterSeconds": 600}})
    assert (retry_after(header), retry_after(details), retry_after(ApiException(status=500))) == (3.0, 60.0,
                                                                                                   None)


def test_a_missing_application_is_not_found_and_deleting_it_says_so(fake_k8s):
    hook = SparkApplicationHook(kubernetes_conn_id=CONN_ID)
    expected = f"SparkApplication nope not found in namespace {NAMESPACE}"
    with pytest.raises(ApplicationNotFound, match=f"^{re.escape(expected)}$"):
        hook.get_application("nope", NAMESPACE)
    assert hook.delete_application("nope", NAMESPACE) is False


def application(pod_name: str | None) -> dict:
    status = {"driverInfo": {"podName": pod_name}} if pod_name else {}
    return {"metadata": {"name": "features-20130630-abcdef12", "namespace": NAMESPACE}, "status": status}


def test_without_a_driver_pod_there_is_no_log_and_no_pending_reason(fake_k8s):
    hook = SparkApplicationHook(kubernetes_conn_id=CONN_ID)
    for app in (application(None), application("features-20130630-abcdef12-driver")):  # none yet; gone
        assert hook.read_driver_log(app, 50) is None
        assert hook.pending_reason(app) is None
    assert fake_k8s.count("GET", "/pods/") == 2  # nothing asked before the operator names a pod


def test_the_driver_pod_is_the_one_the_operator_recorded(fake_k8s):
    hook = SparkApplicationHook(kubernetes_conn_id=CONN_ID)
    fake_k8s.pods[(NAMESPACE, "spark-7f3a-driver")] = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "spark-7f3a-driver"}, "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no node"}]}}
    fake_k8s.logs[(NAMESPACE, "spark-7f3a-driver")] = ["one", "two", "three"]
    assert hook.read_driver_log(application("spark-7f3a-driver"), 2) == ["two", "three"]
    assert hook.pending_reason(application("spark-7f3a-driver")) == "Unschedulable: no node"


def test_driver_log_and_pod_reads_are_retried_then_fail_with_the_api_message(fake_k8s):
    hook = SparkApplicationHook(kubernetes_conn_id=CONN_ID)
    pod = "features-20130630-abcdef12-driver"
    fake_k8s.pods[(NAMESPACE, pod)] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod},
                                       "status": {"phase": "Running"}}
    fake_k8s.logs[(NAMESPACE, pod)] = ["done"]
    fake_k8s.inject(Fault("GET", f"{pod}/log$", 503, times=2))
    assert hook.read_driver_log(application(pod), 5) == ["done"]
    assert fake_k8s.count("GET", f"{pod}/log$") == 3
    fake_k8s.inject(Fault("GET", f"{pod}/log$", 502, times=99))
    expected = (f"Reading the driver log of SparkApplication features-20130630-abcdef12 in namespace "
                f"{NAMESPACE} failed with HTTP 502: injected InternalError")
    with pytest.raises(SparkApplicationApiError, match=f"^{re.escape(expected)}$"):
        hook.read_driver_log(application(pod), 5)
    assert fake_k8s.count("GET", f"{pod}/log$") == 3 + kubernetes_helper_functions.API_RETRIES
    fake_k8s.inject(Fault("GET", f"pods/{pod}$", 500, times=1))
    assert hook.pending_reason(application(pod)) is None  # retried: Running, nothing pending


def test_a_request_that_hangs_times_out_and_is_retried(fake_k8s, monkeypatch):
    monkeypatch.setattr(kubernetes_hook, "REQUEST_TIMEOUT", (1.0, 0.3))
    hook = SparkApplicationHook(kubernetes_conn_id=CONN_ID)
    manifest = render_manifest(JOB, name="features-20130630-abcdef12", namespace=NAMESPACE)
    hook.create_application(manifest)
    fake_k8s.inject(Fault("GET", "sparkapplications/features-20130630-abcdef12$", 0, latency=3))
    assert hook.get_application("features-20130630-abcdef12", NAMESPACE)["metadata"]["name"] == (
        "features-20130630-abcdef12")
    assert fake_k8s.count("GET", "sparkapplications/features-20130630-abcdef12$") == 2


class FakeClock:
    """``time.monotonic`` and ``time.sleep`` of the hook's module: sleeping advances the clock."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """A fake clock, and create's backoff as the provider's defaults (tests/conftest.py sets 0 s)."""
    fake = FakeClock()
    monkeypatch.setattr(kubernetes_hook, "time", fake)
    monkeypatch.setattr(kubernetes_hook, "CREATE_RETRY_WAIT", (1.0, 15.0))
    return fake


WEBHOOK_DOWN = ('Internal error occurred: failed calling webhook "mutate-sparkoperator-k8s-io-v1beta2-'
                'sparkapplication.sparkoperator.k8s.io": failed to call webhook: Post "https://127.0.0.1:'
                '9443/mutate-sparkoperator-k8s-io-v1beta2-sparkapplication?timeout=10s": dial tcp '
                "127.0.0.1:9443: connect: connection refused")


def test_create_backs_off_through_a_webhook_rollout_then_succeeds(fake_k8s, clock):
    fake_k8s.inject(Fault("POST", "/sparkapplications$", 500, times=4, message=WEBHOOK_DOWN))
    manifest = render_manifest(JOB, name="features-20130630-abcdef12", namespace=NAMESPACE)
    stored = SparkApplicationHook(kubernetes_conn_id=CONN_ID).create_application(manifest)
    assert stored["metadata"]["name"] == "features-20130630-abcdef12"
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]  # from api_retry_wait_min, doubling
    assert fake_k8s.count("POST", "/sparkapplications$") == 5
    # after each 500 it was read back (a 5xx may come after the write), found absent
    assert fake_k8s.count("GET", "sparkapplications/features-20130630-abcdef12$") == 4
    assert fake_k8s.created == ["features-20130630-abcdef12"]


def test_create_honours_retry_after_and_does_not_read_back_after_429(fake_k8s, clock):
    fake_k8s.inject(Fault("POST", "/sparkapplications$", 429, times=2, headers={"Retry-After": "7"}))
    manifest = render_manifest(JOB, name="features-20130630-abcdef12", namespace=NAMESPACE)
    SparkApplicationHook(kubernetes_conn_id=CONN_ID).create_application(manifest)
    assert clock.sleeps == [7.0, 7.0]
    assert fake_k8s.count("GET", "sparkapplications/") == 0
    assert fake_k8s.created == ["features-20130630-abcdef12"]


def test_create_gives_up_after_its_budget_with_the_servers_last_answer(fake_k8s, clock):
    fake_k8s.inject(Fault("POST", "/sparkapplications$", 500, times=99, message=WEBHOOK_DOWN))
    manifest = render_manifest(JOB, name="features-20130630-abcdef12", namespace=NAMESPACE)
    with pytest.raises(SparkApplicationApiError) as raised:
        SparkApplicationHook(kubernetes_conn_id=CONN_ID).create_application(manifest)
    # waits of 1, 2, 4, 8, then 15 s (api_retry_wait_max) until the next would pass 180 s
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0] + [15.0] * 11
    assert str(raised.value) == (
        f"Creating SparkApplication features-20130630-abcdef12 in namespace {NAMESPACE} failed 16 time(s) "
        f"over 180 s; the API server's last answer: HTTP 500: {WEBHOOK_DOWN}")
    assert raised.value.status == 500 and fake_k8s.apps == {}


def test_check_access_lists_the_namespace_or_says_why_not(fake_k8s):
    hook = SparkApplicationHook(kubernetes_conn_id=CONN_ID)
    assert hook.check_access(None) == f"Kubernetes API {fake_k8s.url}, namespace {NAMESPACE}"
    fake_k8s.inject(Fault("GET", r"/sparkapplications$", 403))
    expected = f"Listing SparkApplications in namespace {NAMESPACE} failed with HTTP 403: injected Forbidden"
    with pytest.raises(SparkApplicationApiError, match=re.escape(expected)):
        hook.check_access(None)


def test_create_waits_for_a_quota_that_has_not_counted_spark_applications_yet(fake_k8s, clock):
    message = ('sparkapplications.sparkoperator.k8s.io "features-20130630-abcdef12" is forbidden: status '
               "unknown for quota: compute, resources: count/sparkapplications.sparkoperator.k8s.io")
    fake_k8s.inject(Fault("POST", "/sparkapplications$", 403, times=2, message=message))
    manifest = render_manifest(JOB, name="features-20130630-abcdef12", namespace=NAMESPACE)
    SparkApplicationHook(kubernetes_conn_id=CONN_ID).create_application(manifest)
    assert clock.sleeps == [1.0, 2.0] and fake_k8s.created == ["features-20130630-abcdef12"]
    fake_k8s.inject(Fault("POST", "/sparkapplications$", 403, message="forbidden: User cannot create"))
    other = render_manifest(JOB, name="features-20130701-abcdef12", namespace=NAMESPACE)
    with pytest.raises(SparkApplicationApiError, match="failed with HTTP 403: forbidden: User cannot create"):
        SparkApplicationHook(kubernetes_conn_id=CONN_ID).create_application(other)  # any other 403: at once
