"""The computation side never loads a UI library: a training job, the CLI or a notebook that only computes
must not pay for (or depend on) Panel, HoloViews, Bokeh or param."""
from __future__ import annotations

import json
import subprocess
import sys

COMPUTATION_MODULES = (
    "explorer.scattering",
    "explorer.data",
    "explorer.data.sources",
    "explorer.nets",
    "explorer.training",
    "explorer.runs",
    "explorer.analysis",
    "explorer.analysis.cache",
    "explorer.features",
    "explorer.network_features",
    "explorer.nets.extract",
    "explorer.scattering.roto",
    "explorer.analysis.roto",
    "explorer.classify.pipeline",
    "explorer.classify.results",
    "explorer.analysis.hybrids",
    "explorer.analysis.scoreboard",
)
UI_LIBRARIES = ("panel", "holoviews", "bokeh", "param")

PROBE = """
import importlib, json, sys
for name in {modules!r}:
    importlib.import_module(name)
ui = sorted(m for m in sys.modules if m.split(".")[0] in {libraries!r})
print(json.dumps(ui))
"""


def test_computation_packages_load_no_ui_library():
    code = PROBE.format(modules=COMPUTATION_MODULES, libraries=UI_LIBRARIES)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing the computation packages loaded UI modules: {loaded[:10]}"
