"""Running a coroutine as a page's button would, in a thread and event loop of its own: after a browser test in
the same pytest worker, Playwright's sync API keeps an event loop running in the main thread, and asyncio.run
refuses to start there."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor


def run_in_own_loop(coroutine, timeout: float = 120.0):
    """`asyncio.run(coroutine)` in another thread: its result, or its exception raised here."""
    with ThreadPoolExecutor(1, thread_name_prefix="own-loop") as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout)
