"""Figures of the scoreboard page (`explorer.analysis.scoreboard`): the table of reference figures beside the
project's measurements, and a bar chart of reported against measured accuracies.

Rows arrive as `ScoreRow.as_dict()` dicts. The table is a pandas DataFrame (the page shows it in a Panel
Tabulator, which wraps long commands inside their cells); the chart is pure HoloViews, no Panel.
"""
from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd

# (field of a row, column title, width in pixels, wraps). The first column stays in view while the table
# scrolls sideways.
COLUMNS = (
    ("figure", "figure", 190, True),
    ("reported", "reported", 95, True),
    ("source", "source", 135, True),
    ("status", "status", 125, True),
    ("measured", "measured here", 150, True),
    ("difference", "Δ (points)", 90, False),
    ("dataset", "CIFAR-10 copy", 125, True),
    ("command", "command that reproduces it", 380, True),
    ("configuration", "configuration", 330, True),
    ("machine", "machine", 180, True),
    ("run", "run, result or grid", 175, True),
    ("note", "note", 340, True),
)
# Column titles wrap rather than end in "…" (Tabulator cuts them by default).
TABLE_CSS = ".tabulator-col-title { white-space: normal !important; text-overflow: clip !important; }"
TITLES = {name: title for name, title, _, _ in COLUMNS}
WIDTHS = {name: width for name, _, width, _ in COLUMNS}
WRAPPED = [name for name, _, _, wraps in COLUMNS if wraps]
STATUS_COLOURS = {"measured": "#d9f2d9", "not yet run": "#fff3cd", "not reproducible here": "#e9ecef"}
BAR_COLOURS = {"reported": "#9aa5b1", "measured": "#1f77b4"}

CAPTIONS = {
    "chart": "Reported (grey) against measured here (blue), for every measured accuracy of the table (the "
             "thresholding row, a change in points, is in the table only). Look: the gap is the run's schedule, "
             "model size and dataset copy as much as the method; the table's note says which.",
    "table": "One row per reported figure. Status: measured, not yet run (the command measures it) or not "
             "reproducible here (why). Δ = measured − reported. Click a row for its command and configuration "
             "in full. The first column stays in view when the table scrolls sideways.",
}


def figure_label(row: dict) -> str:
    return f"{row['result']}: {row['measure']}"


def difference_text(row: dict) -> str:
    value = row.get("difference")
    if value is None or not np.isfinite(value):
        return ""
    return f"{value:+.1f}".replace("-", "−")


def table_frame(rows: list[dict]) -> pd.DataFrame:
    """The table's DataFrame, columns in `COLUMNS` order, every cell text."""
    data = []
    for row in rows:
        values = {"figure": figure_label(row), "difference": difference_text(row)}
        data.append({name: values.get(name, "" if row.get(name) is None else str(row.get(name)))
                     for name, _, _, _ in COLUMNS})
    return pd.DataFrame(data, columns=[name for name, _, _, _ in COLUMNS])


def status_styles(column: pd.Series) -> list[str]:
    """Cell styles of the status column (a pandas Styler's ``apply``)."""
    return [f"background-color: {STATUS_COLOURS[v]}; color: #212529" if v in STATUS_COLOURS else "" for v in column]


def comparison_chart(rows: list[dict], width: int = 760) -> hv.Bars:
    """Grouped bars: for every measured accuracy (unit "%"), the reported figure beside the measured one."""
    data = []
    for r in rows:
        value = r.get("measured_value")
        if r.get("status") == "measured" and r.get("unit") == "%" and value is not None and np.isfinite(value):
            short = r.get("short") or r["key"]
            data += [(short, "reported", float(r["reported_value"])), (short, "measured", float(value))]
    title = "Reported against measured accuracy (%)"
    if not data:
        data = [("nothing measured yet", "reported", 0.0), ("nothing measured yet", "measured", 0.0)]
        title += ": nothing measured yet"
    kd = [hv.Dimension("sb_figure", label="figure"),
          hv.Dimension("sb_which", label="which", values=list(BAR_COLOURS))]  # reported, then measured
    yd = hv.Dimension("sb_accuracy", label="accuracy (%)", range=(0, 100))
    return hv.Bars(data, kdims=kd, vdims=[yd]).opts(
        color=hv.dim("sb_which").categorize(BAR_COLOURS, default="#7f7f7f"), tools=["hover"], framewise=True,
        frame_width=width, frame_height=260, ylim=(0, 100), show_grid=True, xrotation=30, toolbar="below",
        show_legend=False, title=title)
