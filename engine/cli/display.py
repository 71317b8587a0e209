"""Rich rendering of the event stream and of results for the headless CLI."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable
from rich.text import Text

from ..common.events import Event, Log, RunFinished, Stage, TrainStep
from ..common.events import Progress as ProgressEvent
from ..common.text import safe
from ..data.xor import PASSAGE_LANG
from ..evaluation.results import (
    MAP_SPREAD,
    N_QUERIES,
    OWN_EXCESS,
    RANK_DISTANCE,
    RANK_GAP,
    SETTINGS,
    DatasetSummary,
    pair_label,
    read_datasets,
)
from ..report.table_rows import Table, Value, metric_of


class RichListener:
    """Shows Stage/Log lines and Rich progress bars for encoding, search and training."""

    def __init__(self, console: Console, err_console: Console | None = None) -> None:
        self.console = console
        self.err_console = err_console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichListener:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def notice(self, message: str) -> None:
        """A one-off line on stderr (e.g. the first Ctrl-C's 'stopping after this step')."""
        self.err_console.print(Text(f"hbt: {message}", style="yellow"))

    def _task(self, name: str, total: int) -> TaskID:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=total, info="")
        return self.tasks[name]

    def __call__(self, event: Event) -> None:
        prefix = f"[{event.cell}] " if event.cell else ""
        if isinstance(event, ProgressEvent):
            key = f"{prefix}{event.task}"
            task = self._task(key, event.total)
            self.progress.update(task, completed=event.done, total=max(event.total, 1))
        elif isinstance(event, TrainStep):
            task = self._task(f"{prefix}train {event.strategy}", event.total_steps)
            batches = " ".join(f"{k}={v}" for k, v in event.batches.items() if v)
            info = f"loss {event.loss:.4f}  lr {event.lr:.2e}  {event.samples_per_s:.1f} pairs/s  {batches}"
            self.progress.update(task, completed=event.step, total=event.total_steps, info=info)
        elif isinstance(event, Stage):
            if event.name in ("encode", "search"):
                for name in [n for n in self.tasks if n.startswith(prefix) and "train" not in n]:
                    self.progress.remove_task(self.tasks.pop(name))
            self.console.log(Text.assemble(safe(prefix), (event.name, "cyan"), " ", safe(event.detail)))
        elif isinstance(event, Log):
            style = "yellow" if event.level == "warning" else "dim"
            self.console.log(Text.assemble(safe(prefix), (safe(event.message), style)))
        elif isinstance(event, RunFinished) and event.status != "complete":
            self.console.log(Text.assemble(safe(prefix), (event.status, "red"), " ", safe(event.error or "")))


def _timings(summary: DatasetSummary) -> str:
    t = summary.timings or {}
    if "encode_s" not in t or "search_s" not in t:
        return ""
    return f"encode {t['encode_s']:.1f}s · search {t['search_s']:.1f}s"


def _caption(*parts: str) -> list[str]:
    return [" · ".join(p for p in parts if p)]


def _encoded_as(summary: DatasetSummary) -> str:
    mode = summary.extra.get("text_mode")
    return f"passages encoded as {mode}" if mode else ""


def _empty_topics(summary: DatasetSummary) -> str:
    rule = summary.extra.get("empty_topics")
    if rule == "keep":
        return "topics without a relevant passage scored 0 (trec_eval)"
    return "topics without a relevant passage left out (--empty-topics drop)" if rule == "drop" else ""


def monolingual_table(name: str, summary: DatasetSummary) -> Table:
    """Monolingual retrieval over a corpus (MIRACL): nDCG@10, Recall@100 and mAP per language, mean and median."""
    per = summary.mono.per_language
    keys = ("ndcg@10", "recall@100", "map", "mrr@10")
    rows: list[list[Value]] = [[x, *(per[x].get(k) for k in keys), int(per[x].get(N_QUERIES, 0))] for x in sorted(per)]
    counted = [m for m in per.values() if m.get(N_QUERIES)]
    for label, agg in (("mean", np.mean), ("median", np.median)):
        values: list[Value] = [float(agg([m[k] for m in counted])) if counted else None for k in keys]
        rows.append([label, *values, int(sum(m[N_QUERIES] for m in counted))])
    return Table(
        "run_monolingual",
        f"{name} ({summary.pool or ''}): monolingual, {summary.n_queries} queries, {summary.n_candidates:,} passages",
        ["lang", "nDCG@10", "Recall@100", "mAP", "MRR@10", "queries"],
        rows,
        _caption(f"pool: {summary.pool or ''}", _encoded_as(summary), _empty_topics(summary), _timings(summary)),
        {"dataset": name},
        totals=2,
    )


def cross_lingual_table(name: str, summary: DatasetSummary) -> Table:
    """Cross-lingual retrieval only (XOR-Retrieve): per X -> en pair the rank metrics on the gold passages (missing
    when the questions file names none: the official dev file) and the official R@2kt / R@5kt; the caption says
    when R@kt ranks a sample (not comparable with published numbers)."""
    pairs = summary.cross.per_pair
    keys = ("map", "mrr@10", "recall@10", "recall@100")
    rows: list[list[Value]] = []
    for lang in sorted({x for x, _ in pairs} | set(summary.recall_languages())):
        pair = next((p for p in pairs if p[0] == lang), None)
        m = pairs[pair] if pair else {}
        rows.append([
            pair_label(pair or (lang, PASSAGE_LANG)), *(m.get(k) for k in keys), int(m.get(N_QUERIES, 0)),
            summary.recall(lang, "r@2kt"), summary.recall(lang, "r@5kt"), int(summary.recall(lang, N_QUERIES) or 0),
        ])  # fmt: skip
    rows.append([
        "macro", *(summary.macro("cross", k) for k in keys), int(summary.cross.macro.get(N_QUERIES, 0)),
        summary.recall(None, "r@2kt"), summary.recall(None, "r@5kt"), int(summary.recall(None, N_QUERIES) or 0),
    ])  # fmt: skip
    tokenizer = (summary.answer_recall or {}).get("tokenizer", "")
    return Table(
        "run_cross_lingual",
        f"{name}: cross-lingual, {summary.n_queries} queries, {summary.n_candidates:,} passages",
        ["pair", "mAP", "MRR@10", "R@10", "R@100", "gold q", "R@2kt", "R@5kt", "answer q"],
        rows,
        _caption(
            f"pool: {summary.pool or ''}",
            f"R@kt tokens: {tokenizer}",
            str(summary.extra.get("no_gold", "")),
            str(summary.extra.get("not_comparable", "")),
            _timings(summary),
        ),
        {"dataset": name},
        totals=1,
    )


def _signed(x: float | None) -> str | None:
    return None if x is None else f"{x:+.3f}"


def _dist(x: float | None) -> str | None:
    return None if x is None else f"{x:.1f}"


def dataset_table(name: str, summary: DatasetSummary) -> Table:
    """Per query language: mono mAP, mean X->Y mAP, multilingual mAP, MRR@10, R@10, rank distance (2408.10536's
    language bias: max - min rank of a query's parallel answers), own-language excess."""
    if summary.is_cross_only:  # XOR-Retrieve: cross-lingual only, with the official R@kt
        return cross_lingual_table(name, summary)
    if summary.pool:  # retrieval over a corpus (MIRACL, full or judged pool): monolingual metrics
        return monolingual_table(name, summary)
    bias = summary.bias.per_language
    rows: list[list[Value]] = []
    for lang in summary.languages:
        xy = [m["map"] for m in summary.cross.from_query(lang).values()]
        multi = summary.language("multi", lang)
        rows.append([
            lang, metric_of(summary.language("mono", lang), "map"), float(np.mean(xy)) if xy else None,
            *(metric_of(multi, k) for k in ("map", "mrr@10", "recall@10")),
            _dist(metric_of(bias.get(lang), RANK_DISTANCE)), _signed(metric_of(bias.get(lang), OWN_EXCESS)),
        ])  # fmt: skip
    overall = summary.bias.overall
    rows.append([
        "macro", *(summary.macro(s) for s in SETTINGS), summary.macro("multi", "mrr@10"),
        summary.macro("multi", "recall@10"), _dist(overall.get(RANK_DISTANCE)), _signed(overall.get(OWN_EXCESS)),
    ])  # fmt: skip
    gap, spread = overall.get(RANK_GAP), overall.get(MAP_SPREAD)
    return Table(
        "run_summary",
        f"{name}: mAP by query language ({summary.n_queries} queries, {summary.n_candidates} candidates)",
        [
            "lang",
            "mono mAP",
            "cross mAP (X→*)",
            "multi mAP",
            "multi MRR@10",
            "multi R@10",
            "rank dist",
            "own excess@10",
        ],
        rows,
        _caption(
            str(summary.extra.get("pool_rule", "")),  # TyDi: passage or sentence pool
            str(summary.extra.get("macro_rule", "")),  # TyDi: macro over the non-English languages
            f"rank gap {gap:+.1f}" if gap is not None else "",
            f"mAP spread {spread:.4f}" if spread is not None else "",
            _timings(summary),
        ),
        {"dataset": name},
        totals=1,
    )


def print_results(console: Console, results: dict[str, Any]) -> None:
    """Every dataset of a results document, rendered like the report's tables (export.rich_table)."""
    # (start-up: statsmodels, scipy)
    from ..report.export import rich_table

    for name, summary in read_datasets(results).items():
        console.print(rich_table(dataset_table(name, summary)))
    training = results.get("training")
    if training:
        curve = training["loss_curve"]
        first = curve[0][1] if curve else float("nan")
        console.print(
            f"training: {training['steps']} steps, loss {first:.4f} → {training['final_loss']:.4f}, "
            f"batches {training['composition']}, {training['seconds']:.0f}s"
        )


def print_reproduction(console: Console, reports: list[Any], show_all: bool = False) -> bool:
    """Per re-made cell: recorded / new / |Δ| for the headline metrics (each setting's macro mAP) and every metric
    that differs (all of them with `show_all`), then one summary line; True when every metric is identical."""

    identical = True
    for report in reports:
        table = RichTable("metric", "recorded", "new", "|Δ|", title=f"reproduce {safe(report.cell)}")
        for d in report.deltas:
            headline = d.metric.endswith("/macro/map") and d.metric.count("/") == 3
            if show_all or headline or d.delta != 0:
                cells = ("–" if v is None else f"{v:.6f}" for v in (d.recorded, d.new))
                table.add_row(Text(safe(d.metric)), *cells, f"{d.delta:.2e}" if d.delta else "0")
        console.print(table)
        worst = max((d.delta for d in report.deltas), default=0.0)
        differing = report.differing
        verdict = "identical" if not differing else f"{len(differing)} differ (largest |Δ| {worst:.3g})"
        console.print(f"{safe(report.cell)}: {len(report.deltas)} metrics compared, {verdict}", markup=False)
        if report.stack_change:
            console.print(f"  stack: recorded vs now: {safe(report.stack_change)}", markup=False)
        else:
            console.print("  stack: the recorded stack is this machine's", markup=False)
        for name in report.data_changes:
            console.print(f"  data: {safe(name)} differs from the recorded file", markup=False)
        identical = identical and not differing
    return identical
