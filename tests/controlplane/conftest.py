"""Registers the ``controlplane`` marker (until pyproject.toml lists it beside ``e2e``)."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "controlplane: starts a real one-machine Kubernetes control plane (testing/controlplane); "
        "the first run on a machine builds it from the Go module proxy (minutes), later runs reuse the cache",
    )
