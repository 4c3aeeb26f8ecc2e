"""The Hybrids & small data page without a browser: `explorer.analysis.hybrids` on hand-checked summaries (means,
ddof = 1 standard deviations, per-seed gains over CNN13, grids merged, the "all" point from the run store), the
page with nothing stored (the command to run), with hand-made summaries (a cell not run yet, one seed only, a
damaged file skipped with a warning) and with a real tiny grid trained on the synthetic set."""
from __future__ import annotations

import json
import math
import os
from types import SimpleNamespace

import bokeh.document
import numpy as np
import panel as pn
import pytest
from bokeh.models import GlyphRenderer, Plot, Scatter

from explorer.analysis import hybrids as ha
from explorer.app import build_app
from explorer.config import STORE_ENV
from explorer.pages.hybrids import COMMAND, HybridsPage
from explorer.views import hybrids as hv_

from bokeh_root import plot, render
from plot_ranges import stale_ranges

SCAT, MLP, CNN = "scat_linear J=2 L=8", "scat_mlp J=2 L=8 hidden=2048", "cnn13 K=32 relu"
SHIPPED_CNN13 = "cnn13-44da76659d19"  # complete, CIFAR-10, whole training set, cnn13 K=32 relu


@pytest.fixture(autouse=True)
def _reset_panel_state():
    yield
    pn.state.reset()


# -- hand-made summaries ------------------------------------------------------------------------------------

def row(model: str, describe: str, n: int, accuracies: list, seeds: list | None = None) -> dict:
    """A summary row as `explorer.protocols.small_data.summarise` writes it."""
    seeds = seeds if seeds is not None else list(range(1, len(accuracies) + 1))
    done = [a for a in accuracies if a is not None]
    return {"model": model, "describe": describe, "n": n, "seeds": seeds, "accuracies": accuracies,
            "seconds": [12.5 if a is not None else None for a in accuracies],
            "run_ids": [f"{model}-{n:06d}{s:06d}" for s in seeds],
            "devices": ["cpu (x86_64)" if a is not None else None for a in accuracies],
            "finished": len(done), "mean": float(np.mean(done)) if done else None,
            "std": float(np.std(done, ddof=1)) if len(done) > 1 else (0.0 if done else None)}


def summary(grid_id: str, rows: list[dict], dataset: str = "cifar10", schedule: str = "quick",
            limit_test: int | None = None) -> dict:
    good = [r for r in rows if isinstance(r, dict) and isinstance(r.get("n"), int)]  # tests pass bad rows too
    return {"format": 1, "protocol": "small-data", "id": grid_id,
            "grid": {"models": list(dict.fromkeys(r["model"] for r in good)),
                     "sizes": sorted({r["n"] for r in good}), "seeds": sorted({s for r in good for s in r["seeds"]}),
                     "schedule": schedule, "dataset": dataset, "model_configs": {}, "limit_test": limit_test},
            "schedule": f"small-{schedule}", "rows": rows, "complete": False}


def write_summaries(store, *summaries) -> None:
    """Into `store` as the protocol would, the first one the newest (list_summaries sorts by mtime)."""
    folder = store / "protocols" / "small-data"
    folder.mkdir(parents=True, exist_ok=True)
    for age, s in enumerate(summaries):
        path = folder / f"{s['id']}.json"
        path.write_text(json.dumps(s))
        os.utime(path, (1_700_000_000 - 100 * age, 1_700_000_000 - 100 * age))


# The worked example: accuracies chosen so that every number below is checked by hand.
#   scat_linear n=100: 0.30 0.40 0.50        → mean 0.40, std (ddof 1) √((0.01 + 0 + 0.01)/2) = 0.1
#   cnn13      n=100: 0.20 0.25 not run yet → mean 0.225, std √(2·0.025²/1) = 0.0353553
#   gains      n=100: seeds 1, 2 only       → 0.10, 0.15: mean 0.125, std 0.0353553
#   scat_linear n=500: 0.60 (one seed)      → std None;  cnn13 n=500: 0.55 0.65 → gain seed 1: +0.05 (one seed)
EXAMPLE = [row("scat_linear", SCAT, 100, [0.30, 0.40, 0.50]), row("scat_linear", SCAT, 500, [0.60], [1]),
           row("cnn13", CNN, 100, [0.20, 0.25, None]), row("cnn13", CNN, 500, [0.55, 0.65], [1, 2])]


def test_means_ddof1_std_and_per_seed_gains():
    (c,) = ha.collect([summary("quick-cifar10-aaaaaaaaaaaa", EXAMPLE)])
    assert c.label == "small-quick · cifar10 (1 grid)" and [s.label for s in c.series] == [SCAT, CNN]
    scat, cnn = c.series
    assert scat.hybrid and not cnn.hybrid
    assert scat.cell(100).mean == pytest.approx(0.40) and scat.cell(100).std == pytest.approx(0.1)
    assert scat.cell(100).std != pytest.approx(np.std([0.3, 0.4, 0.5]))  # ddof = 0 would be 0.0816
    assert cnn.cell(100).finished == 2 and cnn.cell(100).mean == pytest.approx(0.225)
    assert cnn.cell(100).std == pytest.approx(0.025 * math.sqrt(2))
    assert scat.cell(500).mean == pytest.approx(0.60) and scat.cell(500).std is None  # one seed: no spread
    assert not c.complete
    assert ha.default_baseline(c) == CNN
    g100, g500 = ha.gains(c, CNN)
    assert (g100.label, g100.n, g100.seeds) == (SCAT, 100, (1, 2))  # seed 3: the CNN has not run it
    assert g100.gains == pytest.approx((0.10, 0.15))
    assert g100.mean == pytest.approx(0.125) and g100.std == pytest.approx(0.025 * math.sqrt(2))
    assert (g500.n, g500.seeds, g500.std) == (500, (1,), None) and g500.mean == pytest.approx(0.05)
    # Against the hybrid as the baseline, the CNN's gains are the opposite ones.
    back = {g.n: g for g in ha.gains(c, SCAT)}
    assert back[100].gains == pytest.approx((-0.10, -0.15)) and back[500].gains == pytest.approx((-0.05,))
    assert ha.gains(c, None) == [] and ha.gains(c, "no such model") == []
    # Ahead beyond one standard deviation at 100 (0.125 > 0.035), and at 500 on its sign alone (one seed).
    assert ha.verdict([g100, g500]) == {SCAT: ([100, 500], [])}
    assert ha.verdict(list(back.values())) == {CNN: ([], [100, 500])}


def test_mean_std():
    assert ha.mean_std([]) == (None, None)
    assert ha.mean_std([0.7]) == (0.7, None)
    mean, std = ha.mean_std([0.1, 0.2, 0.6])
    assert mean == pytest.approx(0.3) and std == pytest.approx(math.sqrt((0.04 + 0.01 + 0.09) / 2))


def test_grids_of_one_schedule_and_dataset_are_merged():
    older = summary("quick-cifar10-000000000001", [row("scat_linear", SCAT, 100, [0.30, None, None]),
                                                   row("scat_linear", SCAT, 500, [0.50, 0.52])])
    newer = summary("quick-cifar10-000000000002", [row("scat_linear", SCAT, 100, [None, 0.40, 0.50]),
                                                   row("cnn13", CNN, 100, [0.20, 0.30, 0.40]),
                                                   row("cnn13", "cnn13 K=16 relu", 100, [0.10])])
    paper = summary("paper-cifar10-000000000003", [row("cnn13", CNN, 100, [0.9])], schedule="paper")
    synthetic = summary("quick-synthetic-000000000004", [row("cnn13", CNN, 20, [0.9])], dataset="synthetic",
                        limit_test=64)
    found = ha.collect([newer, older, paper, synthetic])
    assert [c.label for c in found] == ["small-quick · cifar10 (2 grids)", "small-paper · cifar10 (1 grid)",
                                        "small-quick · synthetic · 64 test images (1 grid)"]
    quick = found[0]
    assert quick.grid_ids == ("quick-cifar10-000000000002", "quick-cifar10-000000000001")
    assert [s.label for s in quick.series] == [SCAT, CNN, "cnn13 K=16 relu"]  # two widths: two series
    cell = quick.get(SCAT).cell(100)
    assert cell.seeds == (1, 2, 3) and cell.accuracies == (0.30, 0.40, 0.50)  # each seed from the grid that ran it
    assert [c.n for c in quick.get(SCAT).cells] == [100, 500]
    assert [g.gains for g in ha.gains(quick, CNN) if g.label == SCAT] == [pytest.approx((0.1, 0.1, 0.1))]
    # The newest finished value wins where two grids both finished a cell.
    again = summary("quick-cifar10-000000000005", [row("scat_linear", SCAT, 500, [0.99, None])])
    (merged, *_) = ha.collect([again, newer, older])
    assert merged.get(SCAT).cell(500).accuracies == (0.99, 0.52)


def test_malformed_rows_are_left_out_and_named():
    bad = summary("quick-cifar10-bbbbbbbbbbbb", [row("scat_linear", SCAT, 100, [0.3, 0.4]),
                                                  {"model": "cnn13", "n": 100, "seeds": [1, 2], "accuracies": [0.1]},
                                                  {"model": "cnn13", "n": "many", "seeds": [], "accuracies": []},
                                                  row("cnn13", CNN, 500, [1.7]), "not a row"])
    (c,) = ha.collect([bad])
    assert [s.label for s in c.series] == [SCAT]
    assert len(c.problems) == 4
    assert "row 2: its seeds and accuracies are not two lists of one length" in c.problems[0]
    assert "row 4: accuracy 1.7 is not in [0, 1]" in c.problems[2]


def info(run_id, status="complete", accuracy=0.8, **config_changes):
    from explorer.training import make_config

    config = make_config("cnn13", dataset="cifar10")
    config.update(config_changes)
    return SimpleNamespace(id=run_id, status=status, config=config, accuracy=accuracy,
                           metrics=[{"seconds": 100.0}, {"seconds": 50.0}],
                           provenance={"sessions": [{"device": "cuda:0"}]}, shipped=False)


def test_the_all_point_is_a_complete_run_on_the_whole_training_set():
    from explorer.runs import RunStore

    runs = [info("cnn13-000000000001", accuracy=0.81), info("cnn13-000000000002", accuracy=0.85),
            info("cnn13-000000000003", status="partial", accuracy=0.95),
            info("cnn13-000000000004", accuracy=0.96, subset={"n": 100, "seed": 1}),
            info("cnn13-000000000005", accuracy=0.97, limit_train=1000),
            info("cnn13-000000000006", accuracy=0.98, limit_test=500),
            info("cnn13-000000000007", accuracy=0.99, dataset="synthetic"),
            info("cnn13-000000000008", accuracy=0.99, model_config={**info("x").config["model_config"], "width": 16})]
    full = ha.full_runs(runs, "cifar10", "cnn13", CNN)
    assert [(r.run_id, r.accuracy) for r in full] == [("cnn13-000000000002", 0.85), ("cnn13-000000000001", 0.81)]
    assert full[0].seconds == 150.0 and full[0].device == "cuda:0" and full[0].schedule == "quick"
    assert [r.run_id for r in ha.full_runs(runs, "cifar10", "cnn13", "cnn13 K=16 relu")] == ["cnn13-000000000008"]
    assert ha.full_runs(runs, "cifar10", "scat_linear", SCAT) == []
    # The shipped CNN13 (the run store's own listing) is the "all" point of a CIFAR-10 cnn13 K=32 relu series.
    (c,) = ha.collect([summary("quick-cifar10-aaaaaaaaaaaa", EXAMPLE)], RunStore().list())
    best = c.get(CNN).best_full
    assert best is not None and best.run_id == SHIPPED_CNN13 and best.shipped
    assert best.accuracy == pytest.approx(RunStore().info(SHIPPED_CNN13).accuracy)
    assert c.get(SCAT).full == ()


# -- views --------------------------------------------------------------------------------------------------

def legend(p: Plot) -> list[str]:
    return [item.label.value for lg in p.legend for item in lg.items]


def scatters(p: Plot, y: str) -> list[dict]:
    """Every Scatter glyph of plot `p`: its legend label, points, alpha and marker."""
    labels = {r.id: item.label.value for lg in p.legend for item in lg.items for r in item.renderers}
    out = []
    for r in p.select({"type": GlyphRenderer}):
        if isinstance(r.glyph, Scatter) and y in r.data_source.data:
            data = r.data_source.data
            xname = next(k for k in data if k.endswith("_n"))
            out.append({"label": labels.get(r.id), "x": np.asarray(data[xname], float),
                        "y": np.asarray(data[y], float), "alpha": r.glyph.fill_alpha,
                        "marker": r.glyph.marker, "data": data})
    return out


def test_reported_figures_only_for_cifar10():
    def labels(dataset):
        return legend(plot(render(hv_.accuracy_figure([], dataset)), "Test accuracy"))

    assert labels("cifar10") == [f"{m}, reported (talk)" for m in ("Scat+ResNet", "WRN 16-8", "VGG 16")]
    assert labels("synthetic") == []
    root = render(hv_.accuracy_figure([], "cifar10"))
    drawn = {s["label"]: (s["x"].tolist(), s["y"].tolist()) for s in scatters(plot(root, "Test accuracy"), "hy_accuracy")}
    assert drawn == {"Scat+ResNet, reported (talk)": ([100, 500, 1000], pytest.approx([38, 55, 62])),
                     "WRN 16-8, reported (talk)": ([100, 500, 1000], pytest.approx([35, 47, 60])),
                     "VGG 16, reported (talk)": ([100, 500, 1000], pytest.approx([26, 47, 56]))}


# -- the page -------------------------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    return tmp_path


def open_page():
    page = build_app("hybrids").page
    assert isinstance(page, HybridsPage)
    return page, render(page)


def test_nothing_stored_says_the_command_and_the_page_shows(store):
    page, root = open_page()
    assert page.collections == {} and page.grid is None and page.models == [] and page.baseline is None
    assert page.note.visible and f"`{COMMAND}`" in page.note.object and page.note.alert_type == "info"
    assert not page.alert.visible, page.alert.object
    accuracy = plot(root, "Test accuracy against training-set size: nothing stored yet")
    assert all(label.endswith("reported (talk)") for label in legend(accuracy)) and len(legend(accuracy)) == 3
    assert not page.gain_frame.visible and not page.table_frame.visible and page.rows == []
    assert stale_ranges(root) == []
    # A grid stored meanwhile appears on Reload.
    write_summaries(store, summary("quick-cifar10-aaaaaaaaaaaa", EXAMPLE))
    page.reload_button.clicks += 1
    assert page.grid == "small-quick|cifar10|all" and page.models == [SCAT, CNN] and page.baseline == CNN
    assert not page.note.visible and page.gain_frame.visible and page.table_frame.visible
    assert plot(root, "Gain over cnn13 K=32 relu, same images") is not None


def test_hand_made_grids_drawn_and_tabulated(store):
    write_summaries(store, summary("quick-cifar10-aaaaaaaaaaaa", EXAMPLE),
                    summary("quick-synthetic-bbbbbbbbbbbb", [row("scat_linear", SCAT, 20, [0.9, 1.0]),
                                                             row("cnn13", "cnn13 K=4 relu", 20, [0.5, 0.6])],
                            dataset="synthetic", limit_test=64))
    page, root = open_page()
    assert not page.alert.visible, page.alert.object
    assert list(page.param.grid.objects) == ["small-quick|cifar10|all", "small-quick|synthetic|64"]
    assert page.grid_widget.options == {"small-quick · cifar10 (1 grid)": "small-quick|cifar10|all",
                                        "small-quick · synthetic · 64 test images (1 grid)": "small-quick|synthetic|64"}
    assert "not finished yet" in page.grid_text.object
    accuracy = plot(root, "Test accuracy against training-set size")
    assert legend(accuracy)[:2] == [SCAT, CNN] and legend(accuracy)[2].endswith("reported (talk)")
    points = scatters(accuracy, "hy_accuracy")
    means = {p["label"]: p for p in points if "hy_std" in p["data"] and p["marker"] == "circle"}
    np.testing.assert_allclose(means[SCAT]["x"], [100, 500])
    np.testing.assert_allclose(means[SCAT]["y"], [40.0, 60.0])
    np.testing.assert_allclose(means[SCAT]["data"]["hy_std"], [10.0, 0.0])  # one seed: no error bar
    np.testing.assert_allclose(means[CNN]["y"], [22.5, 60.0])
    seeds = {p["label"]: p for p in points if p["alpha"] == pytest.approx(0.35) and p["marker"] == "circle"}
    assert sorted(seeds[SCAT]["y"]) == pytest.approx([30, 40, 50, 60]) and len(seeds[CNN]["y"]) == 4
    assert sorted(seeds[SCAT]["x"]) == pytest.approx([96.5, 100, 103.5, 500])  # seeds spread around n
    # The shipped CNN13 is the "all" point of the cnn13 K=32 relu series, at 50 000 images.
    (diamond,) = [p for p in points if p["marker"] == "diamond" and p["alpha"] == 1.0]
    assert diamond["label"] == CNN and diamond["x"].tolist() == [50_000]
    assert (50_000, "all (50 000)") in [(t, accuracy.xaxis[0].major_label_overrides.get(t))
                                         for t in accuracy.xaxis[0].ticker.ticks]
    gain = plot(root, "Gain over cnn13 K=32 relu, same images")
    (gmeans,) = [p for p in scatters(gain, "hg_gain") if "hg_std" in p["data"]]
    np.testing.assert_allclose(gmeans["y"], [12.5, 5.0])
    np.testing.assert_allclose(gmeans["data"]["hg_std"], [100 * 0.025 * math.sqrt(2), 0.0])
    assert "**scat_linear J=2 L=8** against cnn13 K=32 relu: ahead at n = 100, 500" in page.verdict.object
    # The table: mean ± std, each seed, the gain, time and device; the cell not run yet and the "all" row.
    rows = {(r["model"], r["n"]): r for r in page.rows}
    assert rows[(SCAT, "100")]["accuracy"] == "40.00 ± 10.00" and rows[(SCAT, "100")]["gain"] == "+12.50 ± 3.54"
    assert rows[(SCAT, "500")]["accuracy"] == "60.00 (one seed)" and rows[(SCAT, "500")]["gain"] == "+5.00 (one seed)"
    assert rows[(CNN, "100")]["seeds"] == "2 / 3" and rows[(CNN, "100")]["per_seed"] == "1: 20.0, 2: 25.0, 3: –"
    assert rows[(SCAT, "100")]["seconds"] == "12.5 s" and rows[(SCAT, "100")]["device"] == "cpu (x86_64)"
    assert rows[(CNN, "all (50 000)")]["seeds"].startswith(f"run {SHIPPED_CNN13} (shipped")
    table = page.table_pane.object.splitlines()
    assert table[0] == ("| model | training images | accuracy (%) | seeds finished | per seed (%) | gain (points) | "
                        "time per run | device |")
    assert table[2] == f"| {SCAT} | 100 | 40.00 ± 10.00 | 3 / 3 | 1: 30.0, 2: 40.0, 3: 50.0 | +12.50 ± 3.54 | 12.5 s | cpu (x86_64) |"
    assert len(table) == 2 + 5
    assert stale_ranges(root) == []

    # Fewer models, no seeds, no reported figures: the figures follow.
    assert page.models_widget.options == [SCAT, CNN] and page.models_widget.value == [SCAT, CNN]
    page.models_widget.value = [SCAT]  # as a click in the browser
    assert page.models == [SCAT]
    accuracy = plot(root, "Test accuracy against training-set size")
    assert legend(accuracy)[0] == SCAT and CNN not in legend(accuracy)
    page.param.update(show_seeds=False, show_reported=False)
    accuracy = plot(root, "Test accuracy against training-set size")
    assert legend(accuracy) == [SCAT]
    assert all(p["alpha"] == 1.0 for p in scatters(accuracy, "hy_accuracy"))
    assert [r["model"] for r in page.rows] == [SCAT, SCAT]
    # The hybrid as the baseline: the gain figure shows the CNN below zero.
    page.baseline_widget.value = "none"
    assert page.baseline is None and plot(root, "Gain over the baseline: none chosen") is not None
    page.param.update(models=[SCAT, CNN], baseline=SCAT)
    assert page.baseline_widget.value == SCAT
    gain = plot(root, "Gain over scat_linear J=2 L=8, same images")
    (gmeans,) = [p for p in scatters(gain, "hg_gain") if "hg_std" in p["data"]]
    assert legend(gain) == [CNN] and gmeans["y"].tolist() == pytest.approx([-12.5, -5.0])
    assert "behind at n = 100, 500" in page.verdict.object
    assert stale_ranges(root) == []

    # The synthetic grid: its own models (every one shown), its CNN13 the baseline, no talk figures, no "all".
    page.grid_widget.value = "small-quick|synthetic|64"
    assert page.grid == "small-quick|synthetic|64"
    assert page.models == [SCAT, "cnn13 K=4 relu"] and page.baseline == "cnn13 K=4 relu"
    assert page.models_widget.options == page.models_widget.value == [SCAT, "cnn13 K=4 relu"]
    assert page.baseline_widget.value == "cnn13 K=4 relu"
    accuracy = plot(root, "Test accuracy against training-set size")
    assert legend(accuracy) == [SCAT, "cnn13 K=4 relu"]
    assert not [p for p in scatters(accuracy, "hy_accuracy") if p["marker"] == "diamond"]
    assert plot(root, "Gain over cnn13 K=4 relu, same images") is not None
    assert stale_ranges(root) == []
    assert not page.alert.visible, page.alert.object


def test_damaged_files_are_skipped_with_a_warning_and_the_page_works(store):
    write_summaries(store, summary("quick-cifar10-aaaaaaaaaaaa",
                                   [*EXAMPLE, {"model": "cnn13", "n": 1000, "seeds": [1], "accuracies": "x"}]))
    folder = store / "protocols" / "small-data"
    (folder / "quick-cifar10-damaged00000.json").write_text('{"protocol": "small-data", "rows": [')
    (folder / "quick-cifar10-foreign000000.json").write_text('{"protocol": "something else"}')
    page, root = open_page()
    assert not page.alert.visible, page.alert.object
    assert page.note.visible and page.note.alert_type == "warning"
    assert "2 stored summaries could not be read" in page.note.object
    assert "quick-cifar10-damaged00000.json" in page.note.object and "not a small-data summary" in page.note.object
    assert "Left out of this grid: grid quick-cifar10-aaaaaaaaaaaa, row 5" in page.note.object
    assert page.models == [SCAT, CNN] and len(page.rows) == 5  # 2 + 2 cells and the shipped "all"
    assert plot(root, "Gain over cnn13 K=32 relu, same images") is not None


def test_an_unreadable_store_and_a_failing_figure_are_said_and_the_page_works(store, monkeypatch, capsys):
    from explorer.protocols import small_data
    from explorer.runs import RunStore

    write_summaries(store, summary("quick-cifar10-aaaaaaaaaaaa", EXAMPLE))

    def denied():
        raise PermissionError(13, "Permission denied", str(store / "protocols"))

    def bug(self):
        raise KeyError("a bug")

    readers = small_data.list_summaries, RunStore.list
    monkeypatch.setattr(small_data, "list_summaries", denied)
    monkeypatch.setattr(RunStore, "list", bug)
    page, root = open_page()
    assert page.note.visible and page.note.alert_type == "warning"
    assert "The stored small-data summaries cannot be read: [Errno 13] Permission denied" in page.note.object
    assert "The run store cannot be listed (no \"all\" points): Unexpected error: KeyError('a bug')" in page.note.object
    assert "KeyError: 'a bug'" in capsys.readouterr().err  # a bug's traceback goes to the server's log
    monkeypatch.setattr(small_data, "list_summaries", readers[0])
    monkeypatch.setattr(RunStore, "list", readers[1])
    page.reload_button.clicks += 1
    assert page.models == [SCAT, CNN] and "cannot be" not in page.note.object
    real = hv_.gain_figure
    monkeypatch.setattr(hv_, "gain_figure", lambda *a, **k: (_ for _ in ()).throw(ValueError("no gains to draw")))
    page.baseline_widget.value = SCAT
    assert page.alert.visible and page.alert.object.startswith("Cannot draw these results: no gains to draw")
    monkeypatch.setattr(hv_, "gain_figure", real)
    page.baseline_widget.value = CNN
    assert not page.alert.visible, page.alert.object
    assert plot(root, "Gain over cnn13 K=32 relu, same images") is not None


def test_a_grid_without_cnn13_says_how_to_add_one(store):
    write_summaries(store, summary("paper-cifar10-aaaaaaaaaaaa", [row("scat_linear", SCAT, 100, [0.3, 0.4]),
                                                                  row("scat_mlp", MLP, 100, [0.35, 0.45])],
                                   schedule="paper"))
    page, root = open_page()
    assert page.baseline is None and page.models == [SCAT, MLP]
    assert "`explorer protocol small-data --models cnn13 --schedule paper --dataset cifar10`" in page.note.object
    assert plot(root, "Gain over the baseline: no CNN13 in this grid") is not None
    assert page.baseline_widget.options == {"none": "none", SCAT: SCAT, MLP: MLP} and page.baseline_widget.value == "none"
    page.baseline_widget.value = MLP  # any stored model can be the baseline
    assert page.baseline == MLP
    gain = plot(root, f"Gain over {MLP}, same images")
    (gmeans,) = [p for p in scatters(gain, "hg_gain") if "hg_std" in p["data"]]
    assert gmeans["y"].tolist() == pytest.approx([-5.0]) and gmeans["data"]["hg_std"].tolist() == pytest.approx([0.0])
    assert not page.alert.visible, page.alert.object


def test_notebook_shows_the_page_live(store):
    from explorer.pages.notebook import show_page

    write_summaries(store, summary("quick-cifar10-aaaaaaaaaaaa", EXAMPLE))
    row_ = show_page("hybrids", show_seeds=False)
    assert row_.page.show_seeds is False and row_.page.controls in row_.objects[0].objects
    root = row_.get_root(bokeh.document.Document())
    assert plot(root, "Test accuracy against training-set size") is not None


# -- a real grid ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_grid(tmp_path_factory):
    """A tiny real grid: scat_linear and a 4-wide CNN13 on 20 and 40 synthetic images, seeds 1 and 2 (eight
    runs; a few minutes on 2 CPU cores, most of it the synthetic set's scattering, computed per run)."""
    from explorer.protocols.small_data import SmallDataGrid, run_grid

    store = tmp_path_factory.mktemp("hybrids-store")
    grid = SmallDataGrid(models=("scat_linear", "cnn13"), sizes=(20, 40), seeds=(1, 2), dataset="synthetic",
                         model_configs={"cnn13": {"width": 4}}, limit_test=64)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(STORE_ENV, str(store))
        stored = run_grid(grid, progress=False)
    return store, stored


@pytest.mark.slow
def test_a_real_grid_on_the_synthetic_set(real_grid, monkeypatch):
    from explorer.runs import RunStore

    store, stored = real_grid
    monkeypatch.setenv(STORE_ENV, str(store))
    assert stored["complete"]
    page, root = open_page()
    assert not page.alert.visible, page.alert.object
    assert page.grid == "small-quick|synthetic|64" and page.models == [SCAT, "cnn13 K=4 relu"]
    assert page.baseline == "cnn13 K=4 relu" and not page.note.visible
    # Independently of the summary: every run's own accuracy from the run store.
    accuracy = {}
    for r in stored["rows"]:
        accuracy[(r["describe"], r["n"])] = [RunStore().info(run_id).accuracy for run_id in r["run_ids"]]
    rows = {(r["model"], r["n"]): r for r in page.rows}
    for (describe, n), values in accuracy.items():
        text = f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}"
        assert rows[(describe, str(n))]["accuracy"] == text
        assert rows[(describe, str(n))]["seeds"] == "2 / 2" and rows[(describe, str(n))]["device"]
    drawn = plot(root, "Test accuracy against training-set size")
    means = {p["label"]: p["y"] for p in scatters(drawn, "hy_accuracy") if "hy_std" in p["data"]}
    np.testing.assert_allclose(means[SCAT], [100 * np.mean(accuracy[(SCAT, n)]) for n in (20, 40)])
    gain = plot(root, "Gain over cnn13 K=4 relu, same images")
    (gmeans,) = [p for p in scatters(gain, "hg_gain") if "hg_std" in p["data"]]
    expected = [100 * np.mean(np.subtract(accuracy[(SCAT, n)], accuracy[("cnn13 K=4 relu", n)])) for n in (20, 40)]
    np.testing.assert_allclose(gmeans["y"], expected)
    assert legend(drawn) == [SCAT, "cnn13 K=4 relu"]  # synthetic: no talk figures
    assert stale_ranges(root) == []
