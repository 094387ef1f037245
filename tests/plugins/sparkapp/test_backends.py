"""Choosing a backend: the task's, else the environment's, else local."""

from __future__ import annotations

import pytest

from sparkapp.backends import get_client


def test_get_client_refuses_an_unknown_backend():
    with pytest.raises(ValueError, match="unknown SparkApplication backend 'yarn'; expected one of"):
        get_client("yarn")



def test_backend_is_the_tasks_else_the_environments_else_local(monkeypatch):
    from sparkapp.backends import resolve_backend

    monkeypatch.delenv("SPARKAPP_BACKEND", raising=False)
    assert resolve_backend(None) == "local"
    monkeypatch.setenv("SPARKAPP_BACKEND", "kubernetes")
    assert (resolve_backend(None), resolve_backend("local")) == ("kubernetes", "local")
    monkeypatch.setenv("SPARKAPP_BACKEND", "k8s")
    with pytest.raises(ValueError, match="unknown SparkApplication backend 'k8s'"):
        resolve_backend(None)



def test_each_backend_is_its_hook():
    from sparkapp.hooks.kubernetes import SparkApplicationHook
    from sparkapp.hooks.local import LocalSparkApplicationClient

    local = get_client("local", spark_conn_id="spark_other")
    assert isinstance(local, LocalSparkApplicationClient) and local.spark_conn_id == "spark_other"
    kubernetes = get_client("kubernetes", kubernetes_conn_id="kubernetes_other")
    assert isinstance(kubernetes, SparkApplicationHook)
    assert kubernetes.conn_id == "kubernetes_other"

