"""Results: the report tables of a grid or run directory, a language-pair heatmap, language bias and loss curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState

from ...engine.common.vocabulary import EXPORT_FORMAT_FILES
from ...engine.evaluation.results import SETTING_NAME, Setting
from ...engine.report.export import format_value
from ...engine.report.table_rows import Table
from ..backend import display_path, error_text
from ..components.heatmap import Heatmap
from ..components.log_pane import short_cell
from ..components.loss_chart import LossChart
from ..components.report_table import ReportTable
from ..report import CellInfo, GroupView, Report, number
from .base import SectionScreen
from .export import ExportScreen, absolute, written_text

TABS = ("summary", "langs", "pairs", "bias", "paper", "loss", "cells")
VERDICT_STYLE = {"reproduced": "bold green", "not reproduced": "bold red"}  # inconclusive: yellow


def claims_text(claims: Table | None) -> Text:
    """The claims table as one block per claim (claim, verdict; then the deciding comparison, its Δ ± 95% CI,
    Holm-adjusted p, seeds and n), wrapped to the screen's width instead of cut."""
    if claims is None:
        return Text("claims: the grid needs X-X-mono, X-Y and hybrid cells (or an α sweep with α = 0.5)", style="dim")
    text = Text()
    text.append(f"{claims.title}\n", style="bold")
    for row in claims.rows:
        value = dict(zip(claims.columns, row, strict=True))
        text.append(f"{value['claim']}  ", style="bold")
        verdict = str(value["verdict"])
        text.append(f"{verdict}\n", style=VERDICT_STYLE.get(verdict, "bold yellow"))
        text.append(f"  {value['decided by'] or 'no comparison'}\n", style="italic")
        parts = [f"Δ {format_value(value['Δ ± 95% CI'])} (95% CI)"] if value["Δ ± 95% CI"] is not None else []
        parts += [f"p (Holm) {format_value(value['p (Holm)'])}", f"seeds {format_value(value['seeds'])}",
                  f"n {format_value(value['n'])}"]  # fmt: skip
        text.append("  " + " · ".join(parts) + "\n")
    return text


def alpha_curves(alpha: Table | None) -> dict[str, list[tuple[float, float]]]:
    """An alpha table's mono / cross / multi mAP as curves over alpha (means over seeds)."""
    if alpha is None:
        return {}
    out: dict[str, list[tuple[float, float]]] = {}
    for column in ("mono mAP", "cross mAP", "multi mAP"):
        i = alpha.columns.index(column)
        points = [(float(str(row[0])), v) for row in alpha.rows if (v := number(row[i])) is not None]
        out[column.split()[0]] = points
    return out


class ResultsScreen(SectionScreen):
    SECTION = "results"
    HELP = (
        "The tables of one grid (or run) directory, for one backbone and evaluation dataset at a time, in seven "
        "views ('v' steps through them, or click a tab): Summary (strategy × setting: mean ± 95% CI over seeds, "
        "p-values against the untrained baseline), Per language (mAP per query language; 'm' switches mono / "
        "multi; sort: click a header or press s), Pairs (the language-pair matrix as a heatmap, rows: query "
        "language, columns: candidate language; ']' / '[' step through the strategies), Bias (language bias), "
        "Paper (2408.10536's claims with a verdict each, and these cells beside its published numbers), Loss (the "
        "loss curves) and Cells (every cell of the grid with its status and why it has no results). 'c' narrows "
        "everything to one cell, 'g' steps through backbones / datasets, 'r' reloads; 'x' exports the report as "
        "md, csv, json or LaTeX into the directory."
    )
    # the footer shows the keys that change the view; the others are in Help (?) and in the views' captions, so
    # that Help and Theme still fit an 80-column footer
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "next_view", "View"),
        Binding("s", "sort", "Sort", show=False),
        Binding("m", "toggle_setting", "Mono/multi"),
        Binding("right_square_bracket", "strategy(1)", "Strategy", key_display="]", show=False),
        Binding("left_square_bracket", "strategy(-1)", "Prev strategy", key_display="[", show=False),
        Binding("c", "next_scope", "Cell", show=False),
        Binding("g", "next_group", "Backbone/dataset", show=False),
        Binding("x", "export", "Export"),
        Binding("r", "reload", "Reload", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None
        self.base: Report | None = None  # the opened directory
        self.report: Report | None = None  # what is shown: the directory, or one of its cells
        self.scope: str | None = None  # None: every cell; else a cell id
        self.group_index = 0
        self.strategy_index = 0
        self.setting: Setting = "mono"
        self.loading = False
        self.stale = False  # the grid changed while it was loading: load it again once this load ends

    def compose_body(self) -> ComposeResult:
        yield Static("", id="results-title")
        yield Static("", id="export-status")  # the last export's file, in full (shown once there is one)
        with TabbedContent(id="results-tabs", initial="tab-summary"):
            with TabPane("Summary", id="tab-summary"), VerticalScroll():
                yield ReportTable(id="summary-table")
                yield Static("", id="summary-notes", classes="notes")
                yield ReportTable(id="significance-table")
                yield Static("", id="significance-notes", classes="notes")
            with TabPane("Per language", id="tab-langs"), VerticalScroll():
                yield Static("", id="langs-caption", classes="caption")
                yield ReportTable(id="langs-table")
            with TabPane("Pairs", id="tab-pairs"), VerticalScroll():
                yield Static("", id="pairs-caption", classes="caption")
                yield Heatmap(id="heatmap")
            with TabPane("Bias", id="tab-bias"), VerticalScroll():
                yield ReportTable(id="bias-table")
                yield Static("", id="bias-caption", classes="caption")
                yield ReportTable(id="bias-lang-table")
            with TabPane("Paper", id="tab-paper"), VerticalScroll(id="paper-scroll"):
                yield Static("", id="claims-view")  # one wrapped block per claim: readable at 80 columns
                yield Static("", id="claims-notes", classes="notes")
                yield ReportTable(id="power-table")
                yield Static("", id="power-notes", classes="notes")
                yield LossChart("mAP", x_label="α", empty="not an α sweep", id="alpha-chart")
                yield ReportTable(id="alpha-table")
                yield Static("", id="alpha-notes", classes="notes")
                yield ReportTable(id="compare-table")
                yield Static("", id="compare-notes", classes="notes")
            with TabPane("Loss", id="tab-loss"):
                yield LossChart(id="results-loss")
            with TabPane("Cells", id="tab-cells"), VerticalScroll():
                yield ReportTable(id="cells-table")
        with Horizontal(id="results-empty"):
            yield Static(
                "No results open. Open a run from History (4), or launch a grid from Setup (1).", id="empty-text"
            )

    def on_mount(self) -> None:
        self.query_one("#export-status").display = False
        self._show()
        if self.hbt.pending_results is not None:
            path, self.hbt.pending_results = self.hbt.pending_results, None
            self.open(path)

    # ---- loading -----------------------------------------------------------------------------------------------

    def open(self, path: Path, scope: str | None = None) -> None:
        """Show the results of a grid or run directory (loaded in a worker thread)."""
        if path != self.path:
            self.group_index = self.strategy_index = 0
            self.base = None
            self.query_one("#export-status").display = False  # the last export was another directory's
        self.path, self.scope = path, scope
        self.loading = True
        self._title()
        self._load(path, scope)

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def _load(self, path: Path, scope: str | None) -> tuple[Report, Report]:
        base = self.base if self.base is not None and self.base.path == path else self.hbt.backend.load_report(path)
        if scope is None:
            return base, base
        cell = next(c for c in base.cells if c.id == scope)
        return base, self.hbt.backend.load_report(cell.path)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "export":
            if event.state == WorkerState.SUCCESS:
                fmt, written, replaced = event.worker.result  # type: ignore[misc]
                self.hbt.last_export = written
                text = written_text(fmt, absolute(written), replaced)
                status = self.query_one("#export-status", Static)
                status.update(text)
                status.display = True
                self.notify(text.plain, title="export", timeout=15)
            elif event.state == WorkerState.ERROR:
                self.hbt.show_error(event.worker.error, title="export failed")
            return
        if event.worker.group != "report":
            return
        if event.state == WorkerState.SUCCESS:
            base, report = event.worker.result  # type: ignore[misc]
            self.base, self.report, self.loading = base, report, False
            self._show()
            if self.stale and self.path is not None:
                self.stale = False
                self.follow(self.path)
        elif event.state == WorkerState.ERROR:
            self.loading = False
            self.report = None
            error = event.worker.error
            self.hbt.show_error(error, title="cannot open results", log=False)
            self.query_one("#empty-text", Static).update(
                Text.assemble(("Could not open the results: ", "bold red"), error_text(error) if error else "")
            )
            self._show()
        # CANCELLED: a newer load of the same screen replaced this one (an exclusive worker); what is shown stays
        # until it ends: hiding the tabs meanwhile would move the focus into the Summary tab and pull the view back

    # ---- rendering ---------------------------------------------------------------------------------------------

    @property
    def group(self) -> GroupView | None:
        if self.report is None or not self.report.groups:
            return None
        return self.report.groups[self.group_index % len(self.report.groups)]

    @property
    def strategy(self) -> str | None:
        group = self.group
        if group is None or not group.strategies:
            return None
        return group.strategies[self.strategy_index % len(group.strategies)]

    def _title(self) -> None:
        title = self.query_one("#results-title", Static)
        if self.path is None:
            title.update("")
            return
        text = Text.assemble(
            (self.base.name if self.base else self.path.name, "bold"), "  ", (display_path(self.path), "cyan")
        )
        if self.loading:
            text.append("  loading…", style="italic")
        elif self.group is not None and self.report is not None:
            groups = len(self.report.groups)
            text.append(f"  {self.group.title}")
            if groups > 1:
                text.append(f" ({self.group_index % groups + 1}/{groups}, g)", style="dim")
            done = len(self.base.complete) if self.base else 0
            total = len(self.base.cells) if self.base else 0
            scope = (
                f"all cells ({done}/{total} with results)" if self.scope is None else f"cell {short_cell(self.scope)}"
            )
            text.append(f"  · {scope}", style="dim")
        title.update(text)

    def _show(self) -> None:
        has = self.report is not None
        tabbed = self.query_one("#results-tabs", TabbedContent)
        appears = has and not tabbed.display
        tabbed.display = has
        if appears and tabbed.active:
            # Textual places the bar under the active tab when the (until now hidden) tabs are first laid out, before
            # their labels have a width: the bar stayed 0 wide under "Summary". Showing the tab again re-places it.
            self.call_after_refresh(tabbed.show_tab, tabbed.active)
        self.query_one("#results-empty").display = not has
        self._title()
        self.refresh_bindings()
        if self.report is None:
            return
        group = self.group
        self._show_cells(self.base or self.report)
        if group is None:
            self.query_one("#summary-notes", Static).update(Text(self.report.message, style="yellow"))
            for wid in ("#summary-table", "#significance-table", "#langs-table", "#bias-table", "#bias-lang-table",
                        "#power-table", "#alpha-table", "#compare-table"):  # fmt: skip
                self.query_one(wid, ReportTable).show([], [])
            self.query_one("#claims-view", Static).update("")
            self.query_one(Heatmap).set_matrix([], [], [])
            self.query_one("#results-loss", LossChart).set_curves(self.report.loss_curves())
            return
        self._show_summary(group)
        self._show_langs(group)
        self._show_pairs(group)
        self._show_bias(group)
        self._show_paper(group)
        self.query_one("#results-loss", LossChart).set_curves(self.report.loss_curves(group.backbone))

    def _show_summary(self, group: GroupView) -> None:
        table = self.query_one("#summary-table", ReportTable)
        if group.summary is not None:
            table.show(group.summary.columns, group.summary.rows)
            self.query_one("#summary-notes", Static).update(Text("\n".join(group.summary.notes), style="dim"))
        sig = group.significance
        sig_table = self.query_one("#significance-table", ReportTable)
        sig_table.display = sig is not None
        self.query_one("#significance-notes").display = sig is not None
        if sig is not None:
            sig_table.show(sig.columns, sig.rows)
            self.query_one("#significance-notes", Static).update(Text(sig.notes[0], style="dim"))

    def _show_langs(self, group: GroupView) -> None:
        t = group.per_language.get(self.setting)
        other: Setting = "multi" if self.setting == "mono" else "mono"
        self.query_one("#langs-caption", Static).update(
            Text.assemble(
                (f"{SETTING_NAME[self.setting]} mAP per query language", "bold"),
                (f"   m: {SETTING_NAME[other]}   s / click a header: sort", "dim"),
            )
        )
        table = self.query_one("#langs-table", ReportTable)
        if t is None:
            table.show([], [])
        else:
            table.show(t.columns, t.rows)

    def _show_pairs(self, group: GroupView) -> None:
        strategy = self.strategy
        heatmap = self.query_one(Heatmap)
        caption = self.query_one("#pairs-caption", Static)
        if strategy is None:
            heatmap.set_matrix([], [], [])
            caption.update("")
            return
        t = group.pairs[strategy]
        langs = t.columns[1:]
        rows = [str(r[0]) for r in t.rows]
        values = [[number(v) for v in r[1:]] for r in t.rows]
        every = [number(v) for table in group.pairs.values() for r in table.rows for v in r[1:]]
        present = [v for v in every if v is not None]
        scale = (min(present), max(present)) if present else None
        heatmap.set_matrix(rows, langs, values, "diagonal: monolingual · one colour scale for every strategy", scale)
        pills = Text()
        for s in group.strategies:
            if s == strategy:
                pills.append(f"▸{s} ", style="reverse bold")
            else:
                pills.append(f" {s} ", style="dim")
            pills.append(" ")
        caption.update(Text.assemble(("mAP per language pair  ", "bold"), pills, ("  [ ]: strategy", "dim")))

    def _show_bias(self, group: GroupView) -> None:
        bias = group.bias
        table = self.query_one("#bias-table", ReportTable)
        if bias is not None:
            table.show(bias.columns, bias.rows)
        strategy = self.strategy
        lang_table = self.query_one("#bias-lang-table", ReportTable)
        caption = self.query_one("#bias-caption", Static)
        if strategy is None or self.report is None:
            lang_table.show([], [])
            caption.update("")
            return
        columns, rows = self.report.bias_per_language(group, strategy)
        lang_table.show(columns, rows)
        caption.update(
            Text.assemble(
                (f"per query language: ▸{strategy}", "bold"),
                ("   [ ]: strategy · own_excess@10 > 0: the top 10 favours the query's language", "dim"),
            )
        )

    def _show_paper(self, group: GroupView) -> None:
        """2408.10536: verdicts on its claims (one wrapped block each), what the grid can detect, an alpha sweep's
        curves, and this group's cells beside the paper's published numbers (PageDown scrolls down to them)."""
        self.query_one("#claims-view", Static).update(claims_text(group.claims))
        claims_notes = "\n".join(group.claims.notes) if group.claims else ""
        self.query_one("#claims-notes", Static).update(Text(claims_notes, style="dim"))
        for name, t, empty in (
            ("power", group.power, "no trained arm with 2 seeds: no minimum detectable effect"),
            ("alpha", group.alpha, ""),
            ("compare", group.compare, "the paper publishes no numbers for this dataset"),
        ):
            self.query_one(f"#{name}-table", ReportTable).show(t.columns if t else [], t.rows if t else [])
            notes = (f"{t.title}\n" + "\n".join(t.notes)) if t else empty
            self.query_one(f"#{name}-notes", Static).update(Text(notes, style="dim"))
        chart = self.query_one("#alpha-chart", LossChart)
        chart.display = self.query_one("#alpha-table").display = group.alpha is not None
        self.query_one("#alpha-notes").display = group.alpha is not None
        chart.set_curves(alpha_curves(group.alpha))

    def _show_cells(self, report: Report) -> None:
        columns = ["cell", "backbone", "strategy", "seed", "status", "note"]
        rows: list[list[Any]] = []
        for c in report.cells:
            marker = "▶ " if c.id == self.scope else ""
            rows.append([marker + c.id, c.backbone, c.strategy, c.seed, c.status, c.problem or ""])
        self.query_one("#cells-table", ReportTable).show(columns, rows)

    # ---- actions -----------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("sort", "toggle_setting", "strategy", "next_scope", "export", "next_group", "next_view"):
            return True if self.report is not None and self.group is not None else None
        if action == "reload":
            return True if self.path is not None else None
        return True

    def _active_table(self) -> ReportTable | None:
        focused = self.focused
        if isinstance(focused, ReportTable):
            return focused
        tab = self.query_one(TabbedContent).active
        first = {
            "tab-summary": "#summary-table",
            "tab-langs": "#langs-table",
            "tab-bias": "#bias-table",
            "tab-paper": "#compare-table",
            "tab-cells": "#cells-table",
        }.get(tab)
        return self.query_one(first, ReportTable) if first else None

    def action_sort(self) -> None:
        table = self._active_table()
        if table is not None:
            table.sort_by()

    def action_toggle_setting(self) -> None:
        """On the per-language view: switch mono <-> multi; elsewhere: go to that view."""
        tabs = self.query_one(TabbedContent)
        if tabs.active != "tab-langs":
            self._activate("tab-langs")
            return
        self.setting = "multi" if self.setting == "mono" else "mono"
        group = self.group
        if group is not None:
            self._show_langs(group)

    def action_strategy(self, step: int) -> None:
        """On the pairs or bias view: the next strategy; elsewhere: go to the pairs view."""
        tabs = self.query_one(TabbedContent)
        if tabs.active not in ("tab-pairs", "tab-bias"):
            self._activate("tab-pairs")
            return
        self.strategy_index += step
        group = self.group
        if group is not None:
            self._show_pairs(group)
            self._show_bias(group)

    def action_page(self, step: int) -> None:
        """PageDown / PageUp scroll the shown view (a focused table pages through its own rows first)."""
        tab = self.query_one(TabbedContent).active
        pane = self.query_one(f"#{tab}", TabPane) if tab else None
        scroll = next(iter(pane.query(VerticalScroll)), None) if pane is not None else None
        if scroll is not None:
            (scroll.scroll_page_down if step > 0 else scroll.scroll_page_up)(animate=False)

    def action_next_view(self) -> None:
        tabs = self.query_one(TabbedContent)
        ids = [f"tab-{t}" for t in TABS]
        self._activate(ids[(ids.index(tabs.active) + 1) % len(ids)] if tabs.active in ids else ids[0])

    def _activate(self, tab: str) -> None:
        """Show view `tab` and take the focus along: a focused table left in the hidden view would hand the focus
        to its neighbour in that view, and TabbedContent then shows that view again (the keys seemed to snap back
        to Summary). The focus goes to the new view's first focusable widget, else the tab strip."""
        tabs = self.query_one(TabbedContent)
        tabs.active = tab
        focused = self.focused
        if focused is None or not any(isinstance(a, TabPane) and a.id != tab for a in focused.ancestors):
            return
        target = next((w for w in tabs.get_pane(tab).query("*") if w.focusable), None)
        (target or tabs.query_one(Tabs)).focus()

    def action_next_group(self) -> None:
        self.group_index += 1
        self.strategy_index = 0
        self._show()

    def scopes(self) -> list[CellInfo | None]:
        cells = [c for c in self.base.complete] if self.base is not None and self.base.kind == "grid" else []
        return [None, *cells]

    def action_next_scope(self) -> None:
        if self.path is None:
            return
        scopes = self.scopes()
        ids = [None if c is None else c.id for c in scopes]
        if len(ids) < 2:
            self.notify("a single run: no other cell to show", severity="warning")
            return
        nxt = ids[(ids.index(self.scope) + 1) % len(ids) if self.scope in ids else 0]
        self.open(self.path, nxt)

    def action_reload(self) -> None:
        if self.path is not None:
            self.base = None
            self.open(self.path, self.scope)

    def action_export(self) -> None:
        if self.report is None:
            return
        target = self.report.path

        def chosen(fmt: str | None) -> None:
            if fmt:
                self._export(target, fmt)

        self.app.push_screen(ExportScreen(target), chosen)

    def export_now(self, fmt: str) -> None:
        """Export the shown report as `fmt` without the dialog (the command palette's export commands)."""
        if self.report is not None:
            self._export(self.report.path, fmt)

    def show_view(self, tab: str) -> None:
        self._activate(f"tab-{tab}")

    def tab_title(self, tab: str) -> str:
        return str(self.query_one(TabbedContent).get_tab(f"tab-{tab}").label)

    def follow(self, path: Path) -> None:
        """The running grid at `path` changed (a cell finished, the grid ended): reload it if it is the one shown, so
        the header and rows follow the grid live."""
        if self.path is None or not self.is_mounted:
            return
        try:
            same = self.path.resolve() == Path(path).resolve()
        except OSError:
            same = False
        if not same:
            return
        if self.loading:
            self.stale = True
        else:
            self.base = None
            self.open(self.path, self.scope)

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, target: Path, fmt: str) -> tuple[str, Path, bool]:
        """(format, the file written, whether it replaced one)."""
        replaced = (target / EXPORT_FORMAT_FILES[fmt]).exists()
        return fmt, self.hbt.backend.export(target, fmt), replaced
