"""pages.base: work off the event loop (`in_worker`), the Compute box's progress (`ComputeBox.follow`), what a
failure says (`failure_text`, `Page.guarded`)."""
import asyncio
import threading

import pytest

from explorer.pages.base import ComputeBox, failure_text, in_worker

from own_loop import run_in_own_loop


def test_in_worker_runs_the_function_in_another_thread_and_polls_meanwhile():
    caller = threading.get_ident()
    release, polls = threading.Event(), []

    def work(a, b=0):
        assert threading.get_ident() != caller
        release.wait(5)
        return a + b

    def poll():
        polls.append(1)
        if len(polls) == 2:
            release.set()  # the loop went on while the work waited: it polled twice

    assert run_in_own_loop(in_worker(work, 2, b=3, poll=poll)) == 5
    assert len(polls) >= 2


def test_in_worker_raises_the_functions_exception():
    def work():
        raise ValueError("no dataset: set EXPLORER_DATA")

    with pytest.raises(ValueError, match="EXPLORER_DATA"):
        run_in_own_loop(in_worker(work))


def test_follow_shows_the_reported_fraction_within_its_share():
    box = ComputeBox("Compute", lambda *_: None)
    release, seen = threading.Event(), []

    def job(report):
        report("features", 0.5)
        release.wait(5)
        return "done"

    async def main():
        box.started()
        task = asyncio.ensure_future(box.follow(job, "Computing **run**", start=0.5, share=0.5))
        for _ in range(100):  # the first poll may come before the report: wait for the report's
            if box.progress.value == 750:
                break
            await asyncio.sleep(0.05)
        seen.append((box.progress.value, box.progress_text.object))
        release.set()
        result = await task
        box.finished()
        return result

    assert run_in_own_loop(main()) == "done"
    assert seen == [(750, "Computing **run**: features, 75 %")]
    assert box.button.disabled and not box.progress.visible and box.progress_text.object == ""


def test_failure_text_prints_only_unexpected_errors(capsys):
    assert failure_text(OSError("disk full")) == "disk full"
    assert capsys.readouterr().err == ""
    try:
        raise KeyError("bug")
    except KeyError as exc:
        assert failure_text(exc) == "Unexpected error: KeyError('bug')"
    assert "KeyError" in capsys.readouterr().err


def test_attempt_gives_the_result_or_what_to_say(capsys):
    from explorer.pages.base import attempt

    assert attempt(lambda: 42) == (42, None)
    assert attempt(lambda: {}["J"]) == (None, "Unexpected error: KeyError('J')")
    assert "KeyError: 'J'" in capsys.readouterr().err


def test_guarded_says_the_error_and_keeps_the_last_frame(capsys):
    from holoviews.core.options import SkipRendering

    from explorer.pages.base import Page

    page = Page()

    def view(kind):
        raise kind

    with pytest.raises(SkipRendering):
        page.guarded(view, ValueError("J must be at most 5"))
    assert page.alert.visible and page.alert.object.startswith("J must be at most 5")
    with pytest.raises(SkipRendering):
        page.guarded(view, TypeError("unit must be a whole number"))  # a widget's value of the wrong kind
    assert page.alert.object.startswith("unit must be a whole number")
    assert capsys.readouterr().err == ""
    with pytest.raises(SkipRendering, match="Unexpected error: KeyError"):
        page.guarded(view, KeyError("bug"))
    assert page.alert.object.startswith("Unexpected error: KeyError('bug')")
    assert "KeyError: 'bug'" in capsys.readouterr().err
    assert page.guarded(lambda: "drawn") == "drawn"
