"""Scoreboard page: every reference figure of science.md §6 (and the figures of its text the project can
measure) beside the project's own measurement, its configuration, the command that reproduces it, the machine
it ran on and the copy of CIFAR-10 it used (`explorer.analysis.scoreboard`, drawn by
`explorer.views.scoreboard`). Reads the stores only: nothing is trained or computed here."""
from __future__ import annotations

import html
import threading
import traceback

import panel as pn
import param

from explorer.analysis import scoreboard as sa
from explorer.views import scoreboard as sv

from .base import Page, figure

INTRO = (
    "## Scoreboard\n"
    "The figures the papers and the talk report (`science.md` §6, and a few figures of its text), each beside "
    "what this project measured: the best matching run, classification result, small-data grid or stored "
    "analysis, its configuration, the exact command that reproduces it (it gives back the same run id), and "
    "the machine it ran on. A figure never measured says **not yet run** and gives the command that measures "
    "it; one that needs a dataset or a model the project does not have says **not reproducible here** and "
    "why. Commands read CIFAR-10 from `EXPLORER_DATA` (or add `--data DIR`).")
LEGEND = (
    "**Source of a figure**: [abs] the talk or a paper's abstract, [code] the authors' code, "
    "**reported (unverified)** a figure recalled from a paper's text and not checked against it ([mem] in "
    "`science.md`).\n\n"
    "**CIFAR-10 copy**: the copy a measurement ran on, as its run recorded it (official release, JPEG-derived "
    "copy, unrecognised copy). *presumably …*: an older run that did not record it, judged by the copy "
    "configured now. The JPEG-derived copy's pixels carry JPEG artefacts: accuracies on it can differ "
    "slightly from published CIFAR-10 figures.\n\n"
    "The Caltech-101 and CIFAR-100 figures of the roto-translation scattering are not reproducible here; the "
    "same pipeline's CIFAR-10 result stands on its own row, against the paper's CIFAR-10 figure.")
TABLE_HEIGHT = 760  # pixels: the table scrolls inside, so that a row's details (under it) stay near
COMMAND_STYLE = ("white-space: pre-wrap; word-break: break-all; background: #f3f4f6; color: #111; padding: 8px; "
                 "border-radius: 4px; font-size: 13px")
READ_ERROR = "The stores could not be read: {}. The table shows what was read before."


class ScoreboardPage(Page):
    title = "Scoreboard"
    errors_leave_plots_stale = False  # a store that cannot be read says so; the table keeps what it had

    only_measured = param.Boolean(False, label="Only the figures measured here")
    text_figures = param.Boolean(True, label="Also the figures of science.md's text (not in §6's table)")
    board = param.Parameter(default=None, precedence=-1, doc="The current sa.Scoreboard (None: not read yet).")

    def __init__(self, **params):
        super().__init__(**params)
        self._reading = threading.Lock()
        self.reload_button = pn.widgets.Button(label="Reload the stores", sizing_mode="stretch_width")
        self.reload_button.on_click(lambda *_: self.reload())
        self.counts = pn.pane.Markdown("Reading the stores…", sizing_mode="stretch_width")
        self.table = pn.widgets.Tabulator(
            sv.table_frame([]), disabled=True, selectable=1, show_index=False, sortable=False,
            sizing_mode="stretch_width", layout="fit_data_table", widths=dict(sv.WIDTHS), titles=dict(sv.TITLES),
            formatters={name: {"type": "textarea"} for name in sv.WRAPPED}, frozen_columns=["figure"],
            header_align="left", max_height=TABLE_HEIGHT, configuration={"maxHeight": f"{TABLE_HEIGHT}px"},
            stylesheets=[sv.TABLE_CSS])
        self.table.style.apply(sv.status_styles, subset=["status"])
        self.table.param.watch(self._on_select, "selection")
        self.details = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.chart_pane = pn.pane.HoloViews(sv.comparison_chart([]), linked_axes=False)
        self.chart_frame = figure(self.chart_pane, sv.CAPTIONS["chart"], width=900)
        self.controls = pn.Column(
            pn.widgets.Checkbox.from_param(self.param.only_measured),
            pn.widgets.Checkbox.from_param(self.param.text_figures),
            self.reload_button,
            pn.pane.Markdown("The page reads the run store, the classification results, the small-data summaries "
                             "and the analyses stored beside the runs when it opens; *Reload* reads them again "
                             "(after a training job, say).", styles={"font-size": "12px"}),
            sizing_mode="stretch_width")
        self.param.watch(self._show, ["only_measured", "text_figures", "board"])
        self.reload()

    # -- reading -----------------------------------------------------------------------------------------
    @staticmethod
    def read() -> sa.Scoreboard:
        """Everything stored (`analysis.scoreboard.read_scoreboard`): reads files only."""
        return sa.read_scoreboard()

    def reload(self) -> None:
        """Read the stores again: in a thread when served (the first listing of a store checks every run's
        weights against its model: seconds), at once in a notebook or a test."""
        if not self.served:
            self._apply(*self._read())
            return
        self.table.loading = True
        self.reload_button.disabled = True

        def work():
            with self._reading:
                result = self._read()
            self.in_session(lambda: self._apply(*result))

        threading.Thread(target=work, name="scoreboard-read", daemon=True).start()

    def _read(self) -> tuple[sa.Scoreboard | None, str | None]:
        try:
            return self.read(), None
        except Exception as exc:  # noqa: BLE001  (a damaged store must not take the page down)
            traceback.print_exc()
            return None, READ_ERROR.format(f"{type(exc).__name__}: {exc}")

    def _apply(self, board: sa.Scoreboard | None, error: str | None) -> None:
        self.table.loading = False
        self.reload_button.disabled = False
        self.show_error(error)
        if board is not None:
            self.board = board
            skipped = board.skipped
            self.show_note(None if not skipped else
                           f"Left out ({len(skipped)}): " + "; ".join(skipped[:6]) + (" …" if len(skipped) > 6 else ""))

    # -- showing -----------------------------------------------------------------------------------------
    def shown_rows(self) -> list[dict]:
        """The rows the table shows (`ScoreRow.as_dict`), after the two filters."""
        if self.board is None:
            return []
        rows = [r.as_dict() for r in self.board.rows]
        if not self.text_figures:
            rows = [r for r in rows if r["in_table"]]
        if self.only_measured:
            rows = [r for r in rows if r["status"] == "measured"]
        return rows

    def _show(self, *_) -> None:
        rows = self.shown_rows()
        self._rows = rows
        self.table.selection = []
        self.table.value = sv.table_frame(rows)
        self.chart_pane.object = sv.comparison_chart(rows)
        every = [r.as_dict() for r in self.board.rows] if self.board is not None else []
        count = {s: sum(r["status"] == s for r in every) for s in sa.STATUSES}
        self.counts.object = (f"**{count['measured']}** figures measured here, **{count['not yet run']}** not yet "
                              f"run, **{count['not reproducible here']}** not reproducible here "
                              f"({len(rows)} shown).")
        self.details.object = "Click a row for its command and configuration in full." if rows else (
            "No figure is measured here yet: untick *Only the figures measured here* to see the commands that "
            "measure them." if self.only_measured else "")

    def _on_select(self, event) -> None:
        rows = getattr(self, "_rows", [])
        if not event.new or event.new[0] >= len(rows):
            self.details.object = "Click a row for its command and configuration in full." if rows else ""
            return
        self.details.object = details_markdown(rows[event.new[0]])

    def plot_panes(self) -> list[pn.pane.HoloViews]:
        return [self.chart_pane]

    # -- layout ------------------------------------------------------------------------------------------
    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(INTRO, sizing_mode="stretch_width"), self.alert, self.note, self.counts,
            self.table, pn.pane.Markdown(f"*{sv.CAPTIONS['table']}*", styles={"font-size": "12px"},
                                         sizing_mode="stretch_width"),
            self.details, self.chart_frame,
            pn.pane.Markdown(LEGEND, sizing_mode="stretch_width", styles={"font-size": "13px"}),
            sizing_mode="stretch_width")


def _text(value) -> str:
    """Plain text for Markdown: escaped, and "science.md" as code (Markdown would link it as a web address)."""
    return html.escape(str(value)).replace("science.md", "`science.md`")


def details_markdown(row: dict) -> str:
    """One row in full: the figure, what was measured, the command (wrapped, dark on light: the template's
    code blocks are dark on dark), the rest."""
    lines = [f"#### {_text(row['result'])}: {_text(row['measure'])}",
             f"Reported **{_text(row['reported'])}** ({_text(row['source'])}, `science.md` {row['where']}); "
             f"**{row['status']}**" + (f": **{_text(row['measured'])}**" if row.get("measured") else "") + "."]
    if row.get("command"):
        lines += ["Command that reproduces it:", f'<pre style="{COMMAND_STYLE}">{html.escape(row["command"])}</pre>']
    for name, label in (("configuration", "Configuration"), ("machine", "Machine"), ("run", "Run, result or grid"),
                        ("dataset", "CIFAR-10 copy"), ("note", "Note")):
        if row.get(name):
            lines.append(f"**{label}**: {_text(row[name])}")
    if row.get("runs") and len(row["runs"]) > 1:
        lines.append(f"**Runs**: {', '.join(row['runs'])}")
    if row.get("others"):
        lines.append(f"{row['others']} other matching measurement{'s' if row['others'] > 1 else ''} not shown.")
    return "\n\n".join(lines)
