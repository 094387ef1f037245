"""What Airflow's plugin manager imports from plugins/: the plugin module, and nothing else.

It runs every ``.py`` it finds under the plugins folder as a top-level module named after the file,
so without ``plugins/.airflowignore`` each component would hold a second copy of every toolkit
module (and the four ``spark_application.py`` files would overwrite each other).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

# In a fresh interpreter: load the plugins as every Airflow component does, then list the modules
# the plugin manager imported from files of the plugins folder (top-level names = file stems).
PROBE = """
import json, sys
from pathlib import Path
from airflow import plugins_manager
folder = Path(sys.argv[1]).resolve()
plugins_manager.ensure_plugins_loaded()
loaded = sorted(name for name, module in list(sys.modules.items())
                if "." not in name and getattr(module, "__file__", None)
                and folder in Path(module.__file__).resolve().parents
                and Path(module.__file__).stem == name)
print(json.dumps({"modules": loaded, "plugins": sorted(p.name for p in plugins_manager._get_plugins()[0]),
                  "errors": plugins_manager.get_import_errors()}))
"""


def load_plugins(folder) -> dict:
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(folder),
           "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)])}
    result = subprocess.run([sys.executable, "-c", PROBE, str(folder)], env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_plugin_manager_imports_only_the_plugin_module():
    loaded = load_plugins(PROJECT_ROOT / "plugins")
    assert loaded["modules"] == ["extra_links_plugin"]
    # Beside the providers' own plugins (OpenLineage, ...), which come from their entry points.
    assert "flight_delays_extra_links" in loaded["plugins"]
    assert loaded["errors"] == {}


def test_without_the_ignore_file_every_toolkit_file_would_be_a_top_level_module(tmp_path):
    folder = tmp_path / "plugins"
    shutil.copytree(PROJECT_ROOT / "plugins", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / ".airflowignore").unlink()
    modules = load_plugins(folder)["modules"]
    assert {"extra_links_plugin", "__init__", "settings", "tasks", "jobs", "ingest"} <= set(modules)
