"""The SLE Thresholding page built without a browser: titles say "W₁", the curves are the stored sweep's
numbers with the current point read off them, the live re-evaluation equals `threshold_accuracy`, a newer
setting supersedes a running job, bad inputs give messages, and the no-dataset path says so."""
from __future__ import annotations

import shutil
import threading

import numpy as np
import panel as pn
import pytest
from bokeh.models import GlyphRenderer, Line, Plot, Quad, Scatter

from explorer.analysis import cache
from explorer.analysis import threshold as th
from explorer.analysis import threshold_live as live
from explorer.app import build_app
from explorer.config import STORE_ENV
from explorer.pages.thresholding import ThresholdingPage
from explorer.runs import RunStore
from explorer.training import make_config, train

from bokeh_root import render

TINY_SLE = dict(widths=[8], L=4, dataset="synthetic", epochs=2, limit_train=64, limit_test=64, batch_size=16)


def clear_caches():
    live._SWEEPS.clear()
    live._NO_SWEEP.clear()
    live._BEFORE.clear()
    for cached in (live.thresholded_layer, live.base_model, live._test_split, live._estimate_split,
                   cache.cached_first_layer):
        cached.cache_clear()


@pytest.fixture(autouse=True)
def _reset_state():
    clear_caches()
    yield
    pn.state.reset()
    clear_caches()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A store with a tiny SLE trained on the synthetic set and its default-parameters sweep stored."""
    root = tmp_path_factory.mktemp("thresholding-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(STORE_ENV, str(root))
        store = RunStore()
        run = train(make_config("sle", **TINY_SLE), store=store, progress=False)
        sweep = th.sweep(run.id, store=store, progress=False, device="cpu")
    return root, run, sweep


@pytest.fixture
def figures_only(monkeypatch):
    """Builds the page without live re-evaluation (its figures alone; the template shows the page, which
    would start a job, as it is built)."""
    monkeypatch.setattr(ThresholdingPage, "live_enabled", False)
    return lambda: build_app("thresholding").page


@pytest.fixture
def tiny_page(tiny, monkeypatch, figures_only):
    """The page on the tiny run, figures only: a test of the live re-evaluation turns it on
    (`with_live`) and waits for its jobs before it reads or changes anything."""
    root, run, sweep = tiny
    monkeypatch.setenv(STORE_ENV, str(root))
    page = figures_only()
    page.run = run.id
    return page, render(page), run, sweep


def with_live(page, **setting):
    page.live_enabled = True
    page.param.update(**setting)
    page.request_live()
    page.wait_live()


def plots(root) -> dict[str, Plot]:
    return {p.title.text: p for p in root.select({"type": Plot}) if p.title is not None and p.title.text}


def one(root, start: str) -> Plot:
    hits = [p for title, p in plots(root).items() if title.startswith(start)]
    assert len(hits) == 1, (start, list(plots(root)))
    return hits[0]


def curves_plot(root) -> Plot:
    return one(root, "Accuracy against f")


def points(root, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(f, accuracy %) of the curves plot's points of one kind ("now, read off the sweep", "now, live",
    "band limit (sweep)"), read from the Bokeh data source."""
    rows = []
    for renderer in curves_plot(root).select({"type": GlyphRenderer}):
        data = renderer.data_source.data
        if isinstance(renderer.glyph, Scatter) and list(data.get("th_kind", [])) == [kind]:
            rows.append((np.asarray(data["th_keep"], float), np.asarray(data["th_accuracy"], float)))
    assert len(rows) == 1  # one layer per kind, one row, NaN when there is no such point (not drawn)
    x, y = rows[0]
    return (x, y) if np.isfinite(x).all() else (np.zeros(0), np.zeros(0))


def red_marker(root) -> tuple[np.ndarray, np.ndarray]:
    """The current point read off the sweep (drawn red)."""
    return points(root, "now, read off the sweep")


# -- the shipped run ----------------------------------------------------------------------------------------

def test_titles_say_w1_and_the_setting(figures_only):
    page = figures_only()
    root = render(page)
    assert page.run == "sle-695ad4593697" and not page.alert.visible, page.alert.object
    titles = list(plots(root))
    assert len(titles) == 4 and all("W₁" in t for t in titles), titles
    assert sum("Fourier, global, f = 0.20" in t for t in titles) == 3  # spectrum, weights, curves
    page.param.update(mode="theta_per_unit", keep=0.35)
    titles = list(plots(root))
    assert sum("θ domain, per unit, f = 0.35" in t for t in titles) == 3, titles
    page.mode = "band"
    assert sum("band |ω| ≤ 1" in t for t in plots(root)) == 3


def test_spectrum_bars_are_the_analysis_energies(figures_only):
    from explorer.analysis import spectra as sp

    page = figures_only()
    page.keep = 0.1
    root = render(page)
    plot = one(root, "Ω₁/ΣΩ₁ thresholded")
    bars = {}  # fill colour → (bar centres, heights)
    for renderer in plot.select({"type": GlyphRenderer}):
        glyph, data = renderer.glyph, renderer.data_source.data
        if isinstance(glyph, Quad):
            centres = (np.asarray(data[glyph.left], float) + np.asarray(data[glyph.right], float)) / 2
            bars[glyph.fill_color] = (centres, np.asarray(data[glyph.top], float))
    layer = cache.cached_first_layer(page.run, False)
    before, after = sp.omega1_energy(layer), sp.omega1_energy(sp.threshold_fourier(layer, 0.1))
    signed = np.arange(layer.L) - layer.L // 2
    for colour, energy, offset in (("#999999", before, -0.2), ("#d62728", after, 0.2)):
        centres, heights = bars[colour]
        np.testing.assert_allclose(centres, signed + offset)  # grey left of each ω, red right
        np.testing.assert_allclose(heights, np.fft.fftshift(energy) / before.sum(), rtol=1e-6)
    kept = after.sum() / before.sum()
    assert 0 < kept < 1 and f"keeps {kept:.1%}" in plot.title.text


# -- the stored sweep and the current point (tiny run) ------------------------------------------------------

def test_curves_are_the_stored_sweeps_numbers(tiny_page):
    page, root, run, sweep = tiny_page
    assert live.stored_sweep(run.id)["accuracy"] == sweep["accuracy"]
    lines = {}  # (colour, dashed) → (x, y): blue Fourier, orange θ; solid global, dashed per unit
    for renderer in curves_plot(root).select({"type": GlyphRenderer}):
        if isinstance(renderer.glyph, Line):
            data = renderer.data_source.data
            key = (renderer.glyph.line_color, bool(renderer.glyph.line_dash))
            lines[key] = (np.asarray(data[renderer.glyph.x], float), np.asarray(data[renderer.glyph.y], float))
    styles = {("#1f77b4", False): ("fourier", "global"), ("#1f77b4", True): ("fourier", "per_unit"),
              ("#ff7f0e", False): ("theta", "global"), ("#ff7f0e", True): ("theta", "per_unit")}
    assert lines.keys() == styles.keys()
    for key, (domain, mode) in styles.items():
        x, y = lines[key]
        np.testing.assert_allclose(x, sweep["fractions"])
        np.testing.assert_allclose(y, 100 * np.asarray(sweep["accuracy"][domain][mode]))
    assert not page.note.visible, page.note.object  # a sweep is stored: no note


@pytest.mark.parametrize("mode, keep", [("fourier_global", 0.2), ("fourier_global", 0.37),
                                        ("theta_per_unit", 0.83), ("fourier_per_unit", 1.0)])
def test_the_marker_sits_at_the_current_f_on_the_sweep(tiny_page, mode, keep):
    page, root, _, sweep = tiny_page
    page.param.update(mode=mode, keep=keep)
    domain, threshold_mode = live.MODES[mode]
    x, y = red_marker(root)
    expected = np.interp(keep, sweep["fractions"], sweep["accuracy"][domain][threshold_mode])
    assert x.tolist() == [keep] and y == pytest.approx([100 * expected])
    assert f"f = {keep:.2f} → {100 * expected:.2f} % (sweep)" in curves_plot(root).title.text


def test_band_mode_marks_the_band_point_and_f_below_the_sweep_has_no_marker(tiny_page):
    page, root, _, sweep = tiny_page
    page.mode = "band"
    x, y = red_marker(root)
    assert x.tolist() == [sweep["band_kept"] / sweep["total"]] and y == pytest.approx([100 * sweep["band_accuracy"]])
    page.band = 0  # the sweep has B = 1 only
    assert red_marker(root)[0].size == 0 and "not in the sweep" in curves_plot(root).title.text
    page.param.update(mode="fourier_global", keep=0.0)  # below the sweep's smallest fraction (0.05)
    assert red_marker(root)[0].size == 0 and not page.alert.visible


def test_the_live_result_is_threshold_accuracy(tiny_page):
    page, root, run, _ = tiny_page
    with_live(page, mode="theta_global", keep=0.4)
    assert page.jobs[-1]["outcome"] == "done"
    result = page.results["full"]
    expected = th.threshold_accuracy(run.id, 0.4, "global", "theta", device="cpu")
    assert result["accuracy_after"] == expected["accuracy_after"]
    assert result["accuracy_before"] == expected["accuracy_before"] == run.metrics[-1]["test_acc"]
    assert (result["kept"], result["total"], result["images"]) == (expected["kept"], expected["total"], 64)
    assert f"**{100 * expected['accuracy_after']:.2f} %**" in page.live_text.object
    assert "computing" not in page.live_text.object and not page.progress.visible
    x, y = points(root, "now, live")  # on the sweep's test set (the 64 images): drawn beside the curves
    assert x.tolist() == [0.4] and y == pytest.approx([100 * expected["accuracy_after"]])


def test_a_failed_live_evaluation_is_said_and_the_next_one_works(tiny_page, monkeypatch, capsys):
    page, _, run, _ = tiny_page
    real = live.evaluate_request

    def fails(run_id, keep, *args, **kwargs):
        if keep == 0.3:
            raise OSError(28, "No space left on device")
        if keep == 0.5:
            raise KeyError("a bug")
        return real(run_id, keep, *args, **kwargs)

    monkeypatch.setattr(live, "evaluate_request", fails)
    with_live(page, mode="fourier_global", keep=0.3)
    assert page.jobs[-1]["outcome"] == "failed"
    assert page.alert.visible and "Live re-evaluation failed: [Errno 28] No space left on device" in page.alert.object
    with_live(page, keep=0.5)
    assert "Live re-evaluation failed: Unexpected error: KeyError('a bug')" in page.alert.object
    assert "KeyError: 'a bug'" in capsys.readouterr().err  # a bug's traceback goes to the server's log
    with_live(page, keep=0.6)
    assert page.jobs[-1]["outcome"] == "done" and not page.alert.visible, page.alert.object
    expected = th.threshold_accuracy(run.id, 0.6, "global", "fourier", device="cpu")["accuracy_after"]
    assert page.results["full"]["accuracy_after"] == expected


def test_cancellable_accuracy_is_the_trainers(tiny, monkeypatch):
    root, run, _ = tiny
    monkeypatch.setenv(STORE_ENV, str(root))
    split = th.evaluation_features(run.id)
    model = live.base_model_copy(run.id)
    monkeypatch.setattr(live, "BATCH", 7)  # batches do not change the count
    assert live.cancellable_accuracy(model, split) == th.evaluate_features(model, split.x, split.y)
    with pytest.raises(live.Superseded):
        live.cancellable_accuracy(model, split, should_stop=lambda: True)


def test_a_newer_value_supersedes_a_running_job(tiny_page, monkeypatch):
    page, _, run, _ = tiny_page
    with_live(page)
    monkeypatch.setattr(live, "BATCH", 8)  # 64 test images: 8 batches per evaluation
    first_batch, release = threading.Event(), threading.Event()
    on_batch = page._on_batch

    def held(number, step, done, total):  # the first job waits after its first batch
        if number == held.first:
            first_batch.set()
            release.wait(10)
        on_batch(number, step, done, total)

    page._on_batch = held
    held.first = page.generation.current + 1
    page.keep = 0.3
    assert first_batch.wait(30)
    page.keep = 0.6  # while the job for 0.3 is running
    release.set()
    page.wait_live()
    older, newer = page.jobs[-2], page.jobs[-1]
    assert older["key"][1] == 0.3 and older["outcome"] == "superseded" and older["batches"] == 1
    assert newer["key"][1] == 0.6 and newer["outcome"] == "done" and newer["batches"] >= 8
    assert [r["keep"] for r in page.results.values()] == [0.6]
    expected = th.threshold_accuracy(run.id, 0.6, "global", "fourier", device="cpu")["accuracy_after"]
    assert page.results["full"]["accuracy_after"] == expected and "f = 0.60" in page.live_text.object


def test_a_superseded_evaluation_never_reports(tiny, monkeypatch):
    root, run, _ = tiny
    monkeypatch.setenv(STORE_ENV, str(root))
    monkeypatch.setattr(live, "BATCH", 8)
    generation = live.Generation()
    mine = generation.next()
    batches, reported = [], []

    def on_batch(step, done, total):
        batches.append(done)
        if len(batches) == 3:
            generation.next()  # a newer request arrives

    with pytest.raises(live.Superseded):
        live.evaluate_request(run.id, 0.5, "fourier_global", 1, should_stop=lambda: not generation.is_current(mine),
                              on_result=reported.append, on_batch=on_batch)
    assert len(batches) == 3 and reported == []


# -- bad input and missing data ------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"keep": 1.5}, "keep must be a fraction in [0, 1], got 1.5"),
    ({"keep": -0.1}, "keep must be a fraction in [0, 1], got -0.1"),
    ({"mode": "band", "band": 3}, "the band B=3 is larger than L/2 = 2"),
    ({"unit": 8}, "unit k must be in 0..7"),
])
def test_bad_inputs_give_a_message_and_the_page_recovers(tiny_page, change, message):
    page, root, _, _ = tiny_page
    with_live(page)
    jobs = len(page.jobs)
    page.param.update(**change)
    assert page.alert.visible and message in page.alert.object, page.alert.object
    assert len(page.jobs) == jobs  # nothing evaluated for a bad setting
    page.live_enabled = False
    page.param.update(keep=0.5, mode="fourier_global", band=1, unit=0)
    assert not page.alert.visible, page.alert.object
    assert red_marker(root)[0].tolist() == [0.5]


def test_a_damaged_run_says_so(tiny, tmp_path, monkeypatch, figures_only):
    _, run, _ = tiny
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    shutil.copytree(run.path, tmp_path / run.path.name)
    page = figures_only()
    render(page)
    (tmp_path / run.path.name / "weights.safetensors").write_bytes(b"not weights")
    clear_caches()
    page.run = run.id
    assert page.alert.visible and f"cannot load run {run.id}" in page.alert.object, page.alert.object


def test_without_the_dataset_the_samples_stand_in_and_the_note_says_so(monkeypatch):
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    page = build_app("thresholding").page
    render(page)
    page.wait_live(300)
    assert "EXPLORER_DATA" in page.note.object and "300 CIFAR-10 test images" in page.note.object
    assert "explorer analyse threshold sle-695ad4593697 --sweep" in page.note.object or live.stored_sweep(page.run)
    result = page.results["samples"]
    assert result["images"] == 300 and result["final"] and list(page.results) == ["samples"]
    assert "300 CIFAR-10 test images shipped with the package" in page.live_text.object
    split, _ = th.sample_features(page.run)
    expected = th.threshold_accuracy(page.run, 0.2, "global", "fourier", features=split.x, labels=split.y,
                                     device="cpu")
    assert result["accuracy_after"] == expected["accuracy_after"]
    assert result["accuracy_before"] == expected["accuracy_before"]


def test_missing_features_name_the_scatter_command(monkeypatch, tmp_path):
    from explorer.features import FeaturesNotFoundError

    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path))  # configured, but no features anywhere

    def no_features(config):
        raise FeaturesNotFoundError(f"no stored features {config.key}")

    monkeypatch.setattr("explorer.features.load_features", no_features)
    plan = live.evaluation_plan("sle-695ad4593697")
    assert [s.name for s in plan.steps] == ["samples"] and plan.steps[0].images == 300
    assert "explorer scatter --split test --J 2 --L 8" in plan.note and "300" in plan.note


@pytest.mark.dataset
def test_with_stored_features_a_2000_image_estimate_comes_first(monkeypatch, tmp_path):
    """Reads the features `explorer scatter --split test` stored in the default store (linked into the
    test's store); skipped when there are none."""
    from explorer.config import store_dir
    from explorer.features import FeatureConfig

    key = FeatureConfig("cifar10", "test", J=2, L=8).key
    monkeypatch.delenv(STORE_ENV)
    stored = store_dir(create=False) / "features" / key
    if not stored.exists():
        pytest.skip(f"no stored CIFAR-10 test features {stored}: `explorer scatter --split test`")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / key).symlink_to(stored)
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    page = build_app("thresholding").page
    shown = []
    publish = page.param.watch(lambda event: shown.append(list(event.new)), ["results"])
    render(page)
    page.wait_live(300)
    page.param.unwatch(publish)
    assert shown[0] == ["estimate"] and shown[-1] == ["estimate", "full"]
    estimate, full = page.results["estimate"], page.results["full"]
    assert (estimate["images"], full["images"]) == (2000, 10000)
    assert estimate["accuracy_before"] == pytest.approx(0.7905, abs=1e-4)
    assert estimate["accuracy_after"] == pytest.approx(0.7690, abs=1e-4)  # the lead's −2.15 points
    assert full["accuracy_before"] == pytest.approx(0.7849, abs=1e-4)  # the run's stored test accuracy
    assert not page.note.object or "300" not in page.note.object


def test_a_store_without_sle_runs_says_how_to_train_one(tmp_path, monkeypatch):
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "store"))
    monkeypatch.setattr("explorer.runs.store.SHIPPED_ROOT", tmp_path / "no-shipped-runs")
    page = build_app("thresholding").page
    root = render(page)
    assert page.run is None and page.note.visible and "explorer train sle" in page.note.object
    assert plots(root) == {} and page.jobs == []


def test_the_drop_at_80_percent_is_the_sweeps_beside_the_talks(tiny_page):
    _, root, _, sweep = tiny_page
    plot = one(root, "Points lost, 80 % thresholded")
    data = next(r for r in plot.select({"type": GlyphRenderer})).data_source.data
    shown = dict(zip(data["th_which"], np.asarray(data["th_drop"], float)))
    assert list(shown) == ["this run: sweep", "this run: live", "talk: ImageNet"]
    at_20 = sweep["accuracy"]["fourier"]["global"][sweep["fractions"].index(0.2)]
    assert shown["this run: sweep"] == pytest.approx(100 * (sweep["accuracy_before"] - at_20))
    assert np.isnan(shown["this run: live"]) and shown["talk: ImageNet"] == 2.0  # no live job: no live bar
    assert f"sweep {100 * (sweep['accuracy_before'] - at_20):.2f} (64 images)" in plot.title.text
