"""Load test of the explorer app: N browser sessions at once, errors, slider latency, the server's memory.

    python benchmarks/load.py                      # 10 sessions for 120 s, about 6½ minutes in all
    python benchmarks/load.py --sessions 2 --duration 20 --baseline-duration 10 --after 10 --contention-idle 8 \
        --contention-duration 20                   # a quick try

Starts `panel serve explorer/app.py` itself on 127.0.0.1 (a free port, one process) with an empty temporary
EXPLORER_STORE (`--copy-store` copies the runs of your store into it; EXPLORER_DATA is passed through when set),
drives it from headless Chromium (/usr/bin/chromium, one browser, one context per session) and stops
everything at the end, on Ctrl-C, on an error, and at a hard deadline whatever happens (`--deadline`).

Phases, in this order:
1. warm-up: one session opens every page once (not measured; the server also warms its caches at start);
2. churn: one visitor opens the Wavelets page again and again (--churn times, at most --churn-duration s),
   each open a new server session closing the previous one: the memory a session costs once caches are warm;
3. baseline: ONE session walks the pages for --baseline-duration s;
4. contention: session B moves the Wavelets θ slider, first alone (--contention-idle s), then while session A
   runs reconstructions on the Reconstruction page (pressing Reconstruct again whenever one ends) and
   `explorer train cnn13 --dataset synthetic --width 8 --epochs 3` trains into the same store
   (--contention-duration s); B's latency under contention ÷ its idle figure;
5. load: N sessions (--sessions, at most 32) walk the pages at once for --duration s;
6. after: every session closed, the server's memory watched for --after s.

A session walks the pages of `explorer.pages.PAGES` (in a seeded random order, again and again) and on each
makes a few seeded random moves: ArrowLeft/ArrowRight on a visible slider handle, another option of a
visible Select, another button of a radio group, another tab, a row of the Runs page's tables; a pause of
0.5–1.5 s between moves, as a person would. Latency of a move = browser time from the key press (or click)
to the first animation frame after the server changed a plot's Bokeh model ("first"; a model of a Figure
or one it references, or a Figure put into the page) and to the last such change before 0.5 s of quiet
("settled"). This is app_latency.py's measurement (it waits for named plot titles) made generic over every
widget of every page. A widget whose moves changed no plot twice is left alone by that session; moves
on the Runs and Home pages are made but not timed (the Runs page refreshes itself every second).

Recorded per session: console errors and page errors, failed requests (not those our own navigation
aborted), responses with status ≥ 400 (favicon excepted), websocket errors, page crashes, pages that did
not open and moves with no answer within --move-timeout s; server log lines with a traceback or ERROR.
The server's RSS (its process and children, psutil) is sampled every second throughout; the curve is printed
as a table (with the sessions open and the CPU taken by the server and by the browser side) and judged: it
levels off when the slope over the last half of the after phase is ≤ --flat-slope MB/min and, in the
churn from 33 s after its first session closed (Bokeh then destroys closed sessions as fast as they come:
15 s lifetime, checked every 17 s), RSS grows by at most --per-open MB per page opened (least squares; not
judged with fewer than 6 opens then). The largest
one-second rises are listed with what the sessions had just done (a cache filled by new parameters is not
a session's cost; the load's growth is reported per half, not judged).
Ends with the ratios (N sessions ÷ 1 session, contention ÷ idle) and one verdict line per criterion;
`--json PATH` writes every move, page open, error and memory sample. Exit code 0; with --strict, 1 if a
verdict fails.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM_ARGS, free_port, wait_until_answering
from tests.browser.helpers import IGNORED_CONSOLE

MAX_SESSIONS = 32
CHURN_SETTLE_S = 33  # Bokeh's unused-session lifetime (15 s) + its check interval (17 s) + a margin
CHURN_MIN_OPENS = 6
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1500, "height": 1400}
UNTIMED_PAGES = {"home", "runs"}  # the Runs page redraws itself every second: no latency to read there
WEIGHTS = {"slider": 6, "select": 2, "radio": 1, "tab": 1, "row": 1}  # how often each kind of control is moved
TRAIN_CMD = ["train", "cnn13", "--dataset", "synthetic", "--width", "8", "--epochs", "3"]

# Installed in every page once Bokeh has its document: notes the animation frame after each change the
# SERVER made (sync === false) to a plot: a Figure, a model one references (data source, title, range,
# colour mapper, glyph…), or a Figure (or a layout holding one) newly put into the page.
HOOK_JS = """() => {
  if (window.__lt) return true;
  if (!(window.Bokeh && Bokeh.documents && Bokeh.documents.length)) return false;
  const lt = window.__lt = {first: null, last: null, lastAny: -1e9, armed: false, plot: new Set()};
  const isFig = v => v && typeof v === 'object' && (v.type === 'Figure' || v.type === 'Plot' || v.type === 'GridPlot');
  const holdsFig = v => {
    if (!v || typeof v !== 'object') return false;
    if (Array.isArray(v)) return v.some(holdsFig);
    if (isFig(v)) return true;
    if (typeof v.references === 'function') { for (const r of v.references()) if (isFig(r)) return true; }
    return false;
  };
  lt.rebuild = () => {
    const s = new Set();
    for (const d of Bokeh.documents) for (const m of d.all_models)
      if (isFig(m)) { s.add(m); for (const r of m.references()) s.add(r); }
    lt.plot = s;
  };
  lt.rebuild();
  const onChange = (ev) => {
    if (ev.sync !== false) return;  // a change made in the browser (the widget moved): not an answer
    if (['css_classes', 'stylesheets', 'styles', 'loading'].includes(ev.attr)) return;  // a spinner, not a plot
    const m = ev.model;
    const v = ev.value !== undefined ? ev.value : ev.new_;
    if (!((m && lt.plot.has(m)) || holdsFig(v))) return;
    lt.lastAny = performance.now();
    if (lt.armed) requestAnimationFrame(() => {
      const t = performance.now();
      if (lt.first === null) lt.first = t;
      lt.last = t;
    });
    if (holdsFig(v)) setTimeout(lt.rebuild, 0);
  };
  for (const d of Bokeh.documents) d.on_change(onChange);
  return true;
}"""

ARM_JS = """() => { const lt = window.__lt; lt.rebuild(); lt.first = null; lt.last = null; lt.armed = true;
  return performance.now(); }"""
STATE_JS = "() => window.__lt ? [performance.now(), window.__lt.first, window.__lt.last, window.__lt.lastAny] : null"

# Every visible control a session may move, found in one pass through the page and its shadow roots; each
# is tagged data-lt="<pass>-<k>" so that a locator (which pierces shadow roots) finds it again.
CONTROLS_JS = """() => {
  const pass = window.__ltPass = (window.__ltPass || 0) + 1;
  const kinds = [['slider', '.noUi-handle'], ['select', 'select:not([multiple])'], ['radio', '.bk-btn-group .bk-btn'],
                 ['tab', '.bk-tab'], ['row', '.tabulator-row']];
  const out = [];
  const visible = el => { const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden'; };
  const text = el => (el ? el.textContent : '').trim();
  const visit = (root) => {
    for (const el of root.querySelectorAll('*')) {
      for (const [kind, sel] of kinds) {
        if (!el.matches(sel) || !visible(el) || el.closest('[disabled]') || el.disabled) continue;
        const c = {kind, id: pass + '-' + out.length};
        const scope = el.getRootNode();
        if (kind === 'slider') {
          const title = scope.querySelector ? scope.querySelector('.bk-slider-title') : null;
          Object.assign(c, {label: text(title).replace(/:[^:]*$/, '').trim(), now: parseFloat(el.getAttribute('aria-valuenow')),
                            min: parseFloat(el.getAttribute('aria-valuemin')), max: parseFloat(el.getAttribute('aria-valuemax'))});
          if (!(c.max > c.min)) continue;
        } else if (kind === 'select') {
          const label = scope.querySelector ? scope.querySelector('label') : null;
          Object.assign(c, {label: text(label), n: el.options.length, index: el.selectedIndex});
          if (c.n < 2) continue;
        } else if (kind === 'radio') {  // a group of buttons (a lone button, Start or Compute, is never pressed)
          if (el.classList.contains('bk-active') || el.parentNode.children.length < 2) continue;
          c.label = Array.from(el.parentNode.children).map(text).join('|') + '=' + text(el);
        } else if (kind === 'tab') {
          if (el.classList.contains('bk-active')) continue;
          c.label = text(el).slice(0, 40);
        } else {
          c.label = 'row ' + text(el).slice(0, 30);
        }
        el.dataset.lt = c.id;
        out.push(c);
      }
      if (el.shadowRoot) visit(el.shadowRoot);
    }
  };
  visit(document);
  return out;
}"""
SLIDER_NOW_JS = "e => parseFloat(e.getAttribute('aria-valuenow'))"


def percentile(values: list, q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation; NaN when there are no values."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return float("nan")
    k = (len(vals) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return vals[lo] + (vals[hi] - vals[lo]) * (k - lo)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points; NaN with fewer than 3 points or a single x."""
    if len(points) < 3:
        return float("nan")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else float("nan")


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Slope of (seconds, MB) points in MB per minute."""
    return 60 * slope(points)


def fmt(value: float, digits: int = 0) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


# --------------------------------------------------------------------------------------------------------
# processes: the server, the training job, the memory sampler, the watchdog

class Processes:
    """What this script started (server, training job) and how to stop all of it, once."""

    def __init__(self):
        self.server: subprocess.Popen | None = None
        self.train: subprocess.Popen | None = None
        self.store: Path | None = None
        self._lock = threading.Lock()

    @staticmethod
    def stop_group(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
        """SIGTERM to the process group `proc` leads (started with start_new_session), SIGKILL after `grace`."""
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self) -> None:
        """Stop the training job, the server, and whatever the server started (a training job started from the
        Runs page runs in a session of its own, so it is not in the server's group): the server's descendants,
        and any process left whose EXPLORER_STORE is this run's temporary store."""
        import psutil

        with self._lock:
            self.stop_group(self.train, 5.0)
            started = []
            if self.server is not None and self.server.poll() is None:
                with contextlib.suppress(psutil.Error):
                    started = psutil.Process(self.server.pid).children(recursive=True)
            self.stop_group(self.server)
            if self.store is not None:
                for p in psutil.process_iter(["pid"]):
                    with contextlib.suppress(psutil.Error):
                        if p.pid != os.getpid() and p.environ().get("EXPLORER_STORE") == str(self.store):
                            started.append(p)
            for p in started:
                with contextlib.suppress(psutil.Error):
                    p.terminate()
            _, alive = psutil.wait_procs(started, timeout=5)
            for p in alive:
                with contextlib.suppress(psutil.Error):
                    p.kill()


def start_server(port: int, env: dict, log_path: Path) -> subprocess.Popen:
    """`panel serve explorer/app.py` on 127.0.0.1:port in its own process group, output to `log_path`,
    returned once /liveness answers."""
    cmd = [sys.executable, "-m", "panel", "serve", "explorer/app.py", "--address", "127.0.0.1", "--port", str(port),
           "--allow-websocket-origin", f"127.0.0.1:{port}", "--num-procs", "1", "--liveness"]
    log = open(log_path, "w")  # noqa: SIM115  (the server writes to it until it stops)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return wait_until_answering(proc, f"http://127.0.0.1:{port}/liveness", 120, "panel serve",
                                lambda: log_path.read_text()[-3000:])


def start_training(env: dict, log_path: Path) -> subprocess.Popen:
    """`explorer train cnn13 --dataset synthetic …` into the same store, in its own process group."""
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "explorer", *TRAIN_CMD], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


# Tornado's complaint when the server writes to a websocket the browser has just closed (a visitor who left
# a page while its update was on the way): not a fault of the app, counted apart.
BENIGN_EXCEPTIONS = ("tornado.websocket.WebSocketClosedError", "tornado.iostream.StreamClosedError")


def server_log_problems(log_path: Path) -> tuple[list[str], int]:
    """Lines of the server's log that show an error: the exception line ending each traceback, and lines
    logged at ERROR level; and how many tracebacks were Tornado's closed-websocket ones (benign)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return [], 0
    out, benign, in_tb, frame = [], 0, False, ""
    for line in lines:
        if line.startswith("Traceback"):
            in_tb = True
            continue
        if in_tb and line.strip().startswith("File "):
            frame = line.strip()
        if in_tb and not line.startswith((" ", "\t")):
            in_tb = False
            if line.strip().startswith(BENIGN_EXCEPTIONS):
                benign += 1
            else:
                out.append(f"traceback: {line.strip()} (at {frame})")
        elif not in_tb and (" ERROR" in line or line.startswith("ERROR")):
            out.append(line.strip())
    return out, benign


class MemorySampler(threading.Thread):
    """RSS of the server process and its children, every `period` s, with the phase and the sessions open."""

    def __init__(self, pid: int, run: Run, exclude=lambda: (), period: float = 1.0):
        super().__init__(name="memory-sampler", daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.exclude = exclude  # pids not to count as the load generator's (the training job of the contention)
        self._known: dict = {}
        self.owner, self.period = run, period
        self.samples: list[dict] = []
        self._stop = threading.Event()

    def _cpu(self, p) -> float:
        """CPU % of `p` since the previous sample (psutil needs the same Process object both times)."""
        p = self._known.setdefault(p.pid, p)
        return p.cpu_percent(None)

    def measure(self) -> dict:
        """RSS and CPU % of the server's tree; CPU % of the rest of this script's tree (Chromium, Playwright,
        this Python: what the load generator itself takes from the same cores)."""
        import psutil

        server = [self.proc]
        with contextlib.suppress(psutil.Error):
            server += self.proc.children(recursive=True)
        rss, cpu = 0, 0.0
        for p in server:
            with contextlib.suppress(psutil.Error):
                rss += p.memory_info().rss
                cpu += self._cpu(p)
        skip = {p.pid for p in server} | set(self.exclude())
        driver = 0.0
        me = psutil.Process()
        with contextlib.suppress(psutil.Error):
            for p in [me, *me.children(recursive=True)]:
                if p.pid not in skip:
                    with contextlib.suppress(psutil.Error):
                        driver += self._cpu(p)
        return {"rss_mb": round(rss / 2**20, 1), "server_cpu_percent": round(cpu), "driver_cpu_percent": round(driver)}

    def run_once(self) -> None:
        m = self.measure()
        run = self.owner
        self.samples.append({"t": round(run.elapsed(), 2), "phase": run.phase, **m, "sessions_open": run.open_pages,
                             "pages_opened": run.pages_opened})

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001  (the server is gone: nothing more to sample)
                return
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()


def descendants_of_self() -> list:
    import psutil

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def start_watchdog(seconds: float, processes: Processes, run: Run) -> threading.Timer:
    """After `seconds`, whatever is happening: stop the server and the job, kill every process this script
    started (Chromium and Playwright's driver included, by pid), write what was recorded, and exit."""

    def fire():
        print(f"\n!! hard deadline of {seconds:.0f} s reached: stopping everything", flush=True)
        with contextlib.suppress(Exception):
            run.write_json(partial=True)
        processes.stop_all()
        for p in descendants_of_self():
            with contextlib.suppress(Exception):
                p.kill()
        if run.tmp is not None and not run.args.keep_store:
            shutil.rmtree(run.tmp, ignore_errors=True)
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


# --------------------------------------------------------------------------------------------------------
# what a run records

class Run:
    def __init__(self, args):
        self.args = args
        self.t0 = time.perf_counter()
        self.phase = "start"
        self.open_pages = 0
        self.pages_opened = 0
        self.moves: list[dict] = []
        self.opens: list[dict] = []
        self.problems: list[dict] = []  # console errors, failed requests, crashes, timeouts
        self.phase_times: dict[str, list[float]] = {}
        self.notes: dict = {}
        self.sampler: MemorySampler | None = None
        self.json_path: Path | None = Path(args.json) if args.json else None
        self.tmp: Path | None = None  # the temporary store and logs

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def set_phase(self, name: str) -> None:
        if self.phase in self.phase_times:
            self.phase_times[self.phase][1] = self.elapsed()
        self.phase = name
        self.phase_times[name] = [self.elapsed(), None]
        print(f"[{self.elapsed():6.1f} s] phase {name}", flush=True)

    def problem(self, kind: str, session: str, slug: str | None, text: str, **extra) -> None:
        self.problems.append({"t": round(self.elapsed(), 2), "phase": self.phase, "kind": kind, "session": session,
                              "page": slug, "text": text[:2000], **extra})

    def write_json(self, partial: bool = False, extra: dict | None = None) -> None:
        if self.json_path is None:
            return
        data = {"partial": partial, "args": vars(self.args), "phases": self.phase_times, "notes": self.notes,
                "moves": self.moves, "opens": self.opens, "problems": self.problems,
                "memory": self.sampler.samples if self.sampler else [], **(extra or {})}
        self.json_path.write_text(json.dumps(data, indent=1, default=str))


# --------------------------------------------------------------------------------------------------------
# one browser session

class Session:
    """One visitor: a browser context with one tab, navigating between pages and moving their widgets."""

    def __init__(self, run: Run, browser, name: str, seed: int):
        self.run, self.browser, self.name = run, browser, name
        self.rng = random.Random(seed)
        self.context = self.page = None
        self.slug: str | None = None
        self.navigating_until = 0.0  # requests aborted before this time were aborted by our own navigation
        self.dull: dict[tuple, int] = {}  # (page, control) → moves that changed no plot
        self.last_action = ""
        self.closing = False

    async def open(self) -> None:
        self.context = await self.browser.new_context(viewport=VIEWPORT)
        self.page = await self.context.new_page()
        self.page.set_default_timeout(self.run.args.move_timeout * 1000)
        self.run.open_pages += 1
        p = self.page
        p.on("console", self._on_console)
        p.on("pageerror", lambda e: self._problem("pageerror", str(e)))
        p.on("requestfailed", self._on_request_failed)
        p.on("response", self._on_response)
        p.on("crash", lambda *_: self._problem("crash", "the page crashed"))
        p.on("websocket", self._on_websocket)

    async def close(self) -> None:
        self.closing = True
        if self.context is not None:
            with contextlib.suppress(Exception):  # the browser may be gone already
                await self.context.close()
            self.context = self.page = None
            self.run.open_pages -= 1

    # -- what the browser reports -------------------------------------------------------------------------
    def _problem(self, kind: str, text: str, **extra) -> None:
        self.run.problem(kind, self.name, self.slug, text, action=self.last_action, **extra)

    def _on_console(self, msg) -> None:
        if msg.type == "error" and not any(s in msg.text for s in IGNORED_CONSOLE):
            self._problem("console", msg.text, url=(msg.location or {}).get("url"))

    def _on_request_failed(self, request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" in failure and time.perf_counter() < self.navigating_until:
            return  # our own page change cancelled it
        self._problem("requestfailed", f"{request.method} {request.url}: {failure}")

    def _on_response(self, response) -> None:
        if response.status >= 400 and not any(s in response.url for s in IGNORED_CONSOLE):
            self._problem("http", f"{response.status} {response.request.method} {response.url}")

    def _on_websocket(self, ws) -> None:
        ws.on("socketerror", lambda err: self._problem("websocket", f"{ws.url}: {err}"))
        ws.on("close", lambda *_: self._on_websocket_close(ws))

    def _on_websocket_close(self, ws) -> None:
        """A page's websocket closed while we stayed on the page: the server dropped the session."""
        if not self.closing and time.perf_counter() >= self.navigating_until:
            self._problem("session", f"the server closed the page's websocket ({ws.url})")

    # -- navigation ---------------------------------------------------------------------------------------
    async def goto(self, url: str, slug: str) -> bool:
        """Open page `slug`; wait for its document, its first canvas (pages with plots) and no spinner.
        Records the time to the first canvas; False (and a problem) when it does not open in time."""
        self.slug, self.last_action = slug, f"open {slug}"
        page, timeout = self.page, self.run.args.open_timeout * 1000
        t = time.perf_counter()
        self.navigating_until = t + 3600  # aborts during the navigation are ours
        record = {"t": round(self.run.elapsed(), 2), "phase": self.run.phase, "session": self.name, "page": slug}
        try:
            await page.goto(f"{url}?page={slug}", timeout=timeout)
            self.navigating_until = time.perf_counter() + 2.0
            await page.wait_for_function("() => window.Bokeh !== undefined && Bokeh.documents.length > 0",
                                         timeout=timeout, polling=100)
            record["document_s"] = round(time.perf_counter() - t, 3)
            if slug != "home":
                await page.locator("canvas").first.wait_for(timeout=timeout)
                record["first_canvas_s"] = round(time.perf_counter() - t, 3)
            await page.wait_for_function("() => document.querySelectorAll('.pn-loading').length === 0",
                                         timeout=timeout, polling=100)
            record["idle_s"] = round(time.perf_counter() - t, 3)
            await page.evaluate(HOOK_JS)
            record["ok"] = True
        except Exception as exc:  # noqa: BLE001  (a page that does not open is what we look for)
            record["ok"] = False
            self._problem("open-timeout", f"page {slug} not open after {time.perf_counter() - t:.1f} s: "
                                          f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        self.run.opens.append(record)
        self.run.pages_opened += 1
        return record["ok"]

    # -- controls -----------------------------------------------------------------------------------------
    async def controls(self) -> list[dict]:
        """Every visible control that can be moved now ({kind, id, label, …}), less those found dull."""
        found = await self.page.evaluate(CONTROLS_JS)
        return [c for c in found if self.dull.get((self.slug, c["kind"], c["label"]), 0) < 2]

    async def move(self, control: dict, timed: bool = True) -> dict:
        """Move one control; the time until the server changed a plot (first) and until it stopped (settled)."""
        page, args = self.page, self.run.args
        kind, label = control["kind"], control["label"]
        target = page.locator(f'[data-lt="{control["id"]}"]')
        rec = {"t": round(self.run.elapsed(), 2), "phase": self.run.phase, "session": self.name, "page": self.slug,
               "kind": kind, "control": label, "first_ms": None, "settled_ms": None, "timed": timed}
        self.last_action = f"{kind} {label!r} on {self.slug}"
        try:
            # Let a change still arriving from the previous move pass, so that it is not taken for this one's.
            for _ in range(30):
                state = await page.evaluate(STATE_JS)
                if state is None or state[0] - state[3] > 500:
                    break
                await asyncio.sleep(0.1)
            if kind == "slider":
                now = await target.evaluate(SLIDER_NOW_JS)  # it may have moved since it was listed
                if now >= control["max"]:
                    key = "ArrowLeft"
                elif now <= control["min"]:
                    key = "ArrowRight"
                else:
                    key = self.rng.choice(["ArrowLeft", "ArrowRight"])
                rec["action"] = f"{key} from {now:g}"
                await target.focus()
                t0 = await page.evaluate(ARM_JS)
                await target.press(key)
            elif kind == "select":
                j = self.rng.choice([j for j in range(control["n"]) if j != control["index"]])
                rec["action"] = f"option {j} (was {control['index']})"
                t0 = await page.evaluate(ARM_JS)
                await target.select_option(index=j)
            else:
                rec["action"] = "click"
                t0 = await page.evaluate(ARM_JS)
                await target.click()
            try:
                await page.wait_for_function("() => window.__lt && window.__lt.first !== null",
                                             timeout=args.move_timeout * 1000, polling=50)
            except Exception:  # noqa: BLE001  (no plot changed in time)
                key = (self.slug, kind, label)
                self.dull[key] = self.dull.get(key, 0) + 1
                rec["no_change"] = True
                return rec
            self.dull.pop((self.slug, kind, label), None)
            deadline = time.perf_counter() + args.move_timeout
            while True:  # settled: 0.5 s without a further plot change
                now, first, last, _ = await page.evaluate(STATE_JS)
                if now - last >= 500 or time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.1)
            rec["first_ms"], rec["settled_ms"] = round(first - t0, 1), round(last - t0, 1)
        except Exception as exc:  # noqa: BLE001
            rec["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        finally:
            with contextlib.suppress(Exception):
                await page.evaluate("() => { if (window.__lt) window.__lt.armed = false; }")
            self.run.moves.append(rec)
        return rec

    async def walk(self, url: str, pages: list[str], deadline: float) -> None:
        """Open the pages in a random order, again and again, making a few moves on each, until `deadline`
        (perf_counter seconds)."""
        args = self.run.args
        order: list[str] = []
        while time.perf_counter() < deadline:
            if not order:
                order = pages[:]
                self.rng.shuffle(order)
            slug = order.pop()
            if not await self.goto(url, slug):
                continue
            moves = self.rng.randint(args.moves_min, args.moves_max)
            done = 0
            while done < moves and time.perf_counter() < deadline:
                try:
                    choices = await self.controls()
                except Exception as exc:  # noqa: BLE001
                    self._problem("session", f"cannot list controls: {type(exc).__name__}: {exc}"[:500])
                    break
                if not choices:
                    break
                weights = [WEIGHTS[c["kind"]] for c in choices]
                rec = await self.move(self.rng.choices(choices, weights)[0], timed=slug not in UNTIMED_PAGES)
                done += 1
                if rec.get("error") and "Target page" in rec["error"]:
                    self._problem("session", f"page gone: {rec['error']}")
                    return
                await asyncio.sleep(self.rng.uniform(args.think_min, args.think_max))


# --------------------------------------------------------------------------------------------------------
# phases

async def phase_warmup(run: Run, browser, url: str, pages: list[str]) -> None:
    run.set_phase("warmup")
    s = Session(run, browser, "warm", run.args.seed)
    await s.open()
    try:
        for slug in pages:
            await s.goto(url, slug)
    finally:
        await s.close()


async def phase_churn(run: Run, browser, url: str, opens: int, seconds: float, slug: str = "wavelets") -> None:
    """One visitor opens one page (Wavelets by default; default parameters, computed already) again and again: each
    open is a new server session and closes the previous one, so the server's memory against the opens
    says what a session costs once the caches are warm, and whether closed sessions are given back."""
    run.set_phase("churn")
    s = Session(run, browser, "churn", run.args.seed + 9)
    await s.open()
    deadline = time.perf_counter() + seconds
    try:
        for _ in range(opens):
            if time.perf_counter() > deadline:
                break
            await s.goto(url, slug)
    finally:
        await s.close()


async def phase_walk(run: Run, browser, url: str, pages: list[str], name: str, sessions: int, seconds: float):
    run.set_phase(name)
    deadline = time.perf_counter() + seconds
    stagger = min(10.0, seconds / 10) / max(1, sessions)

    async def one(i: int):
        await asyncio.sleep(i * stagger)
        s = Session(run, browser, f"{name}{i}", run.args.seed * 1000 + i)
        await s.open()
        try:
            await s.walk(url, pages, deadline)
        finally:
            await s.close()

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(sessions))), seconds + 3 * run.args.open_timeout)


async def phase_contention(run: Run, browser, url: str, env: dict, processes: Processes, tmp: Path) -> None:
    """Session B moves the Wavelets θ slider alone, then while session A reconstructs and a job trains."""
    args = run.args
    run.set_phase("contention-idle")
    a = Session(run, browser, "recon", args.seed + 7)
    b = Session(run, browser, "probe", args.seed + 8)
    await a.open()
    await b.open()
    notes = run.notes.setdefault("contention", {"reconstructions_started": 0, "reconstructions_done": 0})
    try:
        if not await b.goto(url, "wavelets"):
            notes["error"] = "the Wavelets page did not open"
            return
        await a.goto(url, "reconstruction")
        theta = [c for c in await b.controls() if c["kind"] == "slider" and c["label"].startswith("θ index")]
        if not theta:
            notes["error"] = "no θ slider on the Wavelets page"
            return

        async def probe(until: float):
            while time.perf_counter() < until:
                rec = await b.move(theta[0])
                rec["training"] = processes.train is not None and processes.train.poll() is None
                rec["reconstructing"] = a.page is not None and await reconstructing(a)
                await asyncio.sleep(b.rng.uniform(args.think_min, args.think_max))

        await probe(time.perf_counter() + args.contention_idle)

        run.set_phase("contention")
        train_log = tmp / "train.log"
        processes.train = start_training(env, train_log)
        notes["train_command"] = "explorer " + " ".join(TRAIN_CMD)
        t_train = time.perf_counter()
        until = time.perf_counter() + args.contention_duration

        async def reconstruct_again_and_again():
            button = a.page.get_by_role("button", name="Reconstruct")
            while time.perf_counter() < until:
                try:
                    if await button.is_enabled():
                        a.last_action = "click Reconstruct"
                        await button.click()
                        notes["reconstructions_started"] += 1
                        await asyncio.sleep(1.0)
                        while time.perf_counter() < until and not await button.is_enabled():
                            await asyncio.sleep(0.25)
                        if await button.is_enabled():
                            notes["reconstructions_done"] += 1
                    else:
                        await asyncio.sleep(0.25)
                except Exception as exc:  # noqa: BLE001
                    a._problem("session", f"reconstruction driver: {type(exc).__name__}: {exc}"[:500])
                    await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):  # stop the one still running
                stop = a.page.get_by_role("button", name="Stop")
                if await stop.is_enabled():
                    await stop.click()

        await asyncio.gather(probe(until), reconstruct_again_and_again())
        rc = processes.train.poll()
        notes["train_window_s"] = round(time.perf_counter() - t_train, 1)  # how long it ran beside the probe
        notes["train_finished"] = rc is not None
        notes["train_returncode"] = rc
        Processes.stop_group(processes.train, 5.0)
        notes["train_log_tail"] = train_log.read_text(errors="replace")[-1500:]
        if rc not in (None, 0):
            run.problem("train", "job", None, f"the training job exited with {rc}: {notes['train_log_tail'][-500:]}")
    finally:
        await a.close()
        await b.close()


async def reconstructing(session: Session) -> bool:
    try:
        return not await session.page.get_by_role("button", name="Reconstruct").is_enabled(timeout=1000)
    except Exception:  # noqa: BLE001
        return False


# --------------------------------------------------------------------------------------------------------
# the report

def latency_stats(moves: list[dict], key: str = "first_ms") -> dict:
    vals = [m[key] for m in moves if m.get(key) is not None]
    return {"n": len(vals), "p50": percentile(vals, 50), "p95": percentile(vals, 95),
            "max": max(vals) if vals else float("nan")}


def timed_moves(run: Run, phase: str, kinds=("slider",), extra=None) -> list[dict]:
    return [m for m in run.moves if m["phase"] == phase and m["timed"] and m["kind"] in kinds
            and (extra is None or extra(m))]


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")


def report_latency(run: Run) -> dict:
    out: dict = {}
    print("\nSlider moves, key press → first plot change / settled (ms; timed pages only):")
    print(f"{'phase':<17} {'sessions':>8} {'opens':>6} {'open p50/p95 (s)':>17} {'moves':>6} {'first p50':>10} "
          f"{'p95':>7} {'settled p50':>12} {'p95':>7} {'no change':>10} {'other ctl p50':>14}")
    for phase, sessions in (("baseline", 1), ("load", run.args.sessions)):
        moves = timed_moves(run, phase)
        others = timed_moves(run, phase, kinds=("select", "radio", "tab", "row"))
        opens = [o for o in run.opens if o["phase"] == phase]
        first, settled = latency_stats(moves), latency_stats(moves, "settled_ms")
        open_s = [o.get("first_canvas_s", o.get("document_s")) for o in opens if o["ok"]]
        no_change = sum(1 for m in moves if m.get("no_change"))
        oth = latency_stats(others)
        out[phase] = {"sessions": sessions, "page_opens": len(opens), "open_p50_s": percentile(open_s, 50),
                      "open_p95_s": percentile(open_s, 95), "slider_first": first, "slider_settled": settled,
                      "slider_no_change": no_change, "other_controls_first": oth}
        print(f"{phase:<17} {sessions:>8} {len(opens):>6} {fmt(percentile(open_s, 50), 2):>8}/"
              f"{fmt(percentile(open_s, 95), 2):<8} {first['n']:>6} {fmt(first['p50']):>10} {fmt(first['p95']):>7} "
              f"{fmt(settled['p50']):>12} {fmt(settled['p95']):>7} {no_change:>10} {fmt(oth['p50']):>14}")
    base, load = out["baseline"], out["load"]
    out["ratio_p50"] = ratio(load["slider_first"]["p50"], base["slider_first"]["p50"])
    out["ratio_p95"] = ratio(load["slider_first"]["p95"], base["slider_first"]["p95"])
    out["ratio_open_p50"] = ratio(load["open_p50_s"], base["open_p50_s"])
    # The two phases visit different mixes of pages (the baseline is shorter): compare on common pages too.
    common = {m["page"] for m in timed_moves(run, "baseline")} & {m["page"] for m in timed_moves(run, "load")}
    b_c = latency_stats([m for m in timed_moves(run, "baseline") if m["page"] in common])
    l_c = latency_stats([m for m in timed_moves(run, "load") if m["page"] in common])
    out["common_pages"] = sorted(common)
    out["common_baseline"], out["common_load"] = b_c, l_c
    out["common_ratio_p50"], out["common_ratio_p95"] = ratio(l_c["p50"], b_c["p50"]), ratio(l_c["p95"], b_c["p95"])
    print(f"N = {run.args.sessions} ÷ 1 session: slider p50 ×{fmt(out['ratio_p50'], 2)}, p95 "
          f"×{fmt(out['ratio_p95'], 2)}; settled p50 "
          f"×{fmt(ratio(load['slider_settled']['p50'], base['slider_settled']['p50']), 2)}; page open p50 "
          f"×{fmt(out['ratio_open_p50'], 2)}")
    print(f"  on the pages both phases timed ({', '.join(sorted(common)) or 'none'}): p50 {fmt(b_c['p50'])} → "
          f"{fmt(l_c['p50'])} ms (×{fmt(out['common_ratio_p50'], 2)}), p95 {fmt(b_c['p95'])} → {fmt(l_c['p95'])} ms "
          f"(×{fmt(out['common_ratio_p95'], 2)}), n = {b_c['n']} / {l_c['n']}")
    # The browsers run on the server's machine: say how much of it they took.
    samples = run.sampler.samples if run.sampler else []
    for phase in ("baseline", "load"):
        cpu = [(x["server_cpu_percent"], x["driver_cpu_percent"]) for x in samples if x["phase"] == phase]
        if cpu:
            out[phase]["server_cpu_percent"] = statistics.fmean(c[0] for c in cpu)
            out[phase]["browser_cpu_percent"] = statistics.fmean(c[1] for c in cpu)
    capacity = 100 * (os.cpu_count() or 1)
    browsers = out["load"].get("browser_cpu_percent", 0.0)
    print(f"CPU during the load (mean, % of one core; {capacity} % in all): server "
          f"{fmt(out['load'].get('server_cpu_percent'))}, browsers and driver {fmt(browsers)}"
          + (" — NOTE: the browsers took over half of this machine, so these latencies say how the server "
             "fares beside them on shared cores; compare ratios measured on the same machine" if browsers > capacity / 2
             else ""))
    # per page, slider first-change p50 (ms) in each phase
    pages = sorted({m["page"] for m in run.moves if m["phase"] in ("baseline", "load") and m["timed"]})
    cells = []
    for slug in pages:
        b = latency_stats([m for m in timed_moves(run, "baseline") if m["page"] == slug])
        n = latency_stats([m for m in timed_moves(run, "load") if m["page"] == slug])
        cells.append(f"{slug} {fmt(b['p50'])}/{fmt(n['p50'])} (n={b['n']}/{n['n']})")
    if cells:
        print("per page, slider p50 1 session / N sessions (ms): " + "; ".join(cells))
    return out


def report_contention(run: Run) -> dict:
    notes = run.notes.get("contention", {})
    idle = timed_moves(run, "contention-idle")
    loaded = timed_moves(run, "contention")
    both = [m for m in loaded if m.get("training") and m.get("reconstructing")]
    s_idle, s_loaded, s_both = latency_stats(idle), latency_stats(loaded), latency_stats(both)
    out = {"idle": s_idle, "contention": s_loaded, "training_and_reconstructing": s_both, **notes}
    out.pop("train_log_tail", None)
    out["ratio_p50"] = ratio(s_loaded["p50"], s_idle["p50"])
    out["ratio_p95"] = ratio(s_loaded["p95"], s_idle["p95"])
    print("\nContention: Wavelets θ slider of another session (ms, key press → first plot change):")
    if "error" in notes or "train_command" not in notes:
        print(f"  not measured: {notes.get('error', 'the phase did not run to its end')}")
        return out
    print(f"  idle                                  n={s_idle['n']:<3} p50 {fmt(s_idle['p50']):>6}  "
          f"p95 {fmt(s_idle['p95']):>6}  max {fmt(s_idle['max']):>6}")
    print(f"  reconstruction + training window      n={s_loaded['n']:<3} p50 {fmt(s_loaded['p50']):>6}  "
          f"p95 {fmt(s_loaded['p95']):>6}  max {fmt(s_loaded['max']):>6}")
    print(f"    of which both running at once       n={s_both['n']:<3} p50 {fmt(s_both['p50']):>6}  "
          f"p95 {fmt(s_both['p95']):>6}")
    print(f"  ratio contention ÷ idle: p50 ×{fmt(out['ratio_p50'], 2)}, p95 ×{fmt(out['ratio_p95'], 2)} "
          f"(reconstructions started {notes.get('reconstructions_started', 0)}, finished "
          f"{notes.get('reconstructions_done', 0)}; `{notes.get('train_command', '')}` "
          f"{'finished' if notes.get('train_finished') else 'still running, stopped'} in the window)")
    return out


def report_memory(run: Run) -> dict:
    samples = run.sampler.samples if run.sampler else []
    out: dict = {"samples": len(samples)}
    if not samples:
        print("\nMemory: no samples")
        return out
    args = run.args
    print("\nServer memory (RSS of panel serve and its children), one row per ~10 s:")
    print(f"{'t (s)':>7} {'phase':<16} {'RSS MB':>8} {'sessions open':>14} {'pages opened':>13} {'server CPU %':>13} "
          f"{'browser+driver CPU %':>21}")
    last_row_t, window = -1e9, []  # a row: the last sample of ~10 s, CPU averaged over them
    for i, s in enumerate(samples):
        window.append(s)
        nxt = samples[i + 1] if i + 1 < len(samples) else None
        if s["t"] - last_row_t >= 10 or nxt is None or nxt["phase"] != s["phase"]:
            cpu_server = statistics.fmean(w["server_cpu_percent"] for w in window)
            cpu_driver = statistics.fmean(w["driver_cpu_percent"] for w in window)
            print(f"{s['t']:>7.0f} {s['phase']:<16} {s['rss_mb']:>8.0f} {s['sessions_open']:>14} "
                  f"{s['pages_opened']:>13} {cpu_server:>13.0f} {cpu_driver:>21.0f}")
            last_row_t, window = s["t"], []
    load = [s for s in samples if s["phase"] == "load"]
    after = [s for s in samples if s["phase"] == "after"]
    peak = max(s["rss_mb"] for s in samples)
    out.update(peak_mb=peak, start_mb=samples[0]["rss_mb"])
    if load:
        mid = (load[0]["t"] + load[-1]["t"]) / 2
        halves = [[s for s in load if s["t"] <= mid], [s for s in load if s["t"] >= mid]]
        for name, half in zip(("first", "second"), halves):
            opened = half[-1]["pages_opened"] - half[0]["pages_opened"]
            grown = half[-1]["rss_mb"] - half[0]["rss_mb"]
            out[f"load_{name}_half"] = {"growth_mb": grown, "pages_opened": opened,
                                        "mb_per_page_open": grown / opened if opened else float("nan"),
                                        "slope_mb_per_min": slope_per_min([(s["t"], s["rss_mb"]) for s in half])}
        out.update(load_start_mb=load[0]["rss_mb"], load_end_mb=load[-1]["rss_mb"],
                   load_peak_mb=max(s["rss_mb"] for s in load),
                   load_mb_per_page_open=(load[-1]["rss_mb"] - load[0]["rss_mb"])
                   / max(1, load[-1]["pages_opened"] - load[0]["pages_opened"]))
    if after:
        half = [s for s in after if s["t"] >= after[-1]["t"] - (after[-1]["t"] - after[0]["t"]) / 2]
        out.update(after_end_mb=after[-1]["rss_mb"],
                   after_last_half_slope_mb_per_min=slope_per_min([(s["t"], s["rss_mb"]) for s in half]))
    churn = [s for s in samples if s["phase"] == "churn"]
    if churn:
        # Bokeh destroys a closed session after 15 s, checked every 17 s: from 33 s after the first close on,
        # the sessions not yet destroyed are as many as they will be, so memory still rising with the opens is kept.
        opens_t = sorted(o["t"] for o in run.opens if o["phase"] == "churn")
        first_close = opens_t[1] if len(opens_t) > 1 else float("inf")  # the first session closes at the 2nd open
        steady = [s for s in churn if s["t"] >= first_close + CHURN_SETTLE_S]
        opens = steady[-1]["pages_opened"] - steady[0]["pages_opened"] if steady else 0
        out["churn"] = {"opens": churn[-1]["pages_opened"] - churn[0]["pages_opened"], "start_mb": churn[0]["rss_mb"],
                        "end_mb": churn[-1]["rss_mb"], "steady_opens": opens,
                        "steady_mb_per_open": slope([(s["pages_opened"], s["rss_mb"]) for s in steady])
                        if opens >= CHURN_MIN_OPENS else float("nan")}
    # Levels off: flat once the sessions are gone, and a session opened and closed again and again (warm caches)
    # adds no memory once closed sessions are being destroyed.
    flat_after = out.get("after_last_half_slope_mb_per_min", float("nan")) <= args.flat_slope
    per_open = out.get("churn", {}).get("steady_mb_per_open", float("nan"))
    judged = not math.isnan(per_open)
    out["churn_judged"] = judged
    out["levels_off"] = bool(flat_after and (per_open <= args.per_open if judged else True))
    print(f"start {fmt(out['start_mb'])} MB, load {fmt(out.get('load_start_mb'))} → {fmt(out.get('load_end_mb'))} MB "
          f"(peak {fmt(peak)} MB, {fmt(out.get('load_mb_per_page_open'), 2)} MB per page opened over the load), "
          f"after close {fmt(out.get('after_end_mb'))} MB")
    if churn:
        c = out["churn"]
        print(f"churn (the {args.churn_page} page opened {c['opens']} times by one visitor, caches warm): "
              f"{fmt(c['start_mb'])} → "
              f"{fmt(c['end_mb'])} MB; from {CHURN_SETTLE_S} s after the first close: {fmt(per_open, 2)} MB per open over "
              f"{c['steady_opens']} opens (least squares)"
              + ("" if judged else f"; not judged: fewer than {CHURN_MIN_OPENS} opens then "
                                   "(a busy machine; raise --churn-duration)"))
    for name in ("first", "second"):
        h = out.get(f"load_{name}_half")
        if h:
            print(f"{name} half of the load: {h['growth_mb']:+.1f} MB over {h['pages_opened']} pages opened "
                  f"({fmt(h['mb_per_page_open'], 2)} MB each), slope {fmt(h['slope_mb_per_min'], 1)} MB/min")
    steps = rss_steps(run, samples)
    out["largest_steps"] = steps
    if steps:
        print("largest one-second rises, with the opens and moves under way (or answered ≤ 5 s before):")
        for st in steps:
            print(f"  +{st['mb']:.0f} MB at t={st['t']:.0f} s ({st['phase']}): {'; '.join(st['actions']) or '–'}")
    print(f"after close: {fmt(out.get('after_end_mb'))} MB at the end "
          f"({fmt(ratio(out.get('after_end_mb', float('nan')), peak) * 100)} % of the peak), slope over its last half "
          f"{fmt(out.get('after_last_half_slope_mb_per_min'), 1)} MB/min.")
    print(f"Levels off (after close ≤ {args.flat_slope:g} MB/min and churn ≤ {args.per_open:g} MB per open"
          f"{'' if judged else ', not judged'}): "
          f"{'yes' if out['levels_off'] else 'NO'}")
    return out


def rss_steps(run: Run, samples: list[dict], count: int = 5, least: float = 20.0) -> list[dict]:
    """The `count` largest rises of RSS between two samples (at least `least` MB), each with the page opens and
    moves under way then or answered up to 5 s before."""
    rises = sorted(((b["rss_mb"] - a["rss_mb"], a, b) for a, b in itertools.pairwise(samples)), key=lambda r: -r[0])
    out = []
    for mb, a, b in rises[:count]:
        if mb < least:
            break
        def busy(start: float, ms, a=a, b=b) -> bool:  # began before the rise, answered up to 5 s before it or later
            end = start + (ms if ms is not None else run.args.move_timeout * 1000) / 1000
            return start <= b["t"] and end >= a["t"] - 5

        acts = [f"{o['session']} opened {o['page']}" for o in run.opens
                if busy(o["t"], 1000 * o.get("idle_s", run.args.open_timeout))]
        acts += [f"{m['session']} {m['kind']} {m['control'][:30]!r} on {m['page']}" for m in run.moves
                 if busy(m["t"], m.get("settled_ms"))]
        out.append({"t": b["t"], "phase": b["phase"], "mb": mb, "actions": acts[:6]})
    return out


def report_problems(run: Run, log_problems: list[str], benign: int) -> dict:
    by_kind: dict[str, list] = {}
    for p in run.problems:
        by_kind.setdefault(p["kind"], []).append(p)
    moves_without_answer = [m for m in run.moves if m.get("no_change") and m["timed"] and m["kind"] == "slider"]
    errors_in_moves = [m for m in run.moves if m.get("error")]
    print("\nProblems seen (all phases):")
    if not run.problems and not log_problems and not errors_in_moves:
        print("  none")
    for kind, items in sorted(by_kind.items()):
        print(f"  {kind}: {len(items)}")
        seen = set()
        for p in items:
            key = (p["page"], p["text"][:120])
            if key in seen:
                continue
            seen.add(key)
            print(f"    [{p['phase']} {p['session']} t={p['t']:.0f}s page={p['page']} after {p.get('action')!r}] "
                  f"{p['text'][:300]}")
            if len(seen) >= 8:
                print(f"    … ({len(items) - 8} more in the JSON)" if len(items) > 8 else "")
                break
    if errors_in_moves:
        print(f"  moves that failed in the browser driver: {len(errors_in_moves)}")
        for m in errors_in_moves[:5]:
            print(f"    [{m['phase']} {m['session']} {m['page']} {m['kind']} {m['control']!r}] {m['error'][:200]}")
    if log_problems:
        print(f"  server log: {len(log_problems)} error lines")
        for line in sorted(set(log_problems))[:10]:
            print(f"    {line[:300]}")
    if benign:
        print(f"  server log: {benign} tracebacks of a write to a websocket the browser had closed (a page left "
              f"while its update was on the way; Tornado's noise, not counted)")
    no_plot: dict[tuple, int] = {}
    for m in run.moves:
        if m.get("no_change"):
            key = (m["page"], m["kind"], m["control"][:40])
            no_plot[key] = no_plot.get(key, 0) + 1
    print(f"  slider moves on timed pages with no plot change within {run.args.move_timeout:g} s: "
          f"{len(moves_without_answer)} (a control that drives no plot, or a session not answered)")
    if no_plot:
        print("  moves with no plot change, by control: " + "; ".join(
            f"{page} {kind} {control!r} ×{n}" for (page, kind, control), n in sorted(no_plot.items())))
    counts = {k: len(v) for k, v in by_kind.items()}
    return {"counts": counts, "server_log": log_problems[:200], "server_log_benign_tracebacks": benign,
            "slider_moves_no_change": len(moves_without_answer),
            "no_change_by_control": [{"page": k[0], "kind": k[1], "control": k[2], "moves": n}
                                     for k, n in sorted(no_plot.items())],
            "driver_errors": len(errors_in_moves)}


def verdicts(run: Run, problems: dict, memory: dict) -> list[tuple[str, bool, str]]:
    c = problems["counts"]
    console = c.get("console", 0) + c.get("pageerror", 0)
    failed = c.get("requestfailed", 0) + c.get("http", 0) + c.get("websocket", 0)
    dead = c.get("crash", 0) + c.get("open-timeout", 0) + c.get("session", 0)
    return [
        ("no console error", console == 0, f"{console} console/page errors"),
        ("no failed request", failed == 0, (f"{c.get('requestfailed', 0)} failed, {c.get('http', 0)} HTTP ≥ 400, "
                                            f"{c.get('websocket', 0)} websocket errors")),
        ("memory levels off", bool(memory.get("levels_off")),
         (f"after close {fmt(memory.get('after_last_half_slope_mb_per_min'), 1)} MB/min, churn "
          f"{fmt(memory.get('churn', {}).get('steady_mb_per_open', float('nan')), 2)} MB per open"
          f"{'' if memory.get('churn_judged') else ' (not judged)'}, "
          f"peak {fmt(memory.get('peak_mb'))} MB")),
        ("every session answered", dead == 0, (f"{c.get('open-timeout', 0)} pages not opened, {c.get('crash', 0)} "
                                               f"crashes, {c.get('session', 0)} sessions lost; server log: "
                                               f"{len(problems['server_log'])} error lines")),
    ]


# --------------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--sessions", type=int, default=10, help=f"browser sessions at once (1–{MAX_SESSIONS}; default 10)")
    parser.add_argument("--duration", type=float, default=120, help="seconds of the N-session load (default 120)")
    parser.add_argument("--baseline-duration", type=float, default=30, help="seconds of the 1-session phase (default 30)")
    parser.add_argument("--after", type=float, default=60, help="seconds of memory sampling after the sessions close "
                                                                "(default 60)")
    parser.add_argument("--contention", action=argparse.BooleanOptionalAction, default=True,
                        help="measure another session's latency while a reconstruction and a training job run")
    parser.add_argument("--contention-idle", type=float, default=10, help="seconds of the idle reference (default 10)")
    parser.add_argument("--contention-duration", type=float, default=30,
                        help="seconds of reconstruction + training (default 30)")
    parser.add_argument("--churn", type=int, default=40,
                        help="opens of the Wavelets page by one visitor before the baseline, for the memory a "
                             "session costs (default at most 40; 0: none)")
    parser.add_argument("--churn-page", default="wavelets", help="the page the churn opens (default wavelets)")
    parser.add_argument("--churn-duration", type=float, default=65,
                        help=f"at most this many seconds of it (default 65; judged from {CHURN_SETTLE_S} s after the "
                             "first session closed)")
    parser.add_argument("--pages", nargs="+", default=None, help="page slugs to walk (default: every page)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--moves-min", type=int, default=3, help="moves per page visit, at least (default 3)")
    parser.add_argument("--moves-max", type=int, default=6, help="moves per page visit, at most (default 6)")
    parser.add_argument("--think-min", type=float, default=0.5, help="pause between moves, s (default 0.5–1.5)")
    parser.add_argument("--think-max", type=float, default=1.5)
    parser.add_argument("--move-timeout", type=float, default=15, help="seconds a move waits for a plot (default 15)")
    parser.add_argument("--open-timeout", type=float, default=60, help="seconds a page may take to open (default 60)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip opening every page once first")
    parser.add_argument("--copy-store", action="store_true",
                        help="copy the runs of your EXPLORER_STORE (checkpoints excepted) into the temporary store")
    parser.add_argument("--flat-slope", type=float, default=3.0,
                        help="memory levels off: slope over the last half after close ≤ this, MB/min (default 3)")
    parser.add_argument("--per-open", type=float, default=1.0,
                        help="…and in the churn's steady part ≤ this, MB per page opened (default 1)")
    parser.add_argument("--deadline", type=float, default=None,
                        help="hard limit on the whole run, s (default: the phases' durations + 240 s)")
    parser.add_argument("--json", default=None, help="write everything recorded to this JSON file")
    parser.add_argument("--keep-store", action="store_true", help="keep the temporary store and logs (path printed)")
    parser.add_argument("--strict", action="store_true", help="exit with 1 when a verdict fails")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be between 1 and {MAX_SESSIONS}")
    for name in ("duration", "baseline_duration", "after", "contention_idle", "contention_duration", "churn_duration"):
        if not 0 <= getattr(args, name) <= 3600:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 3600 s")
    if not 1 <= args.moves_min <= args.moves_max:
        parser.error("need 1 ≤ --moves-min ≤ --moves-max")
    if not 0 <= args.think_min <= args.think_max:
        parser.error("need 0 ≤ --think-min ≤ --think-max")
    if args.deadline is None:
        args.deadline = (args.duration + args.baseline_duration + args.after + 240 + args.churn_duration
                         + (args.contention_idle + args.contention_duration if args.contention else 0))
    return args


async def run_phases(run: Run, url: str, env: dict, processes: Processes, tmp: Path, pages: list[str]) -> None:
    from playwright.async_api import async_playwright

    args = run.args
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            if args.warmup:
                await phase_warmup(run, browser, url, pages)
            if args.churn:
                await phase_churn(run, browser, url, args.churn, args.churn_duration, args.churn_page)
            if args.baseline_duration > 0:
                await phase_walk(run, browser, url, pages, "baseline", 1, args.baseline_duration)
            if args.contention:
                await asyncio.wait_for(phase_contention(run, browser, url, env, processes, tmp),
                                       args.contention_idle + args.contention_duration + 3 * args.open_timeout)
            await phase_walk(run, browser, url, pages, "load", args.sessions, args.duration)
        finally:
            await browser.close()
    run.set_phase("after")
    await asyncio.sleep(args.after)


def main(argv=None) -> int:
    args = parse_args(argv)
    from explorer.pages import PAGES

    pages = args.pages or [spec.slug for spec in PAGES]
    unknown = ({*pages, args.churn_page}) - {spec.slug for spec in PAGES}
    if unknown:
        print(f"unknown pages: {sorted(unknown)}", file=sys.stderr)
        return 2
    run = Run(args)
    processes = Processes()
    tmp = run.tmp = Path(tempfile.mkdtemp(prefix="explorer-load-"))
    store = processes.store = tmp / "store"
    store.mkdir()
    if args.copy_store:
        from explorer.config import store_dir

        source = store_dir(create=False) / "runs"
        if source.is_dir():
            shutil.copytree(source, store / "runs", ignore=shutil.ignore_patterns("checkpoint.safetensors", "*.lock"))
    env = {**os.environ, "EXPLORER_STORE": str(store)}  # EXPLORER_DATA passes through when set
    watchdog = start_watchdog(args.deadline, processes, run)

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    log_path = tmp / "server.log"
    print(f"load test: {args.sessions} sessions × {args.duration:g} s (1 session × {args.baseline_duration:g} s "
          f"first), memory {args.after:g} s after, contention {'on' if args.contention else 'off'}; pages "
          f"{', '.join(pages)}; EXPLORER_DATA {'set' if os.environ.get('EXPLORER_DATA') else 'unset'}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; hard deadline {args.deadline:.0f} s")
    interrupted = False
    try:
        port = free_port()
        t = time.perf_counter()
        processes.server = start_server(port, env, log_path)
        print(f"server on 127.0.0.1:{port} answered /liveness after {time.perf_counter() - t:.1f} s "
              f"(store {store})", flush=True)
        run.sampler = MemorySampler(processes.server.pid, run,
                                    exclude=lambda: [processes.train.pid] if processes.train is not None else [])
        run.sampler.start()
        asyncio.run(run_phases(run, f"http://127.0.0.1:{port}/app", env, processes, tmp, pages))
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping", flush=True)
    finally:
        run.set_phase("end")
        if run.sampler is not None:
            run.sampler.stop()
        processes.stop_all()
        watchdog.cancel()
    load_avg = os.getloadavg()[0]
    latency = report_latency(run)
    contention = report_contention(run) if args.contention else {}
    memory = report_memory(run)
    problems = report_problems(run, *server_log_problems(log_path))
    results = verdicts(run, problems, memory)
    print(f"\nload average at the end {load_avg:.2f} ({os.cpu_count()} CPUs); wall time {run.elapsed():.0f} s")
    print("Verdicts:" + (" (INTERRUPTED: on what was recorded until then)" if interrupted else ""))
    for name, ok, detail in results:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")
    run.write_json(partial=interrupted, extra={
        "latency": latency, "contention": contention, "memory_summary": memory, "problem_summary": problems,
        "verdicts": [{"criterion": n, "pass": ok, "detail": d} for n, ok, d in results],
        "load_average_end": load_avg, "cpus": os.cpu_count()})
    if args.json:
        print(f"JSON written to {args.json}")
    if args.keep_store:
        print(f"store and logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if interrupted:
        return 130
    return 1 if args.strict and not all(ok for _, ok, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
