"""A real `panel serve explorer/app.py` on loopback, and Chromium from Debian for pytest-playwright."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict | None = None) -> subprocess.Popen:
    """`panel serve explorer/app.py` on 127.0.0.1:port, returned once /liveness answers."""
    cmd = [sys.executable, "-m", "panel", "serve", "explorer/app.py", "--address", "127.0.0.1",
           "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return wait_until_answering(proc, f"http://127.0.0.1:{port}/liveness", 60, "panel serve",
                                lambda: proc.stdout.read())


def wait_until_answering(proc: subprocess.Popen, url: str, seconds: float, name: str, output) -> subprocess.Popen:
    """`proc` once `url` answers 200; its `output()` in the error if it exits, stopped if it never answers."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {output()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"{name} did not answer {url} within {seconds:g} s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def served(store: Path, dataset: bool = True):
    """The app's URL while `panel serve explorer/app.py` runs on a free loopback port with `store` as its
    store (the Runs page's jobs must never write into the user's), without a dataset if not `dataset`: as a
    newcomer first runs it, even where CI configures CIFAR-10."""
    port = free_port()
    proc = start_server(port, env={"EXPLORER_STORE": str(store), **({} if dataset else {"EXPLORER_DATA": ""})})
    try:
        yield f"http://127.0.0.1:{port}/app"
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory):
    with served(tmp_path_factory.mktemp("store")) as url:
        yield url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1500, "height": 2200}}


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
