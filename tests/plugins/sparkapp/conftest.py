from __future__ import annotations

# The fake Kubernetes API server and its simulated Spark Operator, as fixtures of these tests.
from tests.plugins.sparkapp.fakes import controller, fake_k8s

__all__ = ["controller", "fake_k8s"]
