"""The Kubernetes backend's hook against the fake API server: its answers to the API's errors.

How the operator and the sensor behave through it, scenario by scenario, is in
``tests/scenarios/test_kubernetes_backend.py``.
"""

from __future__ import annotations

import json
import re

import pytest
from kubernetes.client.exceptions import ApiException

from sparkapp.application import render_manifest
from sparkapp.client import ApplicationNotFound, SparkApplicationApiError
from sparkapp.hooks.kubernetes import SparkApplicationHook, api_message
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


def test_a_missing_application_is_not_found_and_deleting_it_says_so(fake_k8s):
    hook = SparkApplicationHook(kubernetes_conn_id=CONN_ID)
    expected = f"SparkApplication nope not found in namespace {NAMESPACE}"
    with pytest.raises(ApplicationNotFound, match=f"^{re.escape(expected)}$"):
        hook.get_application("nope", NAMESPACE)
    assert hook.delete_application("nope", NAMESPACE) is False


def test_without_a_driver_pod_there_is_no_log_and_no_pending_reason(fake_k8s):
    hook = SparkApplicationHook(kubernetes_conn_id=CONN_ID)
    assert hook.read_driver_log("nope", NAMESPACE, 50) is None
    assert hook.driver_pending_reason("nope", NAMESPACE) is None


def test_check_access_lists_the_namespace_or_says_why_not(fake_k8s):
    hook = SparkApplicationHook(kubernetes_conn_id=CONN_ID)
    assert hook.check_access(None) == f"Kubernetes API {fake_k8s.url}, namespace {NAMESPACE}"
    fake_k8s.inject(Fault("GET", r"/sparkapplications$", 403))
    expected = f"Listing SparkApplications in namespace {NAMESPACE} failed with HTTP 403: injected Forbidden"
    with pytest.raises(SparkApplicationApiError, match=re.escape(expected)):
        hook.check_access(None)
