"""Run a local Airflow on the embedded default, in the foreground, until Ctrl-C.

``make airflow`` calls ``python -m devtools.local_airflow``: it starts a PostgreSQL server for the
metadata (:mod:`devtools.postgres`, under ``$AIRFLOW_HOME/postgres``; unless
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` names a database already), migrates the database, creates
the DAG's pools (:mod:`flight_delays.pools`) and starts
the four Airflow 3 components (``api-server``, ``scheduler``, ``dag-processor``, ``triggerer``)
with the LocalExecutor, the API server bound to 127.0.0.1, the project's DAG and plugin folders
and the ``spark_default`` connection of the embedded default (``local[2]``). It prints the address
and how to log in (SimpleAuthManager: the ``admin`` user, whose password Airflow generates into
``$AIRFLOW_HOME``), then waits.

Ctrl-C (SIGINT) or SIGTERM stops everything it started, tasks and ``spark-submit`` JVMs included,
and PostgreSQL last, before it returns: the launcher is the child subreaper of its process tree, so
a process orphaned on the way (a task whose worker died) is still found and stopped. Each
component's output goes to ``$AIRFLOW_HOME/logs/local-airflow/<component>.log``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from devtools.environment import with_embedded_default
from devtools.postgres import ROLE, LocalPostgres, PostgresError
from flight_delays.contract import DAG_ID

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import psutil

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: The components that run tasks, or parse and defer them; the API server is stopped after them, so
#: that tasks being stopped can still report their final state through the execution API.
TASK_SIDE_COMPONENTS = ("scheduler", "dag-processor", "triggerer")
#: What ``GET /api/v2/monitor/health`` must report before the banner is printed.
HEALTH_CHECKS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
_PR_SET_CHILD_SUBREAPER = 36


def airflow_environment(base: Mapping[str, str], *, host: str, port: int) -> dict[str, str]:
    """The environment of every component: ``base`` plus the embedded default and this server.

    What the Makefile exports (``AIRFLOW_HOME``, DAG and plugin folders, ``spark_default``, Spark's
    local address, the interpreter) is kept when set and defaulted otherwise, so the launcher also
    runs without ``make``; what makes this a local server (executor, auth manager, address) is set.

    :param base: the caller's environment.
    :param host: address the API server binds to.
    :param port: port of the API server.
    """
    interpreter_bin = str(Path(sys.executable).parent)
    # The LocalExecutor forks one worker per slot up front; the DAG runs at most two tasks at once.
    env = with_embedded_default({"AIRFLOW__CORE__PARALLELISM": "8", **base})
    # `airflow` and `spark-submit` come from this virtualenv.
    if env.get("PATH", "").split(os.pathsep)[0] != interpreter_bin:
        env["PATH"] = os.pathsep.join(filter(None, [interpreter_bin, env.get("PATH")]))
    base_url = f"http://{host}:{port}"
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        # Links in the UI and the execution API that task processes call back to (its default,
        # http://localhost:8080/execution/, would miss a server on another port or on 127.0.0.1
        # where localhost resolves to ::1 first).
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
    })
    return env


def password_file(env: Mapping[str, str]) -> Path:
    """Where SimpleAuthManager keeps the generated passwords (its own default, unless configured)."""
    configured = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    return Path(configured or Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated")


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the API server binds: connections of a server just stopped (TIME_WAIT) do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' when there is none)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def become_subreaper() -> bool:
    """Adopt our orphaned descendants (Linux), so that stopping can still find them."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


class LocalAirflow:
    """The four components as child processes, each in its own process group.

    Own process groups keep the terminal's Ctrl-C away from them: the launcher alone decides the
    order in which they stop.

    :param env: the components' environment (see :func:`airflow_environment`).
    :param log_dir: where each component's output goes, one file per component.
    :param commands: the command line of each component, by name; the default runs
        ``python -m airflow <component>``.
    :param not_airflow: the processes started here that are not Airflow's and that stopping it leaves
        alone (the metadata database's, which stops after it).
    """

    def __init__(self, *, env: Mapping[str, str], log_dir: Path,
                 commands: Mapping[str, Sequence[str]] | None = None,
                 not_airflow: Callable[[], set[int]] = set) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.commands = dict(commands) if commands is not None else {
            name: [sys.executable, "-m", "airflow", name] for name in COMPONENTS}
        self.not_airflow = not_airflow
        self.processes: dict[str, subprocess.Popen] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name, command in self.commands.items():
            with self.log_path(name).open("ab") as log:
                self.processes[name] = subprocess.Popen(
                    command, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    process_group=0,
                )

    def exited(self) -> dict[str, int]:
        """The components that have exited, with their exit codes."""
        self.reap()
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def descendants(self) -> list[psutil.Process]:
        """Every live process of Airflow started from here (components, workers, tasks, JVMs), zombies
        excluded."""
        import psutil

        found = []
        spared = self.not_airflow()
        for process in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if process.pid not in spared and process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
        return found

    def reap(self) -> None:
        """Collect the exit status of adopted orphans (the components' own is read by ``poll``)."""
        import psutil

        ours = {p.pid for p in self.processes.values()} | self.not_airflow()
        for child in psutil.Process().children():
            if child.pid not in ours:
                with contextlib.suppress(ChildProcessError, psutil.Error):
                    if child.status() == psutil.STATUS_ZOMBIE:
                        os.waitpid(child.pid, os.WNOHANG)

    def _task_groups(self, names: Sequence[str]) -> set[int]:
        """Process groups started under the named components: the task processes and what they ran.

        The task supervisor gives each task process its own group, so one ``killpg`` reaches the
        task (whose SIGTERM handler calls the operator's ``on_kill``) and the ``spark-submit`` JVM it
        started.
        """
        import psutil

        components = {p.pid for p in self.processes.values()}
        groups = set()
        for name in names:
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(process.pid).children(recursive=True):
                    with contextlib.suppress(ProcessLookupError):
                        if os.getpgid(child.pid) == child.pid and child.pid not in components:
                            groups.add(child.pid)
        return groups

    def _signal(self, name: str, sig: signal.Signals) -> None:
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)

    def _wait(self, names: Sequence[str], timeout: float, *, hurry: Callable[[], bool],
              while_waiting: Callable[[], None] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not hurry():
            if while_waiting is not None:
                while_waiting()
            self.reap()
            if all(self.processes[n].poll() is not None for n in names if n in self.processes):
                return
            time.sleep(0.2)

    def stop(self, *, grace: float = 20.0, hurry: Callable[[], bool] = lambda: False) -> list[str]:
        """Stop every component and everything started under them; return what had to be killed.

        SIGTERM to the scheduler, DAG processor and triggerer, and to each running task's process
        group (the LocalExecutor's shutdown otherwise waits for running tasks to finish); then SIGTERM
        to the API server, once tasks have reported; what is left after ``grace`` seconds per step
        gets SIGKILL, and so does everything as soon as ``hurry()`` is true.

        :param grace: seconds each step waits before the next.
        :param hurry: asked while waiting: true skips the rest of the graceful steps (a second Ctrl-C).
        """
        import psutil

        if not hurry():
            for name in TASK_SIDE_COMPONENTS:
                self._signal(name, signal.SIGTERM)
            signalled: set[int] = set()

            def terminate_new_task_groups() -> None:
                # Workloads queued before the scheduler stopped may still start a task: signal it too.
                for group in self._task_groups(TASK_SIDE_COMPONENTS) - signalled:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(group, signal.SIGTERM)
                    signalled.add(group)

            self._wait(TASK_SIDE_COMPONENTS, grace, hurry=hurry, while_waiting=terminate_new_task_groups)
            self._signal("api-server", signal.SIGTERM)
            self._wait(list(self.processes), grace, hurry=hurry)
        killed = []
        leftovers = self.descendants()
        for process in leftovers:
            with contextlib.suppress(psutil.Error):
                killed.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
                process.kill()
        # Components are waited for through Popen, which keeps their exit codes.
        components = {p.pid for p in self.processes.values()}
        psutil.wait_procs([p for p in leftovers if p.pid not in components], timeout=10)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.reap()
        return killed


def _request(url: str, *, method: str = "GET", body: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers),
                                timeout=5) as response:
        return json.loads(response.read() or b"{}")


def health(base_url: str) -> dict[str, str]:
    """Each component's status from the API server's health endpoint ({} while it does not answer)."""
    try:
        report = _request(f"{base_url}/api/v2/monitor/health")
    except (OSError, ValueError):
        return {}
    return {name: (report.get(name) or {}).get("status") or "unknown" for name in HEALTH_CHECKS}


def read_password(path: Path, user: str = "admin") -> str | None:
    try:
        return json.loads(path.read_text()).get(user)
    except (FileNotFoundError, ValueError):
        return None


class DagCheck:
    """Reports once whether the DAG was parsed and whether it is paused, as soon as the API knows."""

    def __init__(self, base_url: str, password: str | None, *, timeout: float = 180.0) -> None:
        self.base_url, self.password = base_url, password
        self.deadline = time.monotonic() + timeout
        self.done = password is None
        self._next = 0.0

    def poll(self) -> str | None:
        """A line to print when the answer is known, else None."""
        if self.done or time.monotonic() < self._next:
            return None
        self._next = time.monotonic() + 2
        try:
            token = _request(f"{self.base_url}/auth/token", method="POST",
                             body={"username": "admin", "password": self.password})["access_token"]
        except (OSError, ValueError, KeyError) as error:
            self.done = True
            return f"  DAG            not checked: logging in as admin through the API failed ({error})"
        try:
            dag = _request(f"{self.base_url}/api/v2/dags/{DAG_ID}", token=token)
        except urllib.error.HTTPError as error:
            if error.code != 404:
                self.done = True
                return f"  DAG            could not be read through the API: HTTP {error.code}"
            errors = self._import_errors(token)
            if errors or time.monotonic() > self.deadline:
                self.done = True
                return (f"  DAG            {DAG_ID} is not loaded"
                        + (": import errors:\n" + errors if errors else " yet; see the dag-processor log"))
            return None
        except (OSError, ValueError, KeyError):
            return None
        self.done = True
        if dag.get("is_paused"):
            return "\n".join([
                f"  DAG            {DAG_ID} is loaded and paused (new DAGs start paused); unpause it with",
                "                 its toggle in the UI, or through the API:",
                f"                 PATCH {self.base_url}/api/v2/dags/{DAG_ID} {{\"is_paused\": false}}",
                "                 Unpaused, it runs once for the latest complete day (catchup=False), then",
                "                 every midnight UTC; trigger a run for any day from the UI or",
                f"                 POST {self.base_url}/api/v2/dags/{DAG_ID}/dagRuns",
            ])
        return f"  DAG            {DAG_ID} is loaded and unpaused"

    def _import_errors(self, token: str) -> str:
        try:
            errors = _request(f"{self.base_url}/api/v2/importErrors", token=token)["import_errors"]
        except (OSError, ValueError, KeyError):
            return ""
        return "\n".join(f"{e['filename']}: {e['stack_trace'].strip().splitlines()[-1]}" for e in errors)


def banner(base_url: str, env: Mapping[str, str], airflow: LocalAirflow,
           postgres: LocalPostgres | None = None) -> str:
    passwords = password_file(env)
    password = read_password(passwords)
    home = env["AIRFLOW_HOME"]
    login = (f"user admin, password {password} (generated once, kept in {passwords})" if password else
             f"the users of [core] simple_auth_manager_users; passwords in {passwords}")
    data_root, mlflow = env["FLIGHT_DELAYS_DATA_ROOT"], env["MLFLOW_TRACKING_URI"]
    return "\n".join([
        f"Airflow is ready at {base_url}",
        f"  log in         {login}",
        f"  REST API       POST {base_url}/auth/token {{\"username\": \"admin\", \"password\": ...}} "
        "-> Bearer token for /api/v2",
        f"  Airflow home   {home} (airflow.cfg, task logs)",
        (f"  metadata DB    PostgreSQL on 127.0.0.1:{postgres.port}, user {ROLE}, password in "
         f"{postgres.password_path}; its data and log in {postgres.folder}" if postgres else
         "  metadata DB    [database] sql_alchemy_conn, as configured"),
        f"  data, MLflow   {data_root}, {mlflow}",
        f"  component logs {airflow.log_dir}/{{{','.join(airflow.processes)}}}.log",
        "  Ctrl-C stops Airflow and everything it started.",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address of the API server (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port of the API server (default 8080)")
    parser.add_argument("--startup-timeout", type=float, default=300,
                        help="seconds to wait for every component to be healthy (default 300)")
    args = parser.parse_args(argv)

    env = airflow_environment(os.environ, host=args.host, port=args.port)
    base_url = f"http://{args.host}:{args.port}"
    if not port_is_free(args.host, args.port):
        print(f"error: {args.host}:{args.port} is in use (another Airflow?). Stop it, or choose another "
              "port: make airflow PORT=8081.", file=sys.stderr)
        return 1

    stop_requests: list[int] = []

    def request_stop(signum, frame) -> None:
        stop_requests.append(signum)
        if len(stop_requests) == 1:
            print("\nStopping Airflow (Ctrl-C again to kill it at once) ...", flush=True)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    become_subreaper()

    postgres = None
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env:
        postgres = LocalPostgres(Path(env["AIRFLOW_HOME"]) / "postgres")
        print(f"Starting PostgreSQL for the metadata database ({postgres.folder}) ...", flush=True)
        try:
            postgres.start()
        except PostgresError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = postgres.url
    try:
        status = _prepare_and_run(env, base_url, stop_requests, postgres,
                                  startup_timeout=args.startup_timeout)
    finally:
        if postgres is not None:
            postgres.stop()
    print("Airflow stopped; no process left.", flush=True)
    return status


def _prepare_and_run(env: dict[str, str], base_url: str, stop_requests: list[int],
                     postgres: LocalPostgres | None, *, startup_timeout: float) -> int:
    """Migrate the database, create the pools, run the components until a stop request, stop them."""
    print("Preparing the metadata database (airflow db migrate) ...", flush=True)
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env,
                             capture_output=True, text=True)
    if stop_requests:
        return 130
    if migrate.returncode != 0:
        print(f"error: airflow db migrate failed (exit {migrate.returncode}):\n{migrate.stdout[-3000:]}"
              f"{migrate.stderr[-3000:]}", file=sys.stderr)
        return 1
    pools = subprocess.run([sys.executable, "-m", "flight_delays.pools"], env=env, capture_output=True,
                           text=True)
    if pools.returncode != 0:
        print(f"error: creating the DAG's pools failed (exit {pools.returncode}):\n{pools.stderr[-3000:]}",
              file=sys.stderr)
        return 1
    print(pools.stdout.strip(), flush=True)

    airflow = LocalAirflow(env=env, log_dir=Path(env["AIRFLOW_HOME"]) / "logs" / "local-airflow",
                           not_airflow=postgres.pids if postgres else set)
    print(f"Starting {', '.join(COMPONENTS)} (LocalExecutor) ...", flush=True)
    airflow.start()
    status = _run(airflow, base_url, env, stop_requests, postgres, startup_timeout=startup_timeout)
    killed = airflow.stop(hurry=lambda: len(stop_requests) > 1)
    if killed:
        print(f"Killed {len(killed)} process(es) that did not stop on SIGTERM:\n  " + "\n  ".join(killed))
    return status


def _run(airflow: LocalAirflow, base_url: str, env: Mapping[str, str], stop_requests: list[int],
         postgres: LocalPostgres | None, *, startup_timeout: float) -> int:
    """Wait for a stop request, watching the components; the exit status of the launcher."""
    deadline = time.monotonic() + startup_timeout
    dag_check: DagCheck | None = None
    status: dict[str, str] = {}
    while not stop_requests:
        if postgres is not None and postgres.process.poll() is not None:
            print(f"error: PostgreSQL exited with code {postgres.process.returncode}; the end of its log "
                  f"({postgres.log_path}):\n{postgres.log_tail()}", file=sys.stderr, flush=True)
            return 1
        exited = airflow.exited()
        if exited:
            name, code = next(iter(exited.items()))
            print(f"error: the {name} exited with code {code}; the end of its log "
                  f"({airflow.log_path(name)}):\n{tail(airflow.log_path(name))}", file=sys.stderr, flush=True)
            return 1
        if dag_check is None:
            status = health(base_url)
            if status and all(s == "healthy" for s in status.values()):
                print(banner(base_url, env, airflow, postgres), flush=True)
                dag_check = DagCheck(base_url, read_password(password_file(env)))
            elif time.monotonic() > deadline:
                print(f"error: Airflow was not healthy after {startup_timeout:.0f} s "
                      f"({status or 'the API server does not answer'}); see {airflow.log_dir}",
                      file=sys.stderr, flush=True)
                return 1
        elif line := dag_check.poll():
            print(line, flush=True)
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
