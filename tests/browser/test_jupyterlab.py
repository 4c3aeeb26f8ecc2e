"""A teaching notebook in a real JupyterLab, in Chromium: Run All draws its figures and its live page with
no script from the internet, a slider of that page changes its plot through the kernel, and saving the
executed notebook leaves no diff once README's nbstripout filter is set up."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, free_port, stop_server, wait_until_answering
from .helpers import console_errors, plot_titles, record_console, wait_for_title, wait_for_titles_change

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = ROOT / "notebooks" / "01_wavelets.ipynb"
LIVE_TITLE = "Re ψ · Im ψ · |ψ|, j=0, θ="  # the live page's three-panel wavelet, titled by its θ
PANEL_CDN = "https://cdn.holoviz.org/panel/"
TIMEOUT_MS = 120_000  # a loaded 2-core machine: server start, kernel start (torch), Run All


def start_jupyterlab(root: Path, home: Path, port: int) -> subprocess.Popen:
    """`jupyter lab` on 127.0.0.1:port serving `root`, no token, with every Jupyter setting in `home`."""
    env = {**os.environ,
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "EXPLORER_STORE": str(home / "store")}
    # Every cell rendered, not only those on screen (the default windowing defers the others); the
    # notebook's kernel started without the kernel dialog; no news toast over the cells.
    settings = {"notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
                "apputils-extension/notification": {"fetchNews": "false"}}
    for name, values in settings.items():
        path = home / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.root_dir={root}", "--IdentityProvider.token=", "--ServerApp.password=",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(home / "jupyterlab.log", "w") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    return wait_until_answering(proc, f"http://127.0.0.1:{port}/api/status", 90, "jupyter lab",
                                lambda: (home / "jupyterlab.log").read_text())


def kernel_idle(page) -> None:
    """Wait until the status bar says the notebook's kernel is connected and idle."""
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"ipykernel\) \| Idle")).first.wait_for(
        timeout=TIMEOUT_MS)


def run_menu(page, menu: str, command: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=menu).first.click()
    page.locator(f".lm-Menu-item[data-command='{command}']").first.click()


def shot(page, live, path: Path) -> bytes:
    """The live page as it is on screen: the last cell scrolled to the top, its output clipped to the window
    (an element screenshot of a tall output scrolls JupyterLab under its sticky toolbar)."""
    page.evaluate("() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].pop().scrollIntoView()")
    time.sleep(0.5)
    box, height = live.bounding_box(), page.viewport_size["height"]
    top = max(box["y"], 0)
    clip = {"x": box["x"], "y": top, "width": box["width"], "height": min(box["y"] + box["height"], height) - top}
    return page.screenshot(path=str(path), clip=clip)


def git(*args, cwd: Path) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def test_wavelets_notebook_runs_live_in_jupyterlab(page, tmp_path, screenshots):
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)  # JupyterLab saves a copy, never the tracked file
    port = free_port()
    proc = start_jupyterlab(root, home, port)
    offsite: list[str] = []  # requests a reader without internet would see fail
    try:
        # Recorded, not blocked: intercepting requests (page.route) loses JupyterLab's 7 MB save.
        page.on("request", lambda r: None if r.url.startswith((f"http://127.0.0.1:{port}/", "data:", "blob:"))
                else offsite.append(r.url))
        messages = record_console(page)
        page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?reset", timeout=TIMEOUT_MS)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=TIMEOUT_MS)
        kernel_idle(page)  # Run All before the kernel is connected runs nothing
        run_menu(page, "Run", "runmenu:run-all")

        # The live page is the last cell's output: its sliders and, drawn by the kernel, its plots.
        live = page.locator(".jp-Notebook .jp-CodeCell").last.locator(".jp-OutputArea-output")
        live.locator(".noUi-handle").first.wait_for(timeout=TIMEOUT_MS)
        before = wait_for_title(page, LIVE_TITLE + "0°", timeout=TIMEOUT_MS / 1000)
        live.locator("canvas").first.wait_for(timeout=TIMEOUT_MS)
        live.locator("mjx-container").first.wait_for(timeout=30_000)  # the captions' formulas, typeset
        kernel_idle(page)  # Run All has finished
        static = page.locator(".jp-Notebook .jp-CodeCell").nth(2).locator(".jp-OutputArea-output canvas")
        assert static.count() >= 1, "the earlier cells' figures are drawn too (inline, offline)"
        # Every script is inline. HoloViews' own rendering of the static figures (not Panel's, which the
        # live page uses) still links four Panel stylesheets from the CDN: offline they are missing,
        # without visible effect on a figure with no widgets.
        assert all(u.startswith(PANEL_CDN) and u.split("?")[0].endswith(".css") for u in offsite), offsite
        offsite.clear()
        page.locator(".jp-Notebook .jp-CodeCell").nth(2).scroll_into_view_if_needed()
        time.sleep(1)  # let Bokeh finish painting before the screenshots
        page.screenshot(path=str(screenshots / "jupyterlab_static_figures.png"))
        first = shot(page, live, screenshots / "jupyterlab_wavelets_live.png")

        titles = plot_titles(page)
        handle = live.locator(".bk-input-group", has_text="θ index").locator(".noUi-handle").first
        handle.focus()
        handle.press("ArrowRight")
        after = wait_for_titles_change(page, titles, timeout=60)
        wait_for_title(page, LIVE_TITLE + "22.5°", timeout=60)
        assert before not in plot_titles(page), after  # the live figure was redrawn, not a copy added
        wait_for_title(page, "|ψ̂| in Fourier, j=0, θ=22.5°", timeout=60)
        time.sleep(1)
        second = shot(page, live, screenshots / "jupyterlab_wavelets_theta.png")
        assert second != first
        page.screenshot(path=str(screenshots / "jupyterlab_live_page.png"))

        assert offsite == [], offsite  # the live page asks nothing of the internet
        errors = [e for e in console_errors(messages) if not e.startswith("Failed to load resource")]
        assert errors == [], errors  # failed loads: the stylesheets above, checked by URL

        # Saved as a reader would: outputs and all, several megabytes. README's filter gives back the
        # tracked file, so git sees no change.
        # The slider had the focus, and JupyterLab saves the notebook that has it: give it back first.
        page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first.click()
        run_menu(page, "File", "docmanager:save")
        page.wait_for_function("() => document.querySelectorAll('.lm-TabBar-tab.jp-mod-dirty').length === 0",
                               timeout=60_000)  # the server has written the file
        saved = root / NOTEBOOK.name
        cells = json.loads(saved.read_text())["cells"]
        assert cells[-1]["outputs"], [(c["cell_type"], len(c.get("outputs", []))) for c in cells]
        repo = tmp_path / "repo"
        (repo / "notebooks").mkdir(parents=True)
        git("init", "-q", cwd=repo)
        subprocess.run([sys.executable, "-m", "nbstripout", "--install"], cwd=repo, check=True,
                       env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})
        git("config", "filter.nbstripout.extrakeys", "metadata.language_info", cwd=repo)
        shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
        shutil.copy(NOTEBOOK, repo / "notebooks" / NOTEBOOK.name)
        git("add", ".", cwd=repo)
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "tracked", cwd=repo)
        shutil.copy(saved, repo / "notebooks" / NOTEBOOK.name)
        assert git("diff", "--exit-code", "--stat", cwd=repo) == ""  # raises if the filtered file differs
        # `git status` marks the file (its size changed) until it is added, which stages nothing.
        git("add", "-A", cwd=repo)
        assert git("status", "--porcelain", cwd=repo) == ""
    finally:
        stop_server(proc)
