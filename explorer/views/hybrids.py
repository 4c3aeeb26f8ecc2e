"""Figures of the Hybrids & small data page (`explorer.analysis.hybrids`, science.md §4): test accuracy against
the training-set size, one colour per model, with its spread over seeds and the talk's reported figures, the
gain of each model over the baseline (CNN13) trained on the same images, and the numbers as a table.

Pure HoloViews, no Panel. Accuracies in percent, gains in percentage points; the size axis is logarithmic with
a tick at each size run and at "all" (the whole training set). Every figure computes its own ranges from what
it draws (framewise): a new selection of models or of the grid refits them.
"""
from __future__ import annotations

import math

import holoviews as hv
import numpy as np

from explorer.analysis import hybrids as ha

# Markdown with LaTeX between $$…$$ (only backslash-letter commands).
CAPTIONS = {
    "accuracy": "Test accuracy against the number of training images (log scale), one colour per model (solid: "
                "a hybrid, scattering + learned layers; dashed: a CNN on pixels). Dots joined by the line: the "
                "mean over the finished seeds, with error bars of ± one standard deviation (ddof = 1; none for "
                "a single seed; stopped at 0 and 100 %); faint dots: the seeds themselves. Diamond at \"all\": the best complete run of "
                "the same model and configuration on the whole training set found in the run store (faint: the "
                "others). Grey markers: the talk's small-sample table (CIFAR-10, the paper's 200×20-epoch "
                "schedule), reported, not measured here. Look: where the hybrids' curves sit above the CNN's.",
    "gain": "Accuracy of each model minus the baseline's, seed by seed on the same training images (the protocol "
            "draws the same n images for every model with the same seed), mean ± standard deviation over the "
            "seeds both finished; faint dots: the seeds. Above the zero line the model beats the baseline. Look: "
            "whether the gain is largest at the smallest sizes and shrinks as n grows, as the paper found for "
            "its Scattering + ResNet against WRN and VGG.",
    "table": "The numbers behind the figures, per model and size: mean ± standard deviation (ddof = 1) over the "
             "finished seeds, the accuracy of each seed, the gain over the baseline, the mean training time of "
             "one run and the device it ran on. `explorer protocol show` prints the stored grids.",
}

MODEL_COLOURS = {"scat_linear": "#ff7f0e", "scat_mlp": "#d62728", "scat_wrn": "#9467bd", "sle": "#8c564b",
                 "sle_fourier": "#e377c2", "cnn13": "#1f77b4", "wrn": "#2ca02c"}
OTHER_COLOURS = ("#17becf", "#bcbd22", "#7f7f7f", "#393b79")
REPORTED_STYLE = {"Scat+ResNet": ("#222222", "triangle"), "WRN 16-8": ("#666666", "square"),
                  "VGG 16": ("#999999", "inverted_triangle")}
REPORTED_WORDS = "reported (talk)"
_SIZE = {"frame_width": 440, "frame_height": 320}  # with the legend beside it: 760 px, inside a 1100 px window (captions 720 px)
_LEGEND = {"legend_position": "right", "legend_opts": {"label_text_font_size": "11px", "spacing": 2}}
SEED_JITTER = 0.035  # seeds at one size spread over ±3.5 % of n (multiplicative, the axis is logarithmic)


def _colour_heads(plot, element) -> None:
    """The error bars' end caps in the bar's colour (HoloViews leaves Bokeh's black)."""
    whisker = plot.handles.get("glyph")
    for head in (getattr(whisker, "upper_head", None), getattr(whisker, "lower_head", None)):
        if head is not None:
            head.line_color = whisker.line_color
            head.line_width = 2


def colour(series: ha.Series, index: int) -> str:
    return MODEL_COLOURS.get(series.model, OTHER_COLOURS[index % len(OTHER_COLOURS)])


def dash(series: ha.Series) -> str:
    return "solid" if series.hybrid else "dashed"


def size_label(n: int, full: int | None = None) -> str:
    """"100", "1 000", and for the whole training set "all (50 000)"."""
    text = f"{n:,}".replace(",", " ")
    return f"all ({text})" if full is not None and n == full else text


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def _jitter(n: float, k: int) -> np.ndarray:
    """x positions of k seeds around n: spread evenly over ±SEED_JITTER·n (one seed: at n)."""
    if k <= 1:
        return np.full(k, float(n))
    return float(n) * (1.0 + SEED_JITTER * np.linspace(-1.0, 1.0, k))


def _ticks(sizes: list[int], full: int | None) -> list[tuple[int, str]]:
    return [(n, size_label(n, full)) for n in sorted(set(sizes))]


def _xlim(xs: list[float]) -> tuple[float, float]:
    lo, hi = min(xs), max(xs)
    return lo / 1.4, hi * 1.4


def _ylim(ys: list[float], floor: float | None, ceiling: float | None, pad: float = 4.0) -> tuple[float, float]:
    ys = [y for y in ys if math.isfinite(y)] or [0.0]
    lo, hi = min(ys) - pad, max(ys) + pad
    if floor is not None:
        lo = max(lo, floor)
    if ceiling is not None:
        hi = min(hi, ceiling)
    return lo, hi


def accuracy_figure(series: list[ha.Series], dataset: str = "cifar10", show_seeds: bool = True,
                    show_reported: bool = True, title: str | None = None) -> hv.Overlay:
    """Test accuracy (%) against n for each series: mean ± std over the finished seeds at each size, the seeds
    (faint, `show_seeds`), the best full-training-set run at "all" (`Series.full`, the others faint), and the
    talk's reported figures (`analysis.hybrids.REPORTED`) when `dataset` is CIFAR-10 and `show_reported`."""
    full = ha.FULL_SIZES.get(dataset)
    xd = hv.Dimension("hy_n", label="training images (log scale)")
    yd = hv.Dimension("hy_accuracy", label="test accuracy (%)")
    extra = [hv.Dimension("hy_std", label="± std (%)"), hv.Dimension("hy_seeds", label="seeds finished")]
    layers, xs, ys, sizes = [], [], [], []
    for index, s in enumerate(series):
        c, label = colour(s, index), s.label
        cells = [cell for cell in s.cells if cell.mean is not None]
        n = [cell.n for cell in cells]
        mean = [100 * cell.mean for cell in cells]
        std = [100 * (cell.std or 0.0) for cell in cells]
        sizes += [cell.n for cell in s.cells]
        # The bars stop at 0 and 100 %: an accuracy cannot pass them (the table gives the ± in full).
        below = [min(e, m) for m, e in zip(mean, std)]
        above = [min(e, 100.0 - m) for m, e in zip(mean, std)]
        layers.append(hv.Curve((n, mean), xd, yd, label=label).opts(color=c, line_width=2.5, line_dash=dash(s)))
        layers.append(hv.ErrorBars((n, mean, below, above), xd, [yd, "hy_below", "hy_above"], label=label).opts(
            color=c, line_width=2, hooks=[_colour_heads]))
        layers.append(hv.Scatter((n, mean, std, [cell.finished for cell in cells]), xd, [yd, *extra],
                                 label=label).opts(color=c, size=8, tools=["hover"]))
        xs += n
        ys += [m + e for m, e in zip(mean, above)] + [m - e for m, e in zip(mean, below)]
        if show_seeds:
            px, py = [], []
            for cell in cells:
                done = list(cell.done.values())
                px += _jitter(cell.n, len(done)).tolist()
                py += [100 * a for a in done]
            layers.append(hv.Scatter((px, py), xd, yd, label=label).opts(color=c, size=5, alpha=0.35))
            xs += px
            ys += py
        best = s.best_full
        if best is not None and full is not None:
            sizes.append(full)
            if cells:  # dotted from the largest size run to "all"
                layers.append(hv.Curve(([n[-1], full], [mean[-1], 100 * best.accuracy]), xd, yd, label=label).opts(
                    color=c, line_width=1.5, line_dash="dotted"))
            if show_seeds and len(s.full) > 1:
                others = [100 * r.accuracy for r in s.full[1:]]
                layers.append(hv.Scatter(([full] * len(others), others), xd, yd, label=label).opts(
                    color=c, size=7, alpha=0.35, marker="diamond"))
                ys += others
            layers.append(hv.Scatter(([full], [100 * best.accuracy], [0.0], [1]), xd, [yd, *extra],
                                     label=label).opts(color=c, size=13, marker="diamond", line_color="black",
                                                       tools=["hover"]))
            xs.append(full)
            ys.append(100 * best.accuracy)
    if show_reported and dataset == ha.REPORTED_DATASET:
        for name, values in ha.REPORTED.items():
            c, marker = REPORTED_STYLE[name]
            label = f"{name}, {REPORTED_WORDS}"
            v = [100 * a for a in values]
            layers.append(hv.Curve((list(ha.REPORTED_SIZES), v), xd, yd, label=label).opts(
                color=c, line_width=1, line_dash="dotted", alpha=0.7))
            layers.append(hv.Scatter((list(ha.REPORTED_SIZES), v), xd, yd, label=label).opts(
                color=c, size=10, marker=marker, alpha=0.85))
            xs += list(ha.REPORTED_SIZES)
            ys += v
            sizes += list(ha.REPORTED_SIZES)
    if not layers:  # nothing to draw: an empty frame that keeps its axes and says so in its title
        layers.append(hv.Curve(([], []), xd, yd).opts(color="#7f7f7f"))
    xs = xs or [10.0, (full or 1000) * 1.0]
    if title is None:
        title = "Test accuracy against training-set size"
    return hv.Overlay(layers).opts(
        hv.opts.Curve(logx=True, xlim=_xlim(xs), ylim=_ylim(ys, -1.0, 101.0), xticks=_ticks(sizes, full) or None,
                      show_grid=True, toolbar="below", framewise=True, **_SIZE),
        hv.opts.Scatter(framewise=True), hv.opts.ErrorBars(framewise=True),
        hv.opts.Overlay(title=title, **_LEGEND))


def gain_figure(gains: list[ha.Gain], series: list[ha.Series], baseline: str | None,
                show_seeds: bool = True, title: str | None = None) -> hv.Overlay:
    """The gain (percentage points) of each series over `baseline` against n (`analysis.hybrids.gains`): mean
    ± std over the paired seeds, the seeds faint (`show_seeds`), and the zero line. `title` replaces the one
    said when there is no baseline."""
    xd = hv.Dimension("hg_n", label="training images (log scale)")
    yd = hv.Dimension("hg_gain", label=f"gain over {baseline or 'the baseline'} (points)")
    extra = [hv.Dimension("hg_std", label="± std (points)"), hv.Dimension("hg_seeds", label="paired seeds")]
    colours = {s.label: (colour(s, i), dash(s)) for i, s in enumerate(series)}
    layers, xs, ys, sizes = [], [], [0.0], []
    for label in dict.fromkeys(g.label for g in gains):
        if label not in colours:
            continue
        c, line = colours[label]
        mine = sorted((g for g in gains if g.label == label), key=lambda g: g.n)
        n = [g.n for g in mine]
        mean = [100 * g.mean for g in mine]
        std = [100 * (g.std or 0.0) for g in mine]
        layers.append(hv.Curve((n, mean), xd, yd, label=label).opts(color=c, line_width=2.5, line_dash=line))
        layers.append(hv.ErrorBars((n, mean, std), xd, [yd, "hg_err"], label=label).opts(
            color=c, line_width=2, hooks=[_colour_heads]))
        layers.append(hv.Scatter((n, mean, std, [len(g.seeds) for g in mine]), xd, [yd, *extra], label=label).opts(
            color=c, size=8, tools=["hover"]))
        xs += n
        sizes += n
        ys += [m + e for m, e in zip(mean, std)] + [m - e for m, e in zip(mean, std)]
        if show_seeds:
            px, py = [], []
            for g in mine:
                px += _jitter(g.n, len(g.gains)).tolist()
                py += [100 * v for v in g.gains]
            layers.append(hv.Scatter((px, py), xd, yd, label=label).opts(color=c, size=5, alpha=0.35))
            xs += px
            ys += py
    if baseline is None:
        title = title or "Gain over the baseline: none chosen"
    elif not layers:
        title = f"Gain over {baseline}: no size run by both yet"
    else:
        title = f"Gain over {baseline}, same images"
    xs = xs or [100.0, 1000.0]
    zero = hv.HLine(0.0).opts(color="black", line_width=1.5)
    if not layers:
        layers.append(hv.Curve(([], []), xd, yd).opts(color="#7f7f7f"))
    return (hv.Overlay(layers) * zero).opts(
        hv.opts.Curve(logx=True, xlim=_xlim(xs), ylim=_ylim(ys, -100.0, 100.0, pad=2.0),
                      xticks=_ticks(sizes, None) or None, show_grid=True,
                      toolbar="below", framewise=True, **_SIZE),
        hv.opts.Scatter(framewise=True), hv.opts.ErrorBars(framewise=True),
        hv.opts.Overlay(title=title, **_LEGEND))


TABLE_COLUMNS = {"model": "model", "n": "training images", "accuracy": "accuracy (%)", "seeds": "seeds finished",
                 "per_seed": "per seed (%)", "gain": "gain (points)", "seconds": "time per run", "device": "device"}


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def table_rows(series: list[ha.Series], gains: list[ha.Gain], dataset: str) -> list[dict]:
    """One row per (series, size) and one per series' "all" point, as text: what `results_table` shows."""
    full = ha.FULL_SIZES.get(dataset)
    by_cell = {(g.label, g.n): g for g in gains}
    rows = []
    for s in series:
        for cell in s.cells:
            accuracy = ("not run yet" if cell.mean is None else
                        f"{percent(cell.mean, 2)} ± {percent(cell.std, 2)}" if cell.std is not None else
                        f"{percent(cell.mean, 2)} (one seed)")
            g = by_cell.get((s.label, cell.n))
            gain = "" if g is None else (f"{100 * g.mean:+.2f} ± {100 * g.std:.2f}" if g.std is not None
                                         else f"{100 * g.mean:+.2f} (one seed)")
            per_seed = ", ".join(f"{seed}: {percent(a)}" for seed, a in zip(cell.seeds, cell.accuracies))
            rows.append({"model": s.label, "n": size_label(cell.n), "accuracy": accuracy,
                         "seeds": f"{cell.finished} / {len(cell.seeds)}", "per_seed": per_seed, "gain": gain,
                         "seconds": seconds_text(cell.mean_seconds), "device": ", ".join(cell.device_names)})
        best = s.best_full
        if best is not None and full is not None:
            source = "shipped" if best.shipped else "yours"
            more = f", best of {len(s.full)}" if len(s.full) > 1 else ""
            rows.append({"model": s.label, "n": size_label(full, full), "accuracy": f"{percent(best.accuracy, 2)}",
                         "seeds": f"run {best.run_id} ({source}{more})",
                         "per_seed": ", ".join(percent(r.accuracy) for r in s.full), "gain": "",
                         "seconds": seconds_text(best.seconds), "device": best.device or ""})
    return rows


def results_markdown(rows: list[dict]) -> str:
    """`table_rows` as a Markdown table, columns `TABLE_COLUMNS` (a Markdown table wraps long cells: model
    descriptions, every seed, the device, where a fixed-width grid cut them)."""
    if not rows:
        return ""
    cell = lambda value: str(value).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(TABLE_COLUMNS.values()) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(cell(r.get(k, "")) for k in TABLE_COLUMNS) + " |" for r in rows]
    return "\n".join(lines)
