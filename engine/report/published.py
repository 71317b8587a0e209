"""Published figures shipped as data (reference/<arXiv id>.json) and a grid's cells beside them.

Each reference file lists cells (model, strategy, dataset, setting, metric, aggregate, value, source table) and the
paper's setup. `compare_tables` matches every cell of a grid to the published cell of the same strategy, dataset,
setting and metric, shows the difference, and states in its notes where backbone, data or training differ.

Shipped: 2408.10536 (hybrid batches: Table 1 mAP, Table 2 rank distance, MIRACL nDCG@10 / Recall@100 means) and
2004.05484 (LAReQA's mBERT baselines En-En, X-X, X-X-mono, X-Y).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hbt.engine.common.errors import one_of
from hbt.engine.common.vocabulary import paper_name
from hbt.engine.evaluation.results import RANK_DISTANCE, as_setting
from hbt.engine.report.source import Source, load_source
from hbt.engine.report.stats import MeanCI
from hbt.engine.report.tables import Group, Table, Value, groups, metric_label, metric_of

DEFAULT_REFERENCE = "2408.10536"
# hbt backbone names -> the model a paper reports (sizes the papers do not state are not distinguished)
PAPER_MODEL = {
    "xlmr-base": "XLM-R",
    "xlmr-large": "XLM-R",
    "xlm-roberta-base": "XLM-R",
    "xlm-roberta-large": "XLM-R",
    "FacebookAI/xlm-roberta-base": "XLM-R",
    "FacebookAI/xlm-roberta-large": "XLM-R",
    "labse": "LaBSE",
    "sentence-transformers/LaBSE": "LaBSE",
    "mbert": "mBERT",
    "bert-base-multilingual-cased": "mBERT",
    "google-bert/bert-base-multilingual-cased": "mBERT",
}
SETTING_ORDER = ("mono", "cross", "multi")


@dataclass(frozen=True)
class PublishedCell:
    model: str
    strategy: str
    dataset: str
    setting: str
    metric: str
    aggregate: str
    value: float
    source: str


@dataclass
class Reference:
    id: str
    title: str
    authors: str
    url: str
    models: dict[str, str]
    setup: dict[str, str]
    strategies: dict[str, str]
    cells: list[PublishedCell] = field(default_factory=list)

    def find(self, model: str, strategy: str, dataset: str, setting: str, metric: str) -> PublishedCell | None:
        for c in self.cells:
            if (c.model, c.strategy, c.dataset, c.setting, c.metric) == (model, strategy, dataset, setting, metric):
                return c
        return None

    def slots(self, dataset: str) -> list[tuple[str, str, str]]:
        """(metric, setting, aggregate) published for `dataset`, in table order."""
        seen = {(c.metric, c.setting, c.aggregate): None for c in self.cells if c.dataset == dataset}
        return sorted(seen, key=lambda s: (s[0] != "map", s[0], SETTING_ORDER.index(s[1])))


def reference_dir() -> Path:
    return Path(str(resources.files("hbt.engine.report") / "reference"))


def list_references() -> list[str]:
    return sorted(p.stem for p in reference_dir().glob("*.json"))


def load_reference(name: str) -> Reference:
    path = reference_dir() / f"{name}.json"
    if not path.exists():
        raise one_of("reference", name, list_references())
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    cells = [PublishedCell(**c) for c in doc["cells"]]
    return Reference(
        doc["id"], doc["title"], doc["authors"], doc["url"], doc["models"], doc["setup"], doc["strategies"], cells
    )


def our_value(group: Group, strategy: str, setting: str, metric: str, aggregate: str) -> MeanCI | None:
    """The grid's number for a published slot: rank distance from the bias block; LAReQA's micro mAP from the
    multilingual `all` block (mean over every query); otherwise the setting's macro mean."""
    if metric == RANK_DISTANCE:
        return group.bias(strategy, RANK_DISTANCE)
    if aggregate == "micro" and setting == "multi":
        return group.values(strategy, lambda s: metric_of(s.multi.all, metric))
    return group.setting(strategy, as_setting(setting), metric)


def _config(group: Group) -> dict[str, Any]:
    for cells in group.by_strategy.values():
        for cell in cells:
            if cell.strategy != "none" and isinstance((cell.results or {}).get("config"), dict):
                return dict(cell.results["config"])  # type: ignore[index]
    return {}


def differences(group: Group, ref: Reference, models: list[str]) -> list[str]:
    """Plain statements of where this grid differs from the paper's setup."""
    from hbt.engine.data.registry import spec

    cfg = _config(group)
    out = []
    matched = PAPER_MODEL.get(group.backbone)
    if matched is None:
        out.append(f"backbone differs: {group.backbone} here; the paper reports {', '.join(models)}")
    else:
        out.append(f"backbone: {group.backbone} here ~ the paper's {ref.models.get(matched, matched)}")
    if cfg:
        langs = cfg.get("train_langs") or "all its languages"
        langs = ",".join(langs) if isinstance(langs, list) else langs
        out.append(
            f"training differs: {cfg.get('train_data')} ({langs}), {cfg.get('steps') or cfg.get('epochs')} "
            f"{'steps' if cfg.get('steps') else 'epochs'} x batch {cfg.get('batch_size')}, lr {cfg.get('lr')}, "
            f"hybrid p {cfg.get('hybrid_p')}, X-X language {cfg.get('xx_langs')}, "
            f"hard negatives {'on' if cfg.get('hard_negatives') else 'off'}; "
            f"the paper: {ref.setup.get('training_data', '?')}; "
            f"{ref.setup.get('optimiser', ref.setup.get('batches', ''))}"
        )
        try:
            full = list(spec(group.dataset).languages)
        except Exception:  # an unknown dataset name in an old grid: say nothing about its languages
            full = []
        langs_eval = cfg.get("langs") or full
        if (full and sorted(langs_eval) != sorted(full)) or cfg.get("max_queries"):
            groups_note = f"{cfg['max_queries']} question groups" if cfg.get("max_queries") else "all questions"
            out.append(
                f"evaluation data differs: {group.dataset} in {','.join(langs_eval)} ({groups_note}); the paper: "
                f"{','.join(full) or 'all languages'}, all questions: macro means and rank distances over other pools"
            )
    n_seeds = max((group.n_seeds(s) for s in group.strategies), default=0)
    out.append(f"{n_seeds} seed(s) here; published values are single numbers (no interval)")
    out.append(f"source: {ref.authors}, {ref.title}, {ref.url}")
    return out


def compare_table(group: Group, ref: Reference) -> Table | None:
    """The grid's cells of one backbone x dataset beside the published ones; None when the paper has no such data."""
    slots = ref.slots(group.dataset)
    if not slots:
        return None
    matched = PAPER_MODEL.get(group.backbone)
    models = [matched] if matched in ref.models else list(ref.models)
    columns = ["strategy", "setting", "metric", "ours"]
    for m in models:
        columns += [f"{m} (paper)", f"Δ vs {m}"]
    columns.append("source")
    rows: list[list[Value]] = []
    for metric, setting, aggregate in slots:
        for strategy in group.strategies:
            if strategy not in ref.strategies:
                continue
            ours = our_value(group, strategy, setting, metric, aggregate)
            row: list[Value] = [paper_name(strategy), setting, _label(metric, aggregate), ours]
            sources = set()
            for m in models:
                pub = ref.find(m, strategy, group.dataset, setting, metric)
                row.append(pub.value if pub else None)
                row.append(ours.mean - pub.value if pub and ours is not None else None)
                if pub:
                    sources.add(pub.source)
            row.append("; ".join(sorted(sources)) or None)
            rows.append(row)
    if not rows:
        return None
    notes = differences(group, ref, models)
    notes.insert(0, "Δ = ours (mean over seeds) - published")
    return Table(
        "compare",
        f"{group.backbone} on {group.dataset} beside {ref.id} ({', '.join(models)})",
        columns,
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset, "reference": ref.id},
    )


def _label(metric: str, aggregate: str) -> str:
    label = metric_label(metric)
    return f"{label} ({aggregate})" if aggregate not in ("macro", "") else label


def compare_tables(path: str | Path | Source, reference: str = DEFAULT_REFERENCE) -> list[Table]:
    """One comparison table per backbone x dataset of the grid that the reference publishes numbers for."""
    ref = load_reference(reference)
    source = path if isinstance(path, Source) else load_source(path)
    tables = [t for g in groups(source) if (t := compare_table(g, ref)) is not None]
    if not tables:
        from hbt.engine.common.errors import ConfigError

        have = sorted({c.dataset for c in ref.cells})
        raise ConfigError(f"{reference} publishes no numbers for this grid's datasets (it has: {', '.join(have)})")
    return tables
