"""No credential in the repository: connections, MLflow and object-storage credentials come from
Kubernetes Secrets or a secrets backend (docs/DEPLOYMENT.md), never from files we commit. A line
that only names a Secret, or a planted test value, carries detect-secrets' own
``pragma: allowlist secret`` comment.

The scan is detect-secrets' (Yelp) with its default plugins (AWS and other cloud keys, private keys,
basic-auth URLs, JWTs, "password = ..." assignments, high-entropy strings in YAML/JSON/Python...),
over every file git tracks.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def scan(files: list[Path]) -> list[str]:
    """``file:line: type`` of every secret detect-secrets finds in ``files``."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    secrets = SecretsCollection()
    with default_settings():
        for path in files:
            secrets.scan_file(str(path))
    def shown(name: str) -> str:
        path = Path(name)
        return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else name

    return sorted(f"{shown(name)}:{secret.line_number}: {secret.type}" for name, secret in secrets)


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True,
                            timeout=60).stdout.decode().split("\0")
    return [PROJECT_ROOT / name for name in listed if name and (PROJECT_ROOT / name).is_file()]


def test_no_file_git_tracks_holds_a_credential():
    files = tracked_files()
    assert len(files) > 100  # the scan saw the repository, not an empty list
    assert {"Dockerfile", "Dockerfile.spark", "dags/flight_delay_retraining.py"} <= {
        str(f.relative_to(PROJECT_ROOT)) for f in files}
    assert scan(files) == []


def test_the_scan_finds_planted_credentials(tmp_path):
    planted = tmp_path / "values.yaml"
    planted.write_text(
        "env:\n"
        "  - name: AWS_ACCESS_KEY_ID\n"
        "    value: AKIAZ7QJ3N5VX2LKMW4R\n"  # pragma: allowlist secret (planted)
        # pragma: allowlist nextline secret
        "metadataConnection: postgresql://airflow:s3cr3t-Pa55w0rd@db.example.com:5432/airflow\n"
        "password: hunter2-but-longer\n"  # pragma: allowlist secret (planted)
        "fernetKeySecretName: flight-delays-airflow-fernet-key  # pragma: allowlist secret\n"
    )
    # the last line names a Secret, and says so with detect-secrets' pragma, as deploy/helm does
    assert scan([planted]) == [f"{planted}:3: AWS Access Key", f"{planted}:4: Basic Auth Credentials",
                               f"{planted}:5: Secret Keyword"]
