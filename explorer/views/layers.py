"""Figures of the layer-wise analysis of a CNN13 (`explorer.analysis.layers`, science.md §3): separation
(1-NN and SVM test accuracy) and contraction (intra-class distances, per-class PCA, k-local support vectors)
against depth, and the network's own accuracy against α = k/K for ReLU_k^K runs.

Pure HoloViews, no Panel. The figures take `layers_result` dicts, one per run, overlaid: one colour per run
in the curves against depth; in the families (one curve per depth: PCA, |Γₙᵏ| against k) the colour is the
depth (a colour bar) and the line style the run. Every curve is labelled by ρ, K and the run's id.
"""
from __future__ import annotations

import math

import holoviews as hv
import numpy as np

from explorer.analysis.lsv import K_MAX, check_k, check_rule

# Markdown with LaTeX between $$…$$ (only backslash-letter commands).
CAPTIONS = {
    "accuracy": r"Separation: test accuracy of a 1-NN (solid) and of a Gaussian SVM (dashed) fitted on the "
                r"features $$\Phi_n(x)$$ of depth $$n$$ (spatial mean of the map, standardised), beside the "
                r"network's own test accuracy (dotted). Look: both rise with depth toward the network's "
                r"accuracy: the deeper features separate the classes better.",
    "intra": r"Contraction: per class, the mean distance between two distinct training points "
             r"$$\Phi_n(x), \Phi_n(x')$$ of the class (the talk's normalisation $$\times 2$$; the authors' code "
             r"gives this $$\times (n-1)/n$$). Thick: the class chosen on the left; thin: the other classes "
             r"(hover names them). Look: the distances shrink with depth overall, not at every depth.",
    "pca": r"Per-class PCA: the eigenvalues of the class covariance of $$\Phi_n$$, sorted and cumulated, one "
           r"curve per depth $$n$$ (colour bar). Divided by the total, a curve that rises fast means the class "
           r"lives in a few directions. Look: undivided, the class's total variance (the curve's end) falls with "
           r"depth; divided, the curves of the shipped ReLU run do not rise faster with depth until the last "
           r"layer.",
    "lsv_k": r"k-local support vectors: $$|\Gamma_n^k|$$ against $$k$$, one curve per depth $$n$$ (colour "
             r"bar); $$\Gamma^k$$ are the training points still badly classified by their $$k$$ nearest "
             r"neighbours (rule on the left). Log scale; a count of 0 is not drawn. Look: $$|\Gamma_n^k|$$ "
             r"falls with $$k$$ and with $$n$$.",
    "lsv_depth": r"$$|\Gamma_n^k|$$ against depth $$n$$ at the $$k$$ of the slider, one curve per run. Look: "
                 r"fewer and fewer points stay badly classified by their neighbours as the depth grows.",
    "alpha": r"Every ReLU_k run of the store: the network's test accuracy (last epoch) against "
             r"$$\alpha = k/K$$, the fraction of channels with a ReLU (the others are linear), one curve per "
             r"width $$K$$, dataset and number of epochs. Look: how little non-linearity the network needs.",
}

RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
RUN_DASHES = ("solid", "dashed", "dotted", "dotdash", "dashdot", "solid")
DEPTH_CMAP = "viridis"
FIRST_DEPTH, LAST_DEPTH = 2, 13
_OPTS = {"tools": ["hover"], "toolbar": "below", "framewise": True}
_SIZE = {"frame_width": 420, "frame_height": 250}
# The families carry a colour bar (about 90 pixels): a narrower frame keeps the figure as wide as the others.
_FAMILY_SIZE = {"frame_width": 350, "frame_height": 250}
RULE_TEXT = {"talk": "talk rule", "authors": "authors' rule"}
_LEGEND = {"legend_position": "top", "legend_cols": 2, "legend_opts": {"spacing": 18}}  # above the frame


# -- labels -------------------------------------------------------------------------------------------------

def rho_label(model_config: dict) -> str:
    """The non-linearity and width of a CNN13, "ReLU, K=32", "sign·√, K=32", "ReLU_k α=0.5 (k=16), K=32"."""
    rho, width, alpha = model_config.get("rho"), model_config.get("width"), model_config.get("alpha")
    if rho == "relu_k" and alpha is not None:
        k = math.floor(float(alpha) * int(width) + 1e-9) if width else None
        text = f"ReLU_k α={float(alpha):g}" + (f" (k={k})" if k is not None else "")
    else:
        text = {"relu": "ReLU", "sign_sqrt": "sign·√", "relu_k": "ReLU_k"}.get(rho, str(rho))
    return f"{text}, K={width}" if width else text


def run_label(result: dict) -> str:
    """How a run is named in legends and hover: ρ, K and the start of its id."""
    return f"{rho_label(result.get('model_config', {}))} · {short_id(result['run'])}"


def short_id(run_id: str) -> str:
    """"44da7665" for "cnn13-44da76659d19": enough to tell runs apart in a legend."""
    return run_id.split("-", 1)[-1][:8]


def run_style(index: int) -> tuple[str, str]:
    """(colour, dash) of the index-th run shown."""
    return RUN_COLOURS[index % len(RUN_COLOURS)], RUN_DASHES[index % len(RUN_DASHES)]


def class_index(result: dict, class_name: str | None) -> int | None:
    """The index of `class_name` in the run's classes, None when the run has no such class."""
    classes = list(result.get("classes", []))
    return classes.index(class_name) if class_name in classes else None


def shown_class(result: dict, class_name: str | None) -> tuple[int, str]:
    """(index, name) of the class shown for this run: `class_name`, or the run's first class when it has no
    such class (a synthetic-set run beside CIFAR-10 ones)."""
    index = class_index(result, class_name)
    index = 0 if index is None else index
    return index, list(result["classes"])[index]


def _depth_dim() -> hv.Dimension:
    return hv.Dimension("ly_depth", label="depth n", range=(FIRST_DEPTH - 0.5, LAST_DEPTH + 0.5))


def _padded(values, lo_bound=None, hi_bound=None, log=False, min_pad=0.0) -> tuple[float, float]:
    """A range around the finite `values` with 5 % margins (at least `min_pad`; ×1.3 on a log axis)."""
    a = np.asarray([v for v in np.ravel(values) if np.isfinite(v) and (v > 0 or not log)], float)
    if a.size == 0:
        return (1.0, 10.0) if log else (0.0, 1.0)
    lo, hi = float(a.min()), float(a.max())
    if log:  # 5 % of the decades shown on each side, at least a tenth of a decade
        pad = max(0.05 * math.log10(hi / lo), 0.1)
        return lo / 10 ** pad, hi * 10 ** pad
    pad = max(0.05 * (hi - lo), 1e-3 * max(abs(hi), 1.0), min_pad)
    lo, hi = lo - pad, hi + pad
    if lo_bound is not None:
        lo = max(lo, lo_bound)
    if hi_bound is not None:
        hi = min(hi, hi_bound)
    return lo, hi


def _empty(title: str, text: str, xdim: hv.Dimension, ydim: hv.Dimension, size=None) -> hv.Overlay:
    """A figure with no data that says why. Its NaN line (not drawn) is labelled: a figure must have its legend
    from its first frame (a legend that a later frame adds makes BokehJS fail, "cannot find a view for
    Legend")."""
    line = hv.Curve(([np.nan], [np.nan]), xdim, ydim, label="no run").opts(framewise=True)
    label = hv.Text(0.5, 0.5, text, fontsize=10).opts(framewise=True)
    return (line * label).opts(
        hv.opts.Curve(xlim=(0, 1), ylim=(0, 1), **(size or _SIZE), **_OPTS),
        hv.opts.Overlay(title=title, **_LEGEND))


def _run_legend(results: list[dict]) -> list[hv.Curve]:
    """Black lines in each run's dash, labelled by run: the legend of a figure coloured by depth (no data:
    a NaN point, not drawn). Present with one run too (see `_empty`)."""
    return [hv.Curve(([np.nan], [np.nan]), "ly_legend_x", "ly_legend_y", label=run_label(r)).opts(
        color="black", line_dash=run_style(i)[1], line_width=2, framewise=True) for i, r in enumerate(results)]


# -- separation ---------------------------------------------------------------------------------------------

def accuracy_figure(results: list[dict]) -> hv.Overlay:
    """Per run: the 1-NN (solid, with dots) and SVM (dashed; absent without the SVM part) test accuracies (%)
    against depth, and the network's own test accuracy as a dotted horizontal line, in the run's colour."""
    dd = _depth_dim()
    ad = hv.Dimension("ly_accuracy", label="test accuracy (%)")
    extra = [hv.Dimension("ly_run", label="run"), hv.Dimension("ly_measure", label="measure")]
    title = "Separation: test accuracy against depth\nsolid 1-NN · dashed SVM · dotted the network"
    if not results:
        return _empty(title, "no analysis to show", dd, ad)
    layers, values = [], []
    for i, result in enumerate(results):
        colour, _ = run_style(i)
        depths, label = np.asarray(result["depths"]), run_label(result)

        def series(y, measure, x=depths, label=label):
            y = 100 * np.asarray(y, float)
            values.extend(y.tolist())
            return {"ly_depth": x, "ly_accuracy": y, "ly_run": [label] * len(y), "ly_measure": [measure] * len(y)}

        nn1 = series(result["nn1_accuracy"], "1-NN")
        layers.append(hv.Curve(nn1, dd, [ad, *extra], label=label).opts(color=colour, line_width=2.5))
        layers.append(hv.Scatter(nn1, dd, [ad, *extra], label=label).opts(color=colour, size=6))
        if result.get("svm_accuracy") is not None:
            subset = result.get("svm_train_images") or result.get("svm_subset")
            svm = series(result["svm_accuracy"], f"SVM ({subset} training images)" if subset else "SVM")
            layers.append(hv.Curve(svm, dd, [ad, *extra]).opts(color=colour, line_width=2, line_dash="dashed"))
        if result.get("test_accuracy") is not None:
            ends = np.array([FIRST_DEPTH - 0.5, LAST_DEPTH + 0.5])
            own = series([result["test_accuracy"]] * 2, "the network's own", ends)
            layers.append(hv.Curve(own, dd, [ad, *extra]).opts(color=colour, line_width=2, line_dash="dotted"))
    lo, hi = _padded(values, -1.0, 101.0, min_pad=2.0)  # a line at 100 % is not drawn on the frame's edge
    return hv.Overlay(layers).opts(
        hv.opts.Curve(xlim=dd.range, ylim=(lo, hi), show_grid=True, **_SIZE, **_OPTS),
        hv.opts.Scatter(**_OPTS),
        hv.opts.Overlay(title=title, **_LEGEND))


# -- contraction --------------------------------------------------------------------------------------------

def intra_class_figure(results: list[dict], class_name: str | None) -> hv.Overlay:
    """Per run, the intra-class distance against depth: the chosen class thick (the run's first class when it
    has no such class), every other class thin, in the run's colour."""
    dd = _depth_dim()
    vd = hv.Dimension("ly_intra", label="mean distance within a class")
    title = ("Contraction: intra-class distance against depth\n"
             f"thick: {class_name or 'first class'} · thin: the other classes")
    if not results:
        return _empty(title, "no analysis to show", dd, vd)
    layers, values = [], []
    for i, result in enumerate(results):
        colour, _ = run_style(i)
        depths, label = np.asarray(result["depths"]), run_label(result)
        intra = np.asarray(result["intra_class"], float)  # (depths, classes)
        values.extend(intra.ravel().tolist())
        chosen, name = shown_class(result, class_name)
        others = [{"ly_depth": depths, "ly_intra": intra[:, c], "ly_class": f"{cname} ({label})"}
                  for c, cname in enumerate(result["classes"]) if c != chosen]
        if others:
            layers.append(hv.Contours(others, [dd, vd], vdims=[hv.Dimension("ly_class", label="class")]).opts(
                color=colour, alpha=0.35, line_width=1.2))  # one line per class (a Path is cut per segment)
        data = {"ly_depth": depths, "ly_intra": intra[:, chosen], "ly_class": [f"{name} ({label})"] * len(depths)}
        layers.append(hv.Curve(data, dd, [vd, hv.Dimension("ly_class", label="class")], label=label).opts(
            color=colour, line_width=3))
    lo, hi = _padded(values, 0.0)
    return hv.Overlay(layers).opts(
        hv.opts.Curve(xlim=dd.range, ylim=(lo, hi), show_grid=True, **_SIZE, **_OPTS),
        hv.opts.Contours(**_OPTS),
        hv.opts.Overlay(title=title, **_LEGEND))


def pca_curves(result: dict, class_name: str | None, normalise: bool) -> tuple[str, np.ndarray]:
    """(class shown, (depths, K) cumulated sorted eigenvalues of its covariance, divided by their total when
    `normalise`)."""
    chosen, name = shown_class(result, class_name)
    eigen = np.sort(np.asarray(result["pca"], float)[:, chosen, :], axis=-1)[:, ::-1]  # largest first
    cumulated = np.cumsum(eigen, axis=-1)
    if normalise:
        total = cumulated[:, -1:]
        cumulated = np.divide(cumulated, total, out=np.full_like(cumulated, np.nan), where=total > 0)
    return name, cumulated


def _depth_family(results: list[dict], curves: list[np.ndarray], xdim: hv.Dimension, ydim: hv.Dimension,
                  x_of) -> list:
    """One hv.Contours per run (its line style), one line per depth coloured by depth (one colour bar).
    Contours, not hv.Path: a colour-mapped Path is cut into one line per segment, which made the page's
    document twice as large; Contours keep one line per depth."""
    depth, run = hv.Dimension("ly_family_depth", label="depth n"), hv.Dimension("ly_run", label="run")
    layers = []
    for i, (result, family) in enumerate(zip(results, curves)):
        label = run_label(result)
        lines = [{xdim.name: x_of(row), ydim.name: row, "ly_family_depth": int(n), "ly_run": label}
                 for n, row in zip(np.asarray(result["depths"]), family)]
        layers.append(hv.Contours(lines, [xdim, ydim], vdims=[depth, run]).opts(
            color="ly_family_depth", cmap=DEPTH_CMAP, clim=(FIRST_DEPTH, LAST_DEPTH), line_width=2,
            line_dash=run_style(i)[1], colorbar=i == 0, colorbar_opts={"title": "depth n"}, **_OPTS))
    return layers


def pca_figure(results: list[dict], class_name: str | None, normalise: bool) -> hv.Overlay:
    """Per run and depth, the cumulated sorted eigenvalues of the chosen class's covariance against the number
    of components (divided by the total when `normalise`)."""
    xd = hv.Dimension("ly_components", label="number of principal components")
    yd = hv.Dimension("ly_pca", label="cumulated eigenvalues / total" if normalise else "cumulated eigenvalues")
    what = "/ total" if normalise else "(variance)"
    if not results:
        return _empty(f"Per-class PCA\ncumulated eigenvalues {what}, colour: depth", "no analysis to show", xd, yd,
                      _FAMILY_SIZE)
    shown = [pca_curves(r, class_name, normalise) for r in results]
    names = sorted({name for name, _ in shown}, key=[n for n, _ in shown].index)
    curves = [c for _, c in shown]
    layers = _depth_family(results, curves, xd, yd, lambda row: np.arange(1, len(row) + 1))
    widest = max(c.shape[-1] for c in curves)
    lo, hi = _padded(np.concatenate([c.ravel() for c in curves]), 0.0)
    title = f"Per-class PCA of {' / '.join(names)}\ncumulated eigenvalues {what}, colour: depth"
    ranges = {"xlim": (0.5, widest + 0.5), "ylim": (0.0, 1.03) if normalise else (lo, hi)}
    return hv.Overlay(layers + _run_legend(results)).opts(
        hv.opts.Contours(show_grid=True, **ranges, **_FAMILY_SIZE),
        hv.opts.Curve(**ranges),  # the legend's lines: the same ranges, or they reset the figure's
        hv.opts.Overlay(title=title, **_LEGEND))


# -- k-local support vectors --------------------------------------------------------------------------------

def lsv_counts(result: dict, rule: str) -> np.ndarray:
    """(depths, 31) |Γₙᵏ| of the run under `rule` (column k − 1 is |Γᵏ|)."""
    return np.asarray(result["lsv"][check_rule(rule)])


def lsv_at_k(result: dict, rule: str, k: int) -> np.ndarray:
    """|Γₙᵏ| for every depth n (the column k − 1 of the counts); k outside 1..31 raises ValueError."""
    return lsv_counts(result, rule)[:, check_k(k, K_MAX) - 1]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis over [lo, hi]: powers of ten, then 1-2-5 in each decade, then more, until there
    are at least three (Bokeh's own log ticker falls back to evenly spaced ticks over less than a few
    decades, and wrote 10000, 20000, …, 60000 on top of each other)."""
    if not (lo > 0 and hi > lo):
        return []
    ticks: list[float] = []
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 5, 7), (1, 1.5, 2, 3, 4, 5, 6, 8)):
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in mantissas if lo <= m * 10.0 ** e <= hi]
        if len(ticks) >= 3:
            break
    return ticks


def _positive(values) -> np.ndarray:
    """Counts for a log axis: 0 becomes NaN (not drawn)."""
    values = np.asarray(values, float)
    return np.where(values > 0, values, np.nan)


def lsv_k_figure(results: list[dict], rule: str) -> hv.Overlay:
    """Per run and depth, |Γₙᵏ| against k = 1..31 (log scale), colour = depth, line style = run."""
    check_rule(rule)
    xd = hv.Dimension("ly_k", label="k (neighbours)")
    yd = hv.Dimension("ly_lsv", label="|Γᵏ| (training points)")
    title = f"k-local support vectors |Γᵏ| against k\n{RULE_TEXT[rule]}, colour: depth"
    if not results:
        return _empty(title, "no analysis to show", xd, yd, _FAMILY_SIZE)
    curves = [_positive(lsv_counts(r, rule)) for r in results]
    layers = _depth_family(results, curves, xd, yd, lambda row: np.arange(1, len(row) + 1))
    lo, hi = _padded(np.concatenate([c.ravel() for c in curves]), log=True)
    return hv.Overlay(layers + _run_legend(results)).opts(
        hv.opts.Contours(xlim=(0.5, K_MAX + 0.5), ylim=(lo, hi), logy=True, show_grid=True,
                         yticks=log_ticks(lo, hi), **_FAMILY_SIZE),
        hv.opts.Curve(xlim=(0.5, K_MAX + 0.5), ylim=(lo, hi), logy=True),
        hv.opts.Overlay(title=title, **_LEGEND))


def lsv_depth_figure(results: list[dict], rule: str, k: int) -> hv.Overlay:
    """Per run, |Γᵏ| against depth at one k (log scale), in the run's colour. k outside 1..31 raises
    ValueError."""
    k = check_k(k, K_MAX)
    check_rule(rule)
    dd = _depth_dim()
    yd = hv.Dimension("ly_lsv_k", label="|Γᵏ| (training points)")
    title = f"|Γᵏ| against depth at k = {k}\n{RULE_TEXT[rule]}"
    if not results:
        return _empty(title, "no analysis to show", dd, yd)
    layers, values = [], []
    for i, result in enumerate(results):
        colour, _ = run_style(i)
        label = run_label(result)
        counts = lsv_at_k(result, rule, k)
        y = _positive(counts)
        values.extend(y.tolist())
        data = {"ly_depth": np.asarray(result["depths"]), "ly_lsv_k": y, "ly_count": counts.astype(int),
                "ly_run": [label] * len(y)}
        vdims = [yd, hv.Dimension("ly_count", label="|Γᵏ|"), hv.Dimension("ly_run", label="run")]
        layers.append(hv.Curve(data, dd, vdims, label=label).opts(color=colour, line_width=2.5))
        layers.append(hv.Scatter(data, dd, vdims, label=label).opts(color=colour, size=7))
    lo, hi = _padded(values, log=True)
    return hv.Overlay(layers).opts(
        hv.opts.Curve(xlim=dd.range, ylim=(lo, hi), logy=True, show_grid=True, yticks=log_ticks(lo, hi), **_SIZE,
                      **_OPTS),
        hv.opts.Scatter(logy=True, **_OPTS),
        hv.opts.Overlay(title=title, **_LEGEND))


# -- the network against α ----------------------------------------------------------------------------------

ALPHA_HOW_TO = ("No ReLU_k run in the store yet. Train some, e.g.\n"
                "explorer train cnn13 --rho relu_k --alpha 0.5\n(one per α, same --width and --epochs)")


def alpha_groups(points: list[dict]) -> dict[str, list[dict]]:
    """The α-runs grouped by (dataset, width K, epochs), each group sorted by α: label → points. A point is
    {"run", "dataset", "width", "alpha", "accuracy" (fraction), "epochs"}."""
    groups: dict[tuple, list[dict]] = {}
    for p in points:
        groups.setdefault((p["dataset"], int(p["width"]), int(p["epochs"])), []).append(p)
    return {f"K={K}, {dataset}, {epochs} epoch{'s' if epochs != 1 else ''}": sorted(group, key=lambda p: p["alpha"])
            for (dataset, K, epochs), group in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1],
                                                                                        item[0][2]))}


def alpha_figure(points: list[dict]) -> hv.Overlay:
    """The network's own test accuracy (%) against α = k/K for every ReLU_k run, one curve per group of
    `alpha_groups`; with none, says how to train some."""
    xd = hv.Dimension("ly_alpha", label="α = k/K (channels with a ReLU)")
    yd = hv.Dimension("ly_net_accuracy", label="network test accuracy (%)")
    title = "The network against α (ReLU_k runs of the store)"
    if not points:
        line = hv.Curve(([np.nan], [np.nan]), xd, yd, label="no ReLU_k run").opts(framewise=True)
        text = hv.Text(0.5, 50, ALPHA_HOW_TO, fontsize=10).opts(framewise=True)
        return (line * text).opts(hv.opts.Curve(xlim=(-0.05, 1.05), ylim=(0, 100), show_grid=True, **_SIZE,
                                                **_OPTS),
                                  hv.opts.Overlay(title=title, **_LEGEND))
    layers, values = [], []
    extra = [hv.Dimension("ly_alpha_run", label="run"), hv.Dimension("ly_alpha_epochs", label="epochs")]
    for i, (label, group) in enumerate(alpha_groups(points).items()):
        colour, _ = run_style(i)
        data = {"ly_alpha": [p["alpha"] for p in group], "ly_net_accuracy": [100 * p["accuracy"] for p in group],
                "ly_alpha_run": [p["run"] for p in group], "ly_alpha_epochs": [int(p["epochs"]) for p in group]}
        values.extend(data["ly_net_accuracy"])
        layers.append(hv.Curve(data, xd, [yd, *extra], label=label).opts(color=colour, line_width=2))
        layers.append(hv.Scatter(data, xd, [yd, *extra], label=label).opts(color=colour, size=8))
    lo, hi = _padded(values, -1.0, 101.0, min_pad=2.0)
    return hv.Overlay(layers).opts(
        hv.opts.Curve(xlim=(-0.05, 1.05), ylim=(lo, hi), show_grid=True, **_SIZE, **_OPTS),
        hv.opts.Scatter(**_OPTS),
        hv.opts.Overlay(title=title, **_LEGEND))
