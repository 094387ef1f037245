"""Benchmarks of the retraining DAG: parse time, demo run times, plain baseline, peak memory.

Run as ``make bench`` does: ``.venv/bin/python bench/run_benchmarks.py`` (the Makefile's exported
environment is optional: missing values get the same defaults). Everything runs in a fresh temporary
directory (Airflow home, data root, MLflow store, Spark application records, logs), never in
``.local/``. Measured, in one process run:

a. parse time of ``dags/flight_delay_retraining.py`` vs. an empty DAG file (same ``DAG()`` kwargs,
   no tasks): warm (in-process re-parse, median) and cold (one parse in a fresh interpreter);
b. the demo run of one day via ``devtools.demo.run_dag``: first on an empty data root (it
   bootstraps the window's history), then again (steady-state nightly run), with per-task times;
c. ``bench/baseline_pandas_xgboost.py``: the same day's work as one plain pandas + xgboost script;
d. peak memory of a demo run in a subprocess: ``/usr/bin/time -v`` (largest single process) and the
   peak of the whole process tree's summed RSS (and PSS), sampled with psutil.

Exits 1 if a DAG run fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = PROJECT_ROOT / "bench"
PLUGINS_DIR = PROJECT_ROOT / "plugins"
DAG_FILE = PROJECT_ROOT / "dags" / "flight_delay_retraining.py"
PYTHON = sys.executable
GIB = 1024 ** 3

# Targets.
PARSE_RATIO_TARGET = 1.5
RUN_RATIO_TARGET = 3.0
MEMORY_TARGET_BYTES = 4 * GIB
FIRST, STEADY = "1st run (empty root)", "2nd run (steady)"
OTHER_CPU = "CPU used by other processes"

EMPTY_DAG = '''\
"""An empty DAG with the same DAG() arguments as the retraining DAG and no tasks (benchmark reference)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

with DAG(
    dag_id="bench_empty_dag",
    description="Empty reference DAG for the parse-time benchmark",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2013, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["ml", "flight-delays", "spark"],
    params={
        "window_days": Param(28, type="integer", minimum=7, maximum=120, title="Training window (days)"),
        "test_days": Param(3, type="integer", minimum=1, maximum=14, title="Test days"),
        "history_days": Param(14, type="integer", minimum=1, maximum=60, title="History (days)"),
        "device": Param("cpu", type="string", enum=["cpu", "cuda"], title="Training device"),
        "num_workers": Param(2, type="integer", minimum=1, maximum=64, title="XGBoost workers"),
        "n_estimators": Param(200, type="integer", minimum=10, maximum=5000, title="Boosting rounds"),
        "max_depth": Param(6, type="integer", minimum=2, maximum=16, title="Maximum tree depth"),
        "learning_rate": Param(0.1, type="number", exclusiveMinimum=0, maximum=1, title="Learning rate"),
    },
) as dag:
    pass
'''

# One parse in a fresh interpreter: argv[1] is the DAG file. Prints JSON timings.
COLD_PARSE = '''\
import json, sys, time
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
t2 = time.perf_counter()
errors = {k: str(v) for k, v in bag.import_errors.items()}
print("COLD_PARSE " + json.dumps({"import_airflow_s": t1 - t0, "parse_s": t2 - t1,
                                  "dags": len(bag.dags), "errors": errors}))
'''


def sandbox_env(tmp: Path) -> None:
    """Point everything at ``tmp`` (before anything imports Airflow): the embedded default under it."""
    (tmp / "mlflow").mkdir(parents=True, exist_ok=True)
    from devtools.environment import embedded_default, with_embedded_default

    os.environ.update({**embedded_default(tmp, python=PYTHON),
                       "PYTHONPATH": with_embedded_default(os.environ)["PYTHONPATH"]})
    bin_dir = str(Path(PYTHON).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    for extra in (str(BENCH_DIR), str(PROJECT_ROOT), str(PLUGINS_DIR)):
        if extra not in sys.path:
            sys.path.insert(0, extra)


class Noise:
    """CPU seconds used by processes outside the benchmark's own process tree while a step runs.

    Other work on a 2-core machine skews every timing, so each step reports it. A thread samples
    every process each ``interval`` seconds; a process that was ever a descendant of this one (a
    Spark JVM, its Python workers, even once orphaned) is ours, everything else is "other" (kernel
    threads included). Processes that live less than one interval are missed.
    """

    def __init__(self, interval: float = 0.5) -> None:
        import threading

        self.interval = interval
        self.ours = {os.getpid()}
        self.base: dict[tuple[int, float], float] = {}
        self.last: dict[tuple[int, float], float] = {}
        self.started = time.perf_counter()
        self._done = threading.Event()
        self._sample(initial=True)
        self._thread = threading.Thread(target=self._run, name="bench-noise", daemon=True)
        self._thread.start()

    def _sample(self, initial: bool = False) -> None:
        import psutil

        try:
            self.ours |= {c.pid for c in psutil.Process().children(recursive=True)}
        except psutil.Error:
            pass
        for proc in psutil.process_iter():
            if proc.pid in self.ours:
                continue
            try:
                times = proc.cpu_times()
                key = (proc.pid, proc.create_time())
            except psutil.Error:
                continue
            cpu = times.user + times.system
            if initial:
                self.base[key] = cpu
            else:
                self.base.setdefault(key, 0.0)  # started during the step
            self.last[key] = cpu

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def stop(self) -> dict:
        self._done.set()
        self._thread.join()
        self._sample()
        wall = time.perf_counter() - self.started
        other = sum(self.last[k] - self.base[k] for k in self.last if k[0] not in self.ours)
        return {"other_cpu_s": max(0.0, other), "wall_s": wall}


def fmt_noise(noise: dict | None) -> str:
    if not noise:
        return "-"
    share = noise["other_cpu_s"] / noise["wall_s"] if noise["wall_s"] else 0.0
    return f"{noise['other_cpu_s']:.1f} s ({share:.2f} CPUs)"


@contextlib.contextmanager
def output_to(log_path: Path):
    """Send this process's stdout/stderr (file descriptors, so child processes too) to ``log_path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- a.
def bench_parse(empty_dag: Path, repeats: int, log_path: Path) -> dict:
    files = {"flight_delay_retraining.py": DAG_FILE, "empty DAG (same kwargs)": empty_dag}
    noise = Noise()
    cold: dict[str, dict] = {}
    for label, path in files.items():
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            done = subprocess.run([PYTHON, "-c", COLD_PARSE, str(path)], capture_output=True, text=True)
            wall = time.perf_counter() - start
            with open(log_path, "a") as log:
                log.write(done.stdout + done.stderr)
            line = next((x for x in done.stdout.splitlines() if x.startswith("COLD_PARSE ")), None)
            if done.returncode or line is None:
                raise RuntimeError(f"cold parse of {path} failed (rc {done.returncode}), see {log_path}")
            result = json.loads(line[len("COLD_PARSE "):])
            if result["errors"] or not result["dags"]:
                raise RuntimeError(f"cold parse of {path}: {result['dags']} DAG(s), "
                                   f"errors {result['errors']}")
            runs.append({**result, "process_s": wall})
        cold[label] = {k: statistics.median(r[k] for r in runs)
                       for k in ("import_airflow_s", "parse_s", "process_s")}

    with output_to(log_path):
        from airflow.dag_processing.dagbag import DagBag

        def parse(path: Path) -> float:
            start = time.perf_counter()
            bag = DagBag(dag_folder=str(path))
            elapsed = time.perf_counter() - start
            if bag.import_errors or not bag.dags:
                raise RuntimeError(f"{path}: {len(bag.dags)} DAG(s), import errors {bag.import_errors}")
            return elapsed

        first = {label: parse(path) for label, path in files.items()}  # warm-up (real DAG: imports plugins)
        warm: dict[str, list[float]] = {label: [] for label in files}
        for _ in range(repeats):  # interleaved, so drift hits both alike
            for label, path in files.items():
                warm[label].append(parse(path))
    return {"files": list(files), "cold": cold, "first_in_process": first,
            "warm_median": {k: statistics.median(v) for k, v in warm.items()},
            "warm_min": {k: min(v) for k, v in warm.items()}, "repeats": repeats, "noise": noise.stop()}


# --------------------------------------------------------------------------------------------- b.
def task_durations(dag_id: str, run_id: str) -> list[tuple[str, float | None, int, str]]:
    """(task_id, seconds, try_number, state) of the run's task instances, in start order."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id,
                                                 TaskInstance.run_id == run_id).all()
        rows = [(ti.task_id, ti.start_date, ti.end_date, ti.try_number, str(ti.state)) for ti in tis]
    rows.sort(key=lambda r: (r[1] is None, r[1]))
    return [(task_id, (end - start).total_seconds() if start and end else None, tries, state)
            for task_id, start, end, tries, state in rows]


def bench_demo_run(day: date, label: str, log_path: Path) -> dict:
    from devtools import demo
    from flight_delays.layout import DataLayout
    from flight_delays.window import source_day

    progress(f"demo run '{label}' for {day} (log: {log_path})")
    # dag.test() runs the tasks in this process: drop what an earlier run cached (the source CSVs
    # read by the ingest task), as a nightly run in a fresh worker process would not have it.
    ingest_module = sys.modules.get("flight_delays.ingest")
    if ingest_module is not None and hasattr(ingest_module.read_source, "cache_clear"):
        ingest_module.read_source.cache_clear()
    noise = Noise()
    start = time.perf_counter()
    error = None
    with output_to(log_path):
        print(f"\n===== bench: demo run '{label}' for {day} =====", flush=True)
        try:
            dag_run = demo.run_dag(day)
        except Exception as exc:  # reported; the script exits 1
            import traceback

            traceback.print_exc()
            dag_run, error = None, f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - start
    result = {"label": label, "wall_s": wall, "state": "error" if dag_run is None else str(dag_run.state),
              "error": error, "tasks": [], "test_auc": None, "noise": noise.stop()}
    if dag_run is not None:
        result["run_id"] = dag_run.run_id
        result["tasks"] = task_durations(demo.DAG_ID, dag_run.run_id)
        report_path = DataLayout.from_env().report(source_day(day))
        if result["state"] == "success" and report_path.exists():
            report = json.loads(report_path.read_text())
            result["test_auc"] = report["test_metrics"]["test_auc"]
            result["days_ingested"] = report["days_ingested"]
    progress(f"demo run '{label}': {result['state']} in {wall:.1f} s")
    return result


# --------------------------------------------------------------------------------------------- d.
def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _describe(cmdline: list[str], name: str) -> str:
    if not cmdline:
        return name
    head = [Path(cmdline[0]).name, *cmdline[1:]]
    if "--name" in cmdline:  # spark-submit / SparkSubmit: name the application
        i = cmdline.index("--name")
        app = cmdline[i + 1] if i + 1 < len(cmdline) else "?"
        main_class = next((a for a in cmdline if a.startswith("org.apache.spark.deploy.")), "")
        return f"{Path(cmdline[0]).name} {main_class} --name {app}".replace("  ", " ")
    text = " ".join(head)
    return text if len(text) <= 90 else text[:87] + "..."


def bench_memory(day: date, tmp: Path, interval: float) -> dict:
    import psutil

    root = tmp / "memory-run"
    (root / "mlflow").mkdir(parents=True, exist_ok=True)
    env = {**os.environ,
           "FLIGHT_DELAYS_DATA_ROOT": str(root / "data"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
           "MLFLOW_ARTIFACT_LOCATION": str(root / "mlflow" / "artifacts"),
           "SPARKAPP_LOCAL_STATE_DIR": str(root / "spark-applications")}
    log_path, time_path = tmp / "memory-run.log", tmp / "memory-run.time-v.txt"
    command = ["/usr/bin/time", "-v", "-o", str(time_path), PYTHON, "-m", "devtools.demo",
               "--day", day.isoformat()]
    progress(f"memory run (empty data root {root / 'data'}; log: {log_path})")
    peak = {"sum_rss": 0, "sum_pss": 0, "max_single_rss": 0, "largest": "", "largest_rss": 0, "processes": 0}
    samples = 0
    noise = Noise()
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT)
        top = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                procs = [top, *top.children(recursive=True)]
            except psutil.Error:
                procs = []
            sizes = []
            for proc in procs:
                try:
                    with proc.oneshot():
                        sizes.append((proc.memory_info().rss, proc))
                except psutil.Error:
                    continue
            if sizes:
                samples += 1
                total = sum(rss for rss, _ in sizes)
                biggest_rss, biggest = max(sizes, key=lambda s: s[0])
                peak["max_single_rss"] = max(peak["max_single_rss"], biggest_rss)
                if total > peak["sum_rss"]:
                    try:
                        description = _describe(biggest.cmdline(), biggest.name())
                    except psutil.Error:
                        description = "?"
                    peak.update(sum_rss=total, largest=description, largest_rss=biggest_rss,
                                processes=len(sizes), sum_pss_at_peak=sum(_pss(p.pid) for _, p in sizes))
                peak["sum_pss"] = max(peak["sum_pss"], sum(_pss(p.pid) for _, p in sizes))
            time.sleep(interval)
    wall = time.perf_counter() - start
    time_v = {}
    if time_path.exists():
        for line in time_path.read_text().splitlines():
            key, _, value = line.strip().rpartition(": ")
            time_v[key] = value
    max_rss_kib = int(time_v.get("Maximum resident set size (kbytes)", 0) or 0)
    return {"rc": child.returncode, "wall_s": wall, "samples": samples, "interval": interval,
            "noise": noise.stop(), "time_v_max_rss": max_rss_kib * 1024, "log": log_path,
            "time_v_file": time_path, **peak}


# ------------------------------------------------------------------------------------------ report
def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report_parse(w, parse: dict) -> None:
    real, empty = parse["files"]

    def row(name: str, a: float, b: float, fmt=fmt_ms, note: str = "") -> None:
        w(f"   {name:36}{fmt(a):>28}{fmt(b):>26}{a / b:8.2f}{note}")

    w("")
    w("a. DAG file parse time: DagBag(dag_folder=<file>), both files in the same process")
    w(f"   {'':36}{real:>28}{empty:>26}{'ratio':>8}")
    ratio = parse["warm_median"][real] / parse["warm_median"][empty]
    row(f"warm re-parse, median of {parse['repeats']}", parse["warm_median"][real],
        parse["warm_median"][empty],
        note=f"   target <= {PARSE_RATIO_TARGET}: {verdict(ratio <= PARSE_RATIO_TARGET)}")
    row("warm re-parse, min", parse["warm_min"][real], parse["warm_min"][empty])
    row("first parse in this process (1)", parse["first_in_process"][real], parse["first_in_process"][empty])
    cold = parse["cold"]
    w("   cold, fresh interpreter, median of 3:")
    row("  DagBag parse (2)", cold[real]["parse_s"], cold[empty]["parse_s"])
    row("  import of airflow's DagBag", cold[real]["import_airflow_s"], cold[empty]["import_airflow_s"],
        fmt=fmt_s)
    row("  whole `python -c` process", cold[real]["process_s"], cold[empty]["process_s"], fmt=fmt_s)
    w(f"   {OTHER_CPU}: {fmt_noise(parse.get('noise'))}")
    w("   (1) airflow already imported; the real DAG's first parse imports flight_delays, sparkapp")
    w("   (2) after `from airflow.dag_processing.dagbag import DagBag` in that interpreter")


def report_runs(w, runs: list[dict]) -> None:
    w("")
    w("b. Demo run: devtools.demo.run_dag (dag.test(), tasks in this process, local spark-submit)")
    task_ids: list[str] = []
    for run in runs:
        task_ids += [t[0] for t in run["tasks"] if t[0] not in task_ids]

    def line(name: str, cells) -> None:
        w(f"   {name:36}" + "".join(f"{c:>26}" for c in cells))

    line("task", [run["label"] for run in runs])
    for task_id in task_ids:
        cells = []
        for run in runs:
            row = next((t for t in run["tasks"] if t[0] == task_id), None)
            if row is None:
                cells.append("-")
                continue
            _, seconds, tries, state = row
            note = "" if state == "success" and tries <= 1 else f" ({state}, try {tries})"
            cells.append(fmt_s(seconds) + note)
        line(f"  {task_id}", cells)
    sums = [sum(t[1] or 0 for t in run["tasks"]) for run in runs]
    line("sum of task times", [fmt_s(s) for s in sums])
    line("overhead (parse, dag.test loop, DB)",
         [fmt_s(r["wall_s"] - s) for r, s in zip(runs, sums, strict=True)])
    line("TOTAL wall time", [fmt_s(run["wall_s"]) for run in runs])
    line("DAG run state", [run["state"] for run in runs])
    line(OTHER_CPU, [fmt_noise(run.get("noise")) for run in runs])
    line("days ingested", [str(run.get("days_ingested", "-")) for run in runs])
    line("test AUC (report.json)", ["-" if r["test_auc"] is None else f"{r['test_auc']:.4f}" for r in runs])
    w("   (the 2nd run reuses this process's warm Python imports; the ingest task's CSV cache is cleared)")
    for run in runs:
        if run["error"]:
            w(f"   {run['label']} raised: {run['error']}")


def report_baseline(w, baseline: dict, runs: list[dict]) -> None:
    w("")
    w("c. Plain baseline: bench/baseline_pandas_xgboost.py (pandas + XGBClassifier, no Airflow/Spark)")
    w(f"   window {baseline['window']}:")
    w(f"   {baseline['train_rows']} train / {baseline['test_rows']} test rows")
    for step, seconds in baseline["timings"].items():
        w(f"   {'  ' + step:42}{fmt_s(seconds):>12}")
    imports = baseline["timings"].get("import pandas/xgboost/sklearn", 0.0)
    w(f"   {'TOTAL':42}{fmt_s(baseline['total_s']):>12}   "
      f"(without imports {fmt_s(baseline['total_s'] - imports)})")
    w(f"   {OTHER_CPU:42}{fmt_noise(baseline.get('noise')):>12}")
    by_label = {run["label"]: run for run in runs}
    steady, first_run = by_label.get(STEADY), by_label.get(FIRST)
    if steady and steady["state"] == "success":
        ratio = steady["wall_s"] / baseline["total_s"]
        w(f"   {'ratio steady-state run / baseline':42}{ratio:>12.2f}   "
          f"target <= {RUN_RATIO_TARGET}: {verdict(ratio <= RUN_RATIO_TARGET)}")
    if first_run and first_run["state"] == "success":
        ratio = first_run["wall_s"] / baseline["total_s"]
        w(f"   {'ratio first run (bootstrap) / baseline':42}{ratio:>12.2f}")
    w(f"   {'test AUC: baseline':42}{baseline['test_auc']:>12.4f}")
    for run in runs:
        if run["test_auc"] is not None:
            w(f"   {'          pipeline, ' + run['label']:42}{run['test_auc']:>12.4f}")


def report_memory(w, memory: dict) -> None:
    w("")
    w("d. Peak memory: `/usr/bin/time -v python -m devtools.demo` (subprocess, fresh empty data root)")
    w(f"   {'exit status, wall time':46}{memory['rc']:>8}, {memory['wall_s']:.1f} s")
    w(f"   {OTHER_CPU:46}{fmt_noise(memory.get('noise'))}")
    w(f"   {'/usr/bin/time -v max RSS (one process)':46}{memory['time_v_max_rss'] / GIB:>8.2f} GiB")
    w(f"   {'psutil: max RSS of one process':46}{memory['max_single_rss'] / GIB:>8.2f} GiB")
    w(f"   {'psutil: peak of the process tree RSS sum':46}{memory['sum_rss'] / GIB:>8.2f} GiB   "
      f"target <= 4 GiB: {verdict(memory['sum_rss'] <= MEMORY_TARGET_BYTES)}")
    w(f"   {'  PSS sum at that moment':46}{memory.get('sum_pss_at_peak', 0) / GIB:>8.2f} GiB   "
      "(PSS splits shared pages)")
    w(f"   {'  peak PSS sum':46}{memory['sum_pss'] / GIB:>8.2f} GiB")
    w(f"   {'  processes at the peak':46}{memory['processes']:>8}")
    w(f"   {'  largest process at the peak':46}{memory['largest_rss'] / GIB:>8.2f} GiB")
    w(f"     {memory['largest']}")
    w(f"   sampled every {memory['interval']} s ({memory['samples']} samples)")
    w(f"   log: {memory['log']}")
    w(f"   time -v: {memory['time_v_file']}")


def print_report(day: date, tmp: Path, parse: dict | None, runs: list[dict], baseline: dict | None,
                 memory: dict | None, load: tuple[float, float]) -> None:
    out: list[str] = []
    w = out.append
    w("")
    w(f"Flight-delay DAG benchmarks: day {day}, window 28 days, 3 test days, 14 history days")
    w(f"{os.cpu_count()} CPUs; 1-min load average {load[0]:.2f} at start, {load[1]:.2f} at end. "
      f"Other work on the machine skews the timings: see '{OTHER_CPU}'")
    w(f"work dir: {tmp}")
    if parse:
        report_parse(w, parse)
    if runs:
        report_runs(w, runs)
    if baseline:
        report_baseline(w, baseline, runs)
    if memory:
        report_memory(w, memory)
    print("\n".join(out), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", type=date.fromisoformat, default=date(2013, 6, 30))
    parser.add_argument("--parse-repeats", type=int, default=20)
    parser.add_argument("--sample-interval", type=float, default=0.2, help="psutil sampling period (s)")
    parser.add_argument("--skip-parse", action="store_true")
    parser.add_argument("--skip-runs", action="store_true", help="skip the two in-process demo runs")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)

    load_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="flight-delays-bench-"))
    sandbox_env(tmp)
    log_path = tmp / "bench.log"
    progress(f"work dir {tmp}; logs in {log_path}")

    baseline = None
    if not args.skip_baseline:  # first, so that its imports are cold as in a standalone script
        progress("baseline (pandas + xgboost)")
        import baseline_pandas_xgboost

        noise = Noise()
        baseline = baseline_pandas_xgboost.run(args.day)
        baseline["noise"] = noise.stop()

    progress("airflow db migrate")
    (tmp / "airflow").mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        migrated = subprocess.run([str(Path(PYTHON).parent / "airflow"), "db", "migrate"], stdout=log,
                                  stderr=subprocess.STDOUT)
    if migrated.returncode:
        progress(f"airflow db migrate failed (rc {migrated.returncode}), see {log_path}")
        return 1

    parse = None
    if not args.skip_parse:
        progress(f"parse times ({args.parse_repeats} warm parses each, 3 cold processes each)")
        empty_dag = tmp / "empty_dag" / "bench_empty_dag.py"
        empty_dag.parent.mkdir()
        empty_dag.write_text(EMPTY_DAG)
        parse = bench_parse(empty_dag, args.parse_repeats, log_path)

    runs: list[dict] = []
    if not args.skip_runs:
        runs.append(bench_demo_run(args.day, FIRST, log_path))
        runs.append(bench_demo_run(args.day, STEADY, log_path))

    memory = None if args.skip_memory else bench_memory(args.day, tmp, args.sample_interval)

    print_report(args.day, tmp, parse, runs, baseline, memory, (load_start, os.getloadavg()[0]))
    failed = [run["label"] for run in runs if run["state"] != "success"]
    if memory is not None and memory["rc"] != 0:
        failed.append(f"memory run (rc {memory['rc']})")
    if failed:
        logs = f"{log_path}" + ("" if memory is None else f" and {memory['log']}")
        print(f"\nFAILED: {', '.join(failed)}; see {logs}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
