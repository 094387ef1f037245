"""A PostgreSQL server for the local Airflow, as an ordinary process with a folder of its own.

``make airflow`` (:mod:`devtools.local_airflow`) keeps Airflow's metadata in PostgreSQL, as a
deployment does: four components and the LocalExecutor's workers write at once, which SQLite refuses
for some operations (backfill creation answers 503 "Database is locked" under concurrent access).

:class:`LocalPostgres` uses Debian's ``postgresql`` package (its binaries under
``/usr/lib/postgresql/<major>/bin``, or ``$POSTGRES_BIN_DIR``). Its folder holds the cluster
(``data/``, created by ``initdb`` on first start), the generated password of its one role
(``password``, mode 0600, generated once and kept, as Airflow keeps the admin's) and the server's log
(``postgres.log``). It listens on 127.0.0.1 only, on a port chosen when it starts, with password
authentication (SCRAM) and no Unix socket. PostgreSQL refuses to run as root: as root, it runs in a
user namespace of its own where it is an ordinary user (``unshare --user``), so the folder stays
the caller's and no account or permission outside it changes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

#: The role and database of Airflow's metadata.
ROLE = DATABASE = "airflow"
#: The user id PostgreSQL sees itself as, in its user namespace, when started by root.
NAMESPACE_UID = 1000


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, initialised or started; the message says why and what to do."""


def find_bin_dir(env: dict[str, str] | None = None) -> Path:
    """The folder of ``initdb`` and ``postgres``: ``$POSTGRES_BIN_DIR``, else the newest of Debian's."""
    configured = (env or os.environ).get("POSTGRES_BIN_DIR")
    candidates = [Path(configured)] if configured else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _major(p.parent.name), reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    where = f"POSTGRES_BIN_DIR={configured}" if configured else "/usr/lib/postgresql/*/bin"
    raise PostgresError(f"PostgreSQL's initdb and postgres are not in {where}. Install Debian's "
                        "postgresql package (apt-get install postgresql), or set POSTGRES_BIN_DIR.")


def _major(name: str) -> int:
    return int(name) if name.isdigit() else -1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalPostgres:
    """One PostgreSQL cluster under ``folder``, started and stopped by its owner.

    :param folder: the cluster's folder (created when missing).
    :param bin_dir: PostgreSQL's binaries (default :func:`find_bin_dir`).
    :param port: the port to listen on (default: a free one, chosen at each start).
    """

    def __init__(self, folder: Path, *, bin_dir: Path | None = None, port: int | None = None) -> None:
        self.folder = folder
        self.data_dir = folder / "data"
        self.password_path = folder / "password"
        self.log_path = folder / "postgres.log"
        self.bin_dir = bin_dir
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of Airflow's database (``[database] sql_alchemy_conn``)."""
        return f"postgresql+psycopg2://{ROLE}:{self.password()}@127.0.0.1:{self.port}/{DATABASE}"

    def password(self) -> str:
        """The role's password: generated on first use, then read back."""
        if not self.password_path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            # URL-safe, so that it needs no quoting in the connection URL.
            descriptor = os.open(self.password_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_urlsafe(24) + "\n")
        return self.password_path.read_text().strip()

    def _command(self, program: str, *args: str) -> list[str]:
        bin_dir = self.bin_dir or find_bin_dir()
        command = [str(bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["unshare", "--user", f"--map-user={NAMESPACE_UID}", f"--map-group={NAMESPACE_UID}",
                       *command]
        return command

    def initialise(self) -> bool:
        """Create the cluster when it does not exist yet; whether it was created now."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise PostgresError(f"{self.data_dir} is not empty but holds no PostgreSQL cluster (no "
                                "PG_VERSION): move it away, or remove it to start with an empty database.")
        self.password()
        # A cluster half created by an interrupted initdb is started again from nothing.
        staging = self.folder / "data.initdb"
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
        result = subprocess.run(
            self._command("initdb", "-D", str(staging), "-U", ROLE, f"--pwfile={self.password_path}",
                          "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"),
            capture_output=True, text=True)
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-3000:]
            raise PostgresError(f"initdb failed (exit {result.returncode}):\n{output}")
        with contextlib.suppress(FileNotFoundError):
            self.data_dir.rmdir()  # the empty folder checked above
        staging.rename(self.data_dir)
        return True

    def start(self, *, timeout: float = 60.0) -> None:
        """Initialise when needed, start the server, wait until it accepts connections and the
        database exists."""
        self.initialise()
        if self.port is None:
            self.port = free_port()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._command("postgres", "-D", str(self.data_dir), "-c", "listen_addresses=127.0.0.1",
                              "-c", f"port={self.port}", "-c", "unix_socket_directories="),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, process_group=0)
        self._wait_until_ready(timeout)
        self._create_database()

    def _connect(self, database: str):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user=ROLE, password=self.password(),
                                dbname=database, connect_timeout=5)

    def _wait_until_ready(self, timeout: float) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise PostgresError(f"PostgreSQL exited with code {self.process.returncode} on start; "
                                    f"the end of its log ({self.log_path}):\n{self.log_tail()}")
            try:
                self._connect("postgres").close()
                return
            except psycopg2.OperationalError as error:
                if time.monotonic() > deadline:
                    self.stop()
                    raise PostgresError(
                        f"PostgreSQL did not accept connections within {timeout:.0f} s "
                        f"({str(error).strip()}); its log ({self.log_path}):\n{self.log_tail()}") from None
            time.sleep(0.2)

    def _create_database(self) -> None:
        connection = self._connect("postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            connection.close()

    def pids(self) -> set[int]:
        """The server and its backends (so that whoever stops Airflow's processes leaves them alone)."""
        import psutil

        if self.process is None or self.process.poll() is not None:
            return set()
        with contextlib.suppress(psutil.Error):
            server = psutil.Process(self.process.pid)
            return {server.pid, *(p.pid for p in server.children(recursive=True))}
        return set()

    def stop(self, *, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: open sessions are ended, committed data kept); SIGKILL after
        ``timeout`` s."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
