"""Hostile input against the served app in Chromium: URL arguments (unknown pages, markup, undecodable bytes,
very long and repeated values, Panel's own ?theme=) and uploads (not images, truncated, decompression bombs,
wrong extensions, names with path separators). Each gets a clear message in the page, the session keeps
answering, no console error, and no file appears outside the server's store: the server runs in a working
directory of its own, scanned before and after."""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import ROOT, free_port, stop_server, wait_until_answering
from .helpers import console_errors, open_page, plot_titles, record_console, wait_for_title, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """`panel serve` on loopback, run from an empty working directory with an empty store."""
    cwd, store = tmp_path_factory.mktemp("cwd") / "a" / "b", tmp_path_factory.mktemp("store")
    cwd.mkdir(parents=True)
    port = free_port()
    cmd = [sys.executable, "-m", "panel", "serve", str(ROOT / "explorer" / "app.py"), "--address", "127.0.0.1",
           "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness"]
    env = {**os.environ, "EXPLORER_STORE": str(store)}
    env.pop("EXPLORER_DATA", None)
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_until_answering(proc, f"http://127.0.0.1:{port}/liveness", 90, "panel serve", lambda: proc.stdout.read())
    try:
        yield {"url": f"http://127.0.0.1:{port}/app", "cwd": cwd, "store": store}
    finally:
        stop_server(proc)


def _alert_texts(page) -> list[str]:
    """The texts of the page's alerts (Panel's Alert: a Markdown pane, its paragraphs in the shadow DOM)."""
    return page.locator("p", has_text="There is no page").all_inner_texts()


# --- URL arguments -------------------------------------------------------------------------------------

XSS_MARK = "window.__pwned"
HOSTILE_URLS = {
    "path traversal": ("?page=../../etc", "../../etc"),
    "script tag": ("?page=%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E", "?script?window"),
    "img onerror": ("?page=%3Cimg%20src%3Dx%20onerror%3D%22window.__pwned%3D1%22%3E", "?img src?x onerror?"),
    "markdown link": ("?page=%5Bx%5D(javascript%3Awindow.__pwned%3D1)", "?x??javascript?window"),
    "formula": ("?page=%24%24%5Chref%7Bjavascript%3Awindow.__pwned%3D1%7D%7Bx%7D%24%24", "???href?javascript"),
    "not UTF-8": ("?page=%FF%FE", "??"),
    "NUL": ("?page=%00", "?"),
    "very long": ("?page=" + "a" * 20_000, "a" * 60 + "…"),
    "unknown keys only": ("?foo=bar&x=%3Cscript%3E&bokeh-session-id=zzz", None),
    "Panel's theme, not UTF-8": ("?theme=%FF&page=%FF", "?"),
    "Panel's theme, markup": ("?theme=%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E", None),
}


@pytest.mark.parametrize("case", list(HOSTILE_URLS))
def test_hostile_url_shows_the_home_page_with_a_safe_message(case, page, hostile_server, screenshots):
    query, shown = HOSTILE_URLS[case]
    messages = record_console(page)
    response = page.goto(hostile_server["url"] + query, timeout=90_000)
    assert response.status == 200, case
    open_page(page, page.url, canvases=0)
    page.get_by_text("An interactive tour of the scattering transform").first.wait_for(timeout=30_000)
    alerts = [t for t in _alert_texts(page) if "There is no page" in t]
    if shown is None:
        assert alerts == []
    else:
        assert len(alerts) == 1 and f"There is no page {shown}" in alerts[0], alerts
        assert "showing the home page" in alerts[0] and "wavelets" in alerts[0]
        assert len(alerts[0]) < 400
        alert = page.locator("p", has_text="There is no page").first
        assert alert.locator("img, script, svg, a, mjx-container").count() == 0
    assert page.evaluate(XSS_MARK) is None and page.title() == "Structures Explorer"
    if case in ("img onerror", "very long"):
        page.screenshot(path=str(screenshots / f"hostile_url_{case.replace(' ', '_')}.png"))
    time.sleep(0.3)
    assert console_errors(messages) == []


def test_repeated_and_unknown_keys_open_the_first_page(page, hostile_server):
    open_page(page, hostile_server["url"] + "?foo=1&page=wavelets&page=runs&page=%3Cx%3E&x=" + "b" * 5000)
    wait_for_title(page, "Littlewood")  # the Wavelets page, the first page= value
    assert not [t for t in _alert_texts(page) if "There is no page" in t]


# --- uploads -------------------------------------------------------------------------------------------


def _png(array) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _gif() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(out, format="GIF")
    return out.getvalue()


_GOOD = _png((np.random.default_rng(0).random((90, 120)) * 255).astype(np.uint8))
UPLOADS = [  # (name, mime type, content, words in the page)
    ("../../evil.png", "image/png", b"this is text, not an image", "is not an image"),
    ("../../../../../../tmp/evil-abs.png", "image/png", _png_declaring(50_000, 50_000),
     "too large to decode safely"),
    ("sub/dir/evil.png", "image/png", _png_declaring(9000, 9000), "refused before decoding"),
    ("..\\..\\evil.png", "image/png", _GOOD[: len(_GOOD) // 2], "corrupt or truncated"),
    ("evil.png", "image/png", _gif(), "is not an image in PNG or JPEG format"),
    ("<img src=x onerror=window.__pwned=1>.png", "image/png", _png(np.zeros((1, 20_000), np.uint8)), "too thin"),
    ("photo.jpg", "image/jpeg", _GOOD, None),  # a PNG named .jpg: used, the content decides
]


def test_hostile_uploads_are_refused_in_the_page_and_write_nothing(page, hostile_server, screenshots):
    cwd, store = hostile_server["cwd"], hostile_server["store"]
    temp = Path(tempfile.gettempdir())
    before = {"cwd": _files(cwd), "store": _files(store), "temp": {n for n in os.listdir(temp) if "evil" in n}}
    outside = [cwd.parent.parent / "evil.png", Path("/tmp/evil-abs.png"), cwd / "sub" / "dir" / "evil.png"]
    assert not any(p.exists() for p in outside)

    messages = record_console(page)
    open_page(page, hostile_server["url"] + "?page=scattering", canvases=6)
    page.locator("select").first.select_option("uploaded file")
    file_input = page.locator("input[type=file]")
    file_input.wait_for(state="attached")
    for name, mime, data, words in UPLOADS:  # each replaces the previous one (one file at a time)
        file_input.set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])
        if words is None:
            wait_for_title(page, "Input image (64×64)")
            page.locator("p", has_text="Cannot use this image").first.wait_for(state="hidden", timeout=30_000)
        else:
            alert = page.locator("p", has_text="Cannot use this image").filter(has_text=words).first
            alert.wait_for(timeout=30_000)
            text = alert.inner_text()
            assert text.startswith("Cannot use this image:") and "evil" not in text and "<img" not in text, text
            if "too large" in words:
                page.screenshot(path=str(screenshots / "hostile_upload_bomb.png"))
        wait_idle(page)

    # Still answering: a slider move comes back as new plot titles.
    before_titles = plot_titles(page)
    handle = page.locator(".bk-input-group", has_text="θ1 index").locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    wait_for_title(page, "S2 children of j1=0, θ1=22.5°")
    assert plot_titles(page) != before_titles
    assert page.evaluate(XSS_MARK) is None
    time.sleep(0.5)
    assert console_errors(messages) == []

    assert _files(cwd) == before["cwd"], "the server wrote into its working directory"
    new_in_store = _files(store) - before["store"]  # the warm-up's caches may appear; no upload may
    assert not [p for p in new_in_store if "evil" in p or p.endswith((".png", ".jpg"))], new_in_store
    assert {n for n in os.listdir(temp) if "evil" in n} == before["temp"]
    assert not any(p.exists() for p in outside)


# --- explorer serve ------------------------------------------------------------------------------------


def test_explorer_serve_default_works_in_a_browser_at_127_0_0_1_and_localhost(page, tmp_path):
    """`explorer serve --show` opens http://127.0.0.1:PORT/app: the page must get its websocket there and at
    localhost without any --allow-websocket-origin."""
    port = free_port()
    env = {**os.environ, "EXPLORER_STORE": str(tmp_path / "store")}
    env.pop("EXPLORER_DATA", None)
    proc = subprocess.Popen([sys.executable, "-m", "explorer", "serve", "--port", str(port), "--", "--liveness"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_until_answering(proc, f"http://127.0.0.1:{port}/liveness", 90, "explorer serve", lambda: proc.stdout.read())
    try:
        for host in ("127.0.0.1", "localhost"):
            messages = record_console(page)
            open_page(page, f"http://{host}:{port}/app?page=wavelets")
            wait_for_title(page, "Littlewood")
            assert console_errors(messages) == [], host
    finally:
        stop_server(proc)
