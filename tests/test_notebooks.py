"""Every tutorial notebook in notebooks/ runs top to bottom (their asserts included), ends with its app page
live, and is committed in the form the nbstripout filter leaves (README, "Notebooks")."""
from __future__ import annotations

import asyncio
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import bokeh.document
import bokeh.models
import nbformat
import panel as pn
import pytest

from explorer.pages import PAGES

from own_loop import run_in_own_loop

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# Each notebook's last cell shows its page; the title is one the page draws at its initial settings.
LIVE_PAGES = {
    "01_wavelets": ("wavelets", "Re ψ · Im ψ · |ψ|, j=0, θ=0°"),
    "02_scattering": ("scattering", "S2 children of j1=0, θ1=0°"),
    "03_invariance_and_stability": ("invariance", "Rotation by 0°"),  # the first of its tabs
    "04_training_runs": ("runs", "Accuracy of cnn13-"),  # the run the notebook trained, selected
    "05_sle_spectra": ("spectra", "Ω₁/ΣΩ₁ of W₁, all colours, all j1"),
    "06_layerwise_lsv": ("layers", "Separation: test accuracy against depth"),
    "07_roto_translation": ("roto", "Re h along θ1 (L = 8, K = 2)"),
    "08_hybrids_small_data": ("hybrids", "Gain over cnn13 K=4 relu, same images"),
    "09_hierarchical_cnn": ("hierarchical", "Layer 11: attribute map"),  # the notebook's tiny run, selected
}
# The filter as README configures it: nbstripout's defaults plus the kernel's language_info (its Python
# version would differ between readers).
EXTRA_KEYS = "metadata.language_info"


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_wavelets.ipynb", "02_scattering.ipynb"} <= names


def strip(path: Path, cwd: Path) -> bytes:
    """What the git filter stores for the file at `path`, run outside any repository and without the
    user's git config, so only README's settings apply."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run([sys.executable, "-m", "nbstripout", "--textconv", "--extra-keys", EXTRA_KEYS, str(path)],
                          cwd=cwd, env=env, check=True, capture_output=True).stdout


def output_figures(output) -> list[tuple]:
    """(width, height, frame width, frame height, axes shown) of every Bokeh figure in a Panel output."""
    source = output.get("data", {}).get("text/html", "")
    if "var docs_json = " not in source:
        return []
    start = source.index("var docs_json = ") + len("var docs_json = ")
    docs, _ = json.JSONDecoder().raw_decode(source, start)
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and str(node.get("name")).lower() == "figure":
                a = node.get("attributes", {})
                axes = tuple(axis.get("attributes", {}).get("visible", True)
                             for axis in a.get("below", []) + a.get("left", []))
                found.append((*(a.get(k) for k in ("width", "height", "frame_width", "frame_height")), axes))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(docs)
    return sorted(found, key=repr)


def page_figures(slug: str) -> list[tuple]:
    """The same, for the page shown by this process, where no notebook has changed HoloViews' defaults."""
    from explorer.pages.notebook import show_page

    row = show_page(slug)
    root = row.get_root(bokeh.document.Document())
    if row.poll is not None:
        row.poll.stop()
    return sorted(((f.width, f.height, f.frame_width, f.frame_height, tuple(a.visible for a in f.below + f.left))
                   for f in root.select({"type": bokeh.models.Plot})), key=repr)


def output_texts(output) -> list[str]:
    """The "text" strings of the Bokeh models in a Panel output (plot titles, Markdown), decoded."""
    source = html.unescape(output.get("data", {}).get("text/html", ""))
    return [json.loads(f'"{s}"') for s in re.findall(r'"text":\s*"((?:[^"\\]|\\.)*)"', source)]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors

    slug, title = LIVE_PAGES[path.stem]
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert f'show_page("{slug}"' in last.source, f"{path.name} must end with its page, live"
    texts = [t for o in last.outputs for t in output_texts(o)]
    assert any(t.startswith(title) for t in texts), texts
    # Panel warns on stderr about a component whose pn.extension the notebook did not load: in JupyterLab
    # such a page does not render at all.
    stderr = [o.text for o in last.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, stderr
    # The page's figures are sized as served: the notebook's own styling must not leak into them
    # (HoloViews defaults set for the notebook's figures would).
    assert [f for o in last.outputs for f in output_figures(o)] == page_figures(slug)

    # Executed, the notebook is what a reader would save; the filter gives back the committed file.
    executed = tmp_path / path.name
    nbformat.write(nb, executed)
    assert executed.read_bytes() != path.read_bytes()
    assert strip(executed, tmp_path) == path.read_bytes()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stripped(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} keep outputs; strip them before committing"
    # Also ids, metadata and formatting as the filter writes them: else the first commit through the
    # filter would show a diff nobody made.
    assert strip(path, tmp_path) == path.read_bytes(), f"{path.name}: run nbstripout (README, Notebooks)"


# -- explorer.pages.notebook, without a kernel ------------------------------------------------------------

@pytest.mark.parametrize("slug", [p.slug for p in PAGES])
def test_show_page_lays_out_controls_then_page(slug):
    from explorer.pages.notebook import SIDEBAR_WIDTH, show_page

    row = show_page(slug)
    assert type(row.page) is next(p for p in PAGES if p.slug == slug).load()
    if row.page.controls is None:
        assert len(row.objects) == 1
    else:
        sidebar = row.objects[0]
        assert len(row.objects) == 2 and sidebar.width == SIDEBAR_WIDTH and row.page.controls in sidebar.objects
    root = row.get_root(bokeh.document.Document())
    assert not row.page.alert.visible, row.page.alert.object
    figures = [m for m in root.references() if isinstance(m, bokeh.models.Plot)]
    assert figures or slug == "home"


def test_show_page_sets_parameters_and_computes_what_serving_would():
    from explorer.pages.notebook import show_page

    row = show_page("Invariance", J=1)
    assert row.page.J == 1 and row.poll is None
    # Served, a thread computes the ratios; in a notebook show_page does, or the histogram says "computing…"
    assert row.page.lipschitz is not None and row.page.lipschitz["ratio"].size > 0


def test_runs_page_is_polled_in_a_notebook_and_a_second_show_stops_the_first_poll(tmp_path, monkeypatch):
    from explorer.pages.notebook import show_page
    from explorer.runs import RunStore
    from explorer.training import make_config

    monkeypatch.setenv("EXPLORER_STORE", str(tmp_path))

    async def kernel():  # a kernel runs cells inside its event loop; the poll runs on that loop
        row = show_page("runs")
        assert row.poll.running
        before = set(row.page.runs_table.value["id"])
        run = RunStore().create_or_open(make_config("cnn13", width=4, epochs=1, dataset="synthetic"))
        assert run.id not in before
        for _ in range(50):  # the poll's period is 1 s
            await asyncio.sleep(0.1)
            if run.id in set(row.page.runs_table.value["id"]):
                break
        assert run.id in set(row.page.runs_table.value["id"])
        again = show_page("runs")  # the cell run again
        assert not row.poll.running and again.poll.running
        again.poll.stop()

    run_in_own_loop(kernel())
