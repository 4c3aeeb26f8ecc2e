"""Running a coroutine as a page's button would, in a thread and event loop of its own: after a browser test in
the same pytest worker, Playwright's sync API keeps an event loop running in the main thread, and asyncio.run
refuses to start there."""
from __future__ import annotations

import asyncio
import threading


def run_in_own_loop(coroutine, timeout: float = 120.0):
    """`asyncio.run(coroutine)` in another thread: its result, or its exception raised here. A coroutine still
    running after `timeout` seconds fails the test (its daemon thread is left behind, never waited for)."""
    outcome: dict = {}

    def target():
        try:
            outcome["result"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001  (raised again in the test's thread)
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="own-loop", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the coroutine was still running after {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")
