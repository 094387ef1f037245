"""The docs against the code: docs/CONFIGURATION.md's table is every environment knob the code reads,
with its real default and reader; what the README names (paths, links, make targets, modules) exists.

The code is read with :mod:`ast`, not imported: a variable read anywhere in the covered modules is
found whether or not a test happens to run that line.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
CONFIGURATION = ROOT / "docs" / "CONFIGURATION.md"
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"

COLUMNS = ["variable", "what it sets", "default", "read by"]

#: Variables the code reads that are not knobs of this project, each with why.
NOT_KNOBS = {
    # torchrun sets it in every training process it starts (which GPU of the node the process uses);
    # nobody configures it.
    "LOCAL_RANK",
}

#: Reads whose default is computed in a way the table can only describe in words (checked by hand):
#: the interpreter running the task, or a fallback on another knob.
DESCRIBED_DEFAULTS = {
    "MLFLOW_UI_URL",  # `... or mlflow_tracking_uri()`: the tracking URI when it is http(s)
    "PYSPARK_PYTHON",  # sys.executable
    "PYSPARK_DRIVER_PYTHON",  # sys.executable
}


def covered_files() -> list[Path]:
    """The modules the table's "read by" column covers: the pipeline, the toolkit and the Spark jobs."""
    return sorted([*(PLUGINS / "flight_delays").glob("*.py"), *(PLUGINS / "sparkapp").rglob("*.py"),
                   *(ROOT / "spark_jobs").glob("*.py")])


def module_name(path: Path) -> str:
    """The dotted name a file is imported as (plugins/ and the project root are on the path)."""
    relative = path.relative_to(PLUGINS if path.is_relative_to(PLUGINS) else ROOT).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


@cache
def modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(), filename=str(path)) for path in covered_files()}


@cache
def string_constants(module: str) -> dict[str, str | ast.expr]:
    """Top-level names bound to a string, or (imports) to the expression to resolve them with."""
    names: dict[str, str | ast.expr] = {}
    for node in modules()[module].body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            target, value = node.target.id, node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            names[target] = value.value
    return names


@cache
def imported_names(module: str) -> dict[str, str]:
    """Local name -> what it is imported as (``pkg.mod`` or ``pkg.mod.NAME``), anywhere in the module."""
    names = {}
    for node in ast.walk(modules()[module]):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                # `import a.b` binds `a`; `import a.b as c` binds `c` to `a.b`.
                names[alias.asname or alias.name.split(".")[0]] = (alias.name if alias.asname
                                                                    else alias.name.split(".")[0])
    return names


def resolve_qualified(qualified: str) -> str | None:
    """The string that ``pkg.mod.NAME`` is bound to, following re-exports; None if not a string."""
    module, _, name = qualified.rpartition(".")
    if module not in modules():
        return None
    constants = string_constants(module)
    if name in constants:
        return constants[name]
    if name in imported_names(module):
        return resolve_qualified(imported_names(module)[name])
    return None


def resolve(expr: ast.expr, module: str) -> str | None:
    """The string a variable-name expression stands for: a literal, a constant, an imported constant."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if isinstance(expr, ast.Name):
        if expr.id in string_constants(module):
            return string_constants(module)[expr.id]
        if expr.id in imported_names(module):
            return resolve_qualified(imported_names(module)[expr.id])
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        target = imported_names(module).get(expr.value.id)
        if target:
            return resolve_qualified(f"{target}.{expr.attr}")
    return None


@dataclass(frozen=True)
class EnvRead:
    """One place where the code reads an environment variable."""

    variable: str | None  # None when the name could not be resolved to a string
    module: str
    line: int
    function: ast.FunctionDef | None  # the top-level function it is in, if any
    default: ast.expr | None  # the value used when the variable is unset, if the read gives one

    @property
    def where(self) -> str:
        return f"{self.module}:{self.line}"


def _is_environ(node: ast.expr, module: str, parameters: set[str]) -> bool:
    """``os.environ``, ``environ`` imported from os, or a parameter named ``environ``: by this project's
    convention (``PodEnvironment.from_environ(os.environ)``) a function handed the environment calls
    its parameter ``environ``, so what it reads from it is read from the environment."""
    if isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name):
        return imported_names(module).get(node.value.id) == "os"
    if isinstance(node, ast.Name) and node.id == "environ":
        return imported_names(module).get("environ") == "os.environ" or "environ" in parameters
    return False


def _is_getenv(node: ast.expr, module: str) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "getenv" and isinstance(node.value, ast.Name)
            and imported_names(module).get(node.value.id) == "os")


def env_reads() -> list[EnvRead]:
    """Every ``os.environ.get(k)``, ``os.environ[k]``, ``os.getenv(k)`` and ``k in os.environ``."""
    reads = []
    for module, tree in modules().items():
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
        scopes: list[tuple[ast.AST, ast.FunctionDef | None]] = [(node, node) for node in functions]
        scopes += [(node, None) for node in classes]
        scopes += [(node, None) for node in tree.body if node not in functions and node not in classes]
        for scope, function in scopes:
            parents: dict[ast.AST, ast.AST] = {}
            for parent in ast.walk(scope):
                for child in ast.iter_child_nodes(parent):
                    parents[child] = parent
            for node in ast.walk(scope):
                enclosing = _enclosing_function(node, parents)
                parameters = {arg.arg for arg in enclosing.args.args + enclosing.args.kwonlyargs} \
                    if enclosing else set()
                key = default = None
                if isinstance(node, ast.Call) and node.args and (
                        (isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                         and _is_environ(node.func.value, module, parameters))
                        or _is_getenv(node.func, module)):
                    key = node.args[0]
                    default = node.args[1] if len(node.args) > 1 else None
                elif (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                      and _is_environ(node.value, module, parameters)):
                    key = node.slice
                elif (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In)
                      and _is_environ(node.comparators[0], module, parameters)):
                    key = node.left
                if key is None:
                    continue
                # `backend or os.environ.get(K) or "local"`: the value after the read is its default.
                parent = parents.get(node)
                if (default is None and isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.Or)
                        and node is not parent.values[-1]):
                    default = parent.values[parent.values.index(node) + 1]
                reads.append(EnvRead(resolve(key, module), module, node.lineno, function, default))
    return reads


def _enclosing_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.FunctionDef | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


def connection_ids() -> dict[str, set[str]]:
    """Airflow connection id -> modules of the toolkit that default to it (``*_conn_id="..."``
    parameters, a hook's ``default_conn_name``)."""
    found: dict[str, set[str]] = {}
    for module, tree in modules().items():
        if not module.startswith("sparkapp"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.arguments):
                positional = node.posonlyargs + node.args
                with_defaults = positional[len(positional) - len(node.defaults):]
                pairs = list(zip(with_defaults, node.defaults, strict=True))
                pairs += [(arg, default) for arg, default
                          in zip(node.kwonlyargs, node.kw_defaults, strict=True) if default is not None]
                for arg, default in pairs:
                    if arg.arg.endswith("conn_id") and isinstance(default, ast.Constant):
                        found.setdefault(default.value, set()).add(module)
            elif (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "default_conn_name"
                                                       for t in node.targets)
                  and isinstance(node.value, ast.Constant)):
                found.setdefault(node.value.value, set()).add(module)
    return found


@dataclass(frozen=True)
class Row:
    variable: str
    what: str
    default: str
    read_by: frozenset[str]

    @property
    def literal_default(self) -> str | None:
        """The first code span of the default cell: the value itself, when the cell gives one."""
        spans = re.findall(r"`([^`]*)`", self.default)
        return spans[0] if spans else None


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@cache
def table() -> dict[str, Row]:
    lines = [line for line in CONFIGURATION.read_text().splitlines() if line.lstrip().startswith("|")]
    assert lines, "docs/CONFIGURATION.md has no table"
    assert [cell.lower() for cell in cells(lines[0])] == COLUMNS
    assert set("".join(cells(lines[1]))) <= set("-: "), "the header must be followed by its separator"
    rows: dict[str, Row] = {}
    for line in lines[2:]:
        variable, what, default, read_by = cells(line)
        names = re.findall(r"`([^`]+)`", variable)
        assert len(names) == 1, f"one variable a row, got {variable!r}"
        assert names[0] not in rows, f"{names[0]} has two rows"
        rows[names[0]] = Row(names[0], what, default, frozenset(re.findall(r"`([\w.]+)`", read_by)))
    return rows


def knob_rows() -> dict[str, Row]:
    return {name: row for name, row in table().items() if not name.startswith("AIRFLOW_CONN_")}


def knob_reads() -> list[EnvRead]:
    return [read for read in env_reads() if read.variable not in NOT_KNOBS]


def test_there_is_one_table_in_the_configuration_doc():
    separators = [line for line in CONFIGURATION.read_text().splitlines()
                  if re.fullmatch(r"\s*\|(\s*:?-+:?\s*\|)+\s*", line)]
    assert len(separators) == 1


def test_every_variable_name_the_code_reads_resolves_to_a_string():
    assert [read.where for read in env_reads() if read.variable is None] == []


def test_the_table_lists_exactly_the_variables_the_code_reads():
    read = {r.variable for r in knob_reads()}
    assert sorted(set(knob_rows()) - read) == [], "rows for variables that nothing reads"
    missing = sorted(f"{r.variable} ({r.where})" for r in knob_reads() if r.variable not in knob_rows())
    assert missing == [], "variables the code reads that docs/CONFIGURATION.md does not list"


def test_the_allow_list_names_only_variables_the_code_reads():
    assert NOT_KNOBS <= {read.variable for read in env_reads()}
    assert not NOT_KNOBS & set(table())


def test_read_by_names_the_modules_that_read_each_variable():
    readers: dict[str, set[str]] = {}
    for read in knob_reads():
        readers.setdefault(read.variable, set()).add(read.module)
    assert {name: set(row.read_by) for name, row in knob_rows().items()} == readers


def test_the_connection_rows_are_the_connections_the_toolkit_uses():
    ids = connection_ids()
    assert {"spark_default", "kubernetes_default"} <= set(ids)
    connection_rows = {name: row for name, row in table().items() if name.startswith("AIRFLOW_CONN_")}
    assert set(connection_rows) == {f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in ids}
    for conn_id, users in ids.items():
        row = connection_rows[f"AIRFLOW_CONN_{conn_id.upper()}"]
        assert row.read_by, f"{row.variable}: name the module that reads the connection"
        assert row.read_by <= users, f"{row.variable}: read by one of {sorted(users)}"


def test_the_spark_connection_is_the_one_the_embedded_default_sets():
    from devtools.environment import embedded_default

    documented = table()["AIRFLOW_CONN_SPARK_DEFAULT"]
    spans = [span for span in re.findall(r"`([^`]*)`", documented.default) if span.startswith("{")]
    embedded = json.loads(embedded_default()["AIRFLOW_CONN_SPARK_DEFAULT"])
    assert [json.loads(span) for span in spans] == [embedded]


def _relative(value: object) -> str:
    """A default as the table writes it: paths relative to the project root, the home folder as ``~``."""
    return str(value).replace(f"{ROOT}/", "").replace(f"{Path.home()}/", "~/")


def checked_defaults() -> list[EnvRead]:
    return [read for read in knob_reads() if read.variable not in DESCRIBED_DEFAULTS]


@pytest.mark.parametrize("read", checked_defaults(), ids=lambda read: f"{read.variable}@{read.where}")
def test_the_documented_default_is_the_codes(read, monkeypatch):
    row = knob_rows()[read.variable]
    default = read.default
    if default is None or (isinstance(default, ast.Constant) and default.value in ("", None)):
        # Read without a default (or with "" or None): unset means off, or a fallback the row describes.
        assert row.default.startswith("unset"), f"{read.variable}: the code has no default value"
    elif isinstance(default, ast.Constant):
        assert row.literal_default == default.value
    else:
        # Computed from the project root (.local/...): call the function with every knob unset.
        function = read.function
        assert function is not None and not function.args.args, (
            f"{read.variable} ({read.where}): a computed default outside a function without arguments; "
            "describe it in the table and add it to DESCRIBED_DEFAULTS")
        for name in table():
            monkeypatch.delenv(name, raising=False)
        value = getattr(importlib.import_module(read.module), function.name)()
        assert row.literal_default == _relative(value)


def test_the_defaults_described_in_words_are_still_computed():
    # An entry that became a literal must be checked again, not excused.
    computed = {read.variable for read in knob_reads()
                if read.default is not None and not isinstance(read.default, ast.Constant)}
    assert computed >= DESCRIBED_DEFAULTS


# --- The README: what it names exists ------------------------------------------------------------

#: Top-level folders of the layout: a code span that starts with one of them is a path to check.
PROJECT_FOLDERS = (".ci", "dags", "plugins", "spark_jobs", "devtools", "testing", "tests", "docs", "deploy",
                   "bench", "include", "scripts")
ROOT_FILE = re.compile(r"[\w.-]+\.(md|txt|in|toml|sh)|Dockerfile(\.spark)?|Makefile")


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def code_block_lines(text: str) -> list[str]:
    """Lines of indented code blocks (four spaces, after a blank line or another such line)."""
    lines, previous_blank, in_block = [], True, False
    for line in text.splitlines():
        if line.startswith("    ") and (previous_blank or in_block):
            lines.append(line)
            in_block = True
        elif line.strip():
            in_block = False
        previous_blank = not line.strip()
    return lines


def layout_paths(text: str) -> list[str]:
    """The paths of the README's layout tree: one entry a line, two spaces a level, names ending in
    ``/`` for folders, several names joined by ``, ``; a line indented past the names continues the
    description above."""
    section = text.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    paths, stack = [], []
    for line in code_block_lines(section):
        indent = len(line) - len(line.lstrip())
        if indent >= 20:
            continue
        level = (indent - 4) // 2
        names = re.split(r"\s{2,}", line.strip())[0].split(", ")
        stack = stack[:level]
        for name in names:
            paths.append("/".join([*stack, name]))
        if names[-1].endswith("/"):
            stack.append(names[-1].rstrip("/"))
    return paths


def readme_paths(text: str) -> set[str]:
    spans = {span.split()[0] for span in code_spans(text) if span.strip()}
    named = {span for span in spans
             if (span.split("/")[0] in PROJECT_FOLDERS and not re.search(r"[<>*{}…=]|\.\.\.", span))
             or ROOT_FILE.fullmatch(span)}
    links = {target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text)
             if not re.match(r"[a-z]+:", target) and not target.startswith("#")}
    return named | links | set(layout_paths(text))


def test_every_path_the_readme_names_exists():
    text = README.read_text()
    assert "dags/flight_delay_retraining.py" in layout_paths(text)
    assert sorted(path for path in readme_paths(text) if not (ROOT / path).exists()) == []


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", MAKEFILE.read_text(), re.M))


def readme_make_targets(text: str) -> set[str]:
    commands = [span for span in code_spans(text) if span.startswith("make ")]
    commands += [line.strip() for line in code_block_lines(text) if line.strip().startswith("make ")]
    targets = set()
    for command in commands:
        words = [word for word in command.split()[1:] if not word.startswith("-") and "=" not in word]
        if words and re.fullmatch(r"[a-z][\w-]*", words[0]):
            targets.add(words[0])
    return targets


def test_every_make_target_the_readme_names_is_in_the_makefile():
    named = readme_make_targets(README.read_text())
    assert {"demo", "test", "airflow"} <= named
    assert sorted(named - makefile_targets()) == []


def test_every_module_the_readme_runs_with_python_m_exists():
    modules_named = set(re.findall(r"python -m ([\w.]+)", README.read_text()))
    assert modules_named
    for name in modules_named:
        relative = Path(*name.split("."))
        candidates = [base / relative.with_suffix(".py") for base in (ROOT, PLUGINS)]
        candidates += [base / relative / "__main__.py" for base in (ROOT, PLUGINS)]
        assert any(path.exists() for path in candidates), name


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a markdown file's headings."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", path.read_text(), re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("document", [README, *sorted((ROOT / "docs").glob("*.md"))],
                         ids=lambda path: path.name)
def test_links_between_the_docs_resolve(document):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (document.parent / file).resolve() if file else document
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked):
            broken.append(target)
    assert broken == []


def test_the_readme_stays_a_readme():
    # About 150 lines: what it is, the commands, the layout, links. The reference lives in docs/.
    assert len(README.read_text().splitlines()) <= 175
