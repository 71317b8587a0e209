"""Rich rendering of the event stream and of results for the headless CLI."""

from __future__ import annotations

from typing import Any

import numpy as np
from hbt.engine.common.events import Event, Log, RunFinished, Stage, TrainStep
from hbt.engine.common.events import Progress as ProgressEvent
from hbt.engine.common.text import safe
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text


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


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def _macro(setting: dict[str, Any], metric: str = "map") -> float | None:
    """A setting's macro metric, or None (shown "—") when the setting had no queries (e.g. cross with one language)."""
    macro = setting["macro"]
    return None if macro.get("n_queries", 1) == 0 else macro.get(metric)


def _dist(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def monolingual_table(name: str, summary: dict[str, Any]) -> Table:
    """Monolingual retrieval over a corpus (MIRACL): nDCG@10, Recall@100 and mAP per language, mean and median."""
    per = summary["monolingual"]["per_language"]
    pool = summary.get("pool", "")
    table = Table(
        title=f"{name} ({pool}): monolingual, {summary['n_queries']} queries, {summary['n_candidates']:,} passages"
    )
    keys = ("ndcg@10", "recall@100", "map", "mrr@10")
    for col in ("lang", "nDCG@10", "Recall@100", "mAP", "MRR@10", "queries"):
        table.add_column(col, justify="left" if col == "lang" else "right")
    for lang in sorted(per):
        m = per[lang]
        table.add_row(lang, *(_fmt(m[k]) for k in keys), str(m["n_queries"]))
    table.add_section()
    rows = [m for m in per.values() if m.get("n_queries")]
    for label, agg in (("mean", np.mean), ("median", np.median)):
        values = [_fmt(float(agg([m[k] for m in rows]))) if rows else "—" for k in keys]
        table.add_row(label, *values, str(sum(m["n_queries"] for m in rows)), style="bold")
    table.caption = (
        f"pool: {pool} · encode {summary['timings']['encode_s']:.1f}s · search {summary['timings']['search_s']:.1f}s"
    )
    return table


def cross_lingual_table(name: str, summary: dict[str, Any]) -> Table:
    """Cross-lingual retrieval only (XOR-Retrieve): per X -> en pair the rank metrics on the gold passages and the
    official R@2kt / R@5kt."""
    cross = summary["cross_lingual"]["per_pair"]
    recall = summary["answer_recall"]
    pool = summary.get("pool", "")
    table = Table(title=f"{name}: cross-lingual, {summary['n_queries']} queries, {summary['n_candidates']:,} passages")
    cols = ("pair", "mAP", "MRR@10", "R@10", "R@100", "gold q", "R@2kt", "R@5kt", "answer q")
    for col in cols:
        table.add_column(col, justify="left" if col == "pair" else "right")
    langs = sorted({key.split("-")[0] for key in cross} | set(recall["per_language"]))
    for lang in langs:
        key = next((k for k in cross if k.split("-")[0] == lang), f"{lang}-?")
        m, r = cross.get(key, {}), recall["per_language"].get(lang, {})
        table.add_row(
            key, *(_fmt(m.get(k)) for k in ("map", "mrr@10", "recall@10", "recall@100")), str(m.get("n_queries", 0)),
            _fmt(r.get("r@2kt")), _fmt(r.get("r@5kt")), str(r.get("n_queries", 0)),
        )  # fmt: skip
    table.add_section()
    macro, rm = summary["cross_lingual"]["macro"], recall["macro"]
    table.add_row(
        "macro", *(_fmt(_macro(summary["cross_lingual"], k)) for k in ("map", "mrr@10", "recall@10", "recall@100")),
        str(macro.get("n_queries", 0)), _fmt(rm.get("r@2kt")), _fmt(rm.get("r@5kt")), str(rm.get("n_queries", 0)),
        style="bold",
    )  # fmt: skip
    table.caption = (
        f"pool: {pool} · R@kt tokens: {recall['tokenizer']} · "
        f"encode {summary['timings']['encode_s']:.1f}s · search {summary['timings']['search_s']:.1f}s"
    )
    return table


def dataset_table(name: str, summary: dict[str, Any]) -> Table:
    """Per query language: mono mAP, mean X->Y mAP, multilingual mAP, MRR@10, R@10, rank distance (2408.10536's
    language bias: max - min rank of a query's parallel answers), own-language excess."""
    if "answer_recall" in summary:  # XOR-Retrieve: cross-lingual only, with the official R@kt
        return cross_lingual_table(name, summary)
    if summary.get("pool"):  # retrieval over a corpus (MIRACL, full or judged pool): monolingual metrics
        return monolingual_table(name, summary)
    mono = summary["monolingual"]["per_language"]
    multi = summary["multilingual"]["per_language"]
    cross = summary["cross_lingual"]["per_pair"]
    bias = summary["language_bias"]["per_language"]
    table = Table(
        title=f"{name}: mAP by query language ({summary['n_queries']} queries, {summary['n_candidates']} candidates)"
    )
    cols = (
        "lang",
        "mono mAP",
        "cross mAP (X→*)",
        "multi mAP",
        "multi MRR@10",
        "multi R@10",
        "rank dist",
        "own excess@10",
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "lang" else "right")
    for lang in summary["languages"]:
        xy = [m["map"] for key, m in cross.items() if key.split("-")[0] == lang]
        table.add_row(
            lang,
            _fmt(mono.get(lang, {}).get("map")),
            _fmt(float(np.mean(xy)) if xy else None),
            _fmt(multi.get(lang, {}).get("map")),
            _fmt(multi.get(lang, {}).get("mrr@10")),
            _fmt(multi.get(lang, {}).get("recall@10")),
            _dist(bias.get(lang, {}).get("rank_distance")),
            f"{bias[lang]['own_excess@10']:+.3f}" if lang in bias else "—",
        )
    lb = summary["language_bias"]
    table.add_section()
    table.add_row(
        "macro",
        _fmt(_macro(summary["monolingual"])),
        _fmt(_macro(summary["cross_lingual"])),
        _fmt(_macro(summary["multilingual"])),
        _fmt(_macro(summary["multilingual"], "mrr@10")),
        _fmt(_macro(summary["multilingual"], "recall@10")),
        _dist(lb.get("rank_distance")),
        f"{lb['own_excess@10']:+.3f}",
        style="bold",
    )
    table.caption = (
        f"rank gap {lb['rank_gap']:+.1f} · mAP spread {lb['map_spread']:.4f} · "
        f"encode {summary['timings']['encode_s']:.1f}s · search {summary['timings']['search_s']:.1f}s"
    )
    return table


def print_results(console: Console, results: dict[str, Any]) -> None:
    for name, summary in results["datasets"].items():
        console.print(dataset_table(name, summary))
    training = results.get("training")
    if training:
        curve = training["loss_curve"]
        first = curve[0][1] if curve else float("nan")
        console.print(
            f"training: {training['steps']} steps, loss {first:.4f} → {training['final_loss']:.4f}, "
            f"batches {training['composition']}, {training['seconds']:.0f}s"
        )
