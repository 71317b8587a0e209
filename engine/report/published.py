"""Published figures shipped as data (reference/<arXiv id>.json) and a grid's cells beside them.

Each reference file lists cells (model, strategy, dataset, setting, metric, aggregate, value, source table) and the
paper's setup. `compare_tables` matches every cell of a grid to the published cell of the same strategy, dataset,
setting and metric, shows the difference, and states in its notes where backbone, data or training differ.

Shipped: 2408.10536 (hybrid batches: Table 1 mAP, Table 2 rank distance, MIRACL nDCG@10 / Recall@100 means) and
2004.05484 (LAReQA's mBERT baselines En-En, X-X, X-X-mono, X-Y).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..common.errors import ConfigError, UserError, one_of
from ..common.vocabulary import BASELINE, paper_arms, paper_name, parse_arm
from ..data.registry import spec
from ..evaluation.results import RANK_DISTANCE, as_setting
from .source import Source, load_source
from .stats import MeanCI
from .table_rows import Group, Table, Value, groups, metric_label, metric_of

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
    settings: list[dict[str, Any]] = field(default_factory=list)  # key, label, paper (None: not stated), source

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
        doc["id"],
        doc["title"],
        doc["authors"],
        doc["url"],
        doc["models"],
        doc["setup"],
        doc["strategies"],
        cells,
        list(doc.get("settings", [])),
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
            if cell.strategy != BASELINE and isinstance((cell.results or {}).get("config"), dict):
                return dict(cell.results["config"])  # type: ignore[index]
    return {}


def full_pool(group: Group) -> bool:
    """The grid evaluated every language of its dataset: its multilingual pool is the paper's (every candidate of
    every language; a question subset keeps every candidate)."""

    try:
        return sorted(spec(group.dataset).languages) == sorted(group.languages)
    except UserError:  # an unknown dataset name in an old grid
        return False


def _pool_size(group: Group) -> int | None:
    sizes = {s.n_candidates for s in group.summaries()}
    return sizes.pop() if len(sizes) == 1 else None


def eval_lengths(group: Group) -> dict[int | None, list[str]]:
    """The evaluation max length of every cell of the group (None: not recorded), with the arms that used it."""
    out: dict[int | None, list[str]] = {}
    for arm, cells in group.by_strategy.items():
        for cell in cells:
            out.setdefault(cell.eval_max_length, [])
            if arm not in out[cell.eval_max_length]:
                out[cell.eval_max_length].append(arm)
    return out


_XX_LANGS = {"balanced": "uniform (balanced)", "proportional": "proportional to each language's pairs (proportional)"}
_MIX = {"batch": "whole batches (batch)", "within": "mixed within each batch (within)"}


def _ours(key: str, cfg: dict[str, Any], group: Group) -> Any:
    """This grid's value of one of the reference's settings, in the reference's terms (None: not recorded)."""
    if key == "train_data":
        langs = cfg.get("train_langs")
        return f"{cfg.get('train_data')} ({','.join(langs) if isinstance(langs, list) else 'all its languages'})"
    if key in ("batch_size", "lr", "scale", "warmup_ratio", "max_seq_length"):
        return cfg.get(key)
    if key == "weight_decay":
        return cfg.get("weight_decay", 0.0)
    if key == "hard_negatives":
        return "one per pair" if cfg.get("hard_negatives") else "none"
    if key == "xx_langs":
        return _XX_LANGS.get(str(cfg.get("xx_langs")), cfg.get("xx_langs"))
    if key == "hybrid_mix":
        return _MIX.get(str(cfg.get("hybrid_mix")), cfg.get("hybrid_mix"))
    if key == "hybrid_p":
        sweep = sorted(a for s in group.strategies if (a := parse_arm(s)[1]) is not None)
        if len(sweep) > 1:
            return "sweep " + ", ".join(f"{a:g}" for a in sweep)
        end = f" to {cfg['hybrid_p_end']:g} (schedule)" if cfg.get("hybrid_p_end") is not None else ""
        return f"{cfg.get('hybrid_p')}{end}"
    if key == "trained_layers":
        top = cfg.get("train_top_layers")
        return "all" if top is None else f"top {top} (the rest frozen)"
    if key == "word_embeddings":
        frozen = cfg.get("freeze_embeddings")
        return (
            "frozen" if frozen is True else "trained" if frozen is False else "frozen on CPU, trained on GPU (default)"
        )
    if key == "checkpoint":
        if cfg.get("early_stopping_patience"):
            return (f"early stopping on the validation loss (patience {cfg['early_stopping_patience']}, "
                    f"{cfg.get('validation_fraction')} of the training groups held out)")  # fmt: skip
        return "the last step (no early stopping)"
    if key == "steps":
        return f"{cfg['steps']} steps" if cfg.get("steps") else f"{cfg.get('epochs')} epochs"
    if key == "eval_max_seq_length":
        lengths = eval_lengths(group)
        return next(iter(lengths)) if len(lengths) == 1 else None
    if key == "eval_data":
        if full_pool(group) and not cfg.get("max_queries"):
            return "same"
        groups_note = f"{cfg['max_queries']} question groups" if cfg.get("max_queries") else "every question"
        return (
            f"{group.dataset} in {','.join(group.languages)} ({groups_note}), a pool of {_pool_size(group)} candidates"
        )
    return cfg.get(key)


def _same(ours: Any, paper: Any) -> bool:
    if ours == "same":
        return True
    if isinstance(ours, int | float) and isinstance(paper, int | float) and not isinstance(ours, bool):
        return math.isclose(float(ours), float(paper), rel_tol=1e-9)
    return str(ours) == str(paper)


def differences(group: Group, ref: Reference, models: list[str]) -> list[str]:
    """Plain statements of where this grid differs from the paper's setup: one line per differing setting with its
    source, then the settings the paper does not state (with this grid's values)."""
    cfg = _config(group)
    out = []
    matched = PAPER_MODEL.get(group.backbone)
    if matched is None:
        out.append(f"differs: backbone: {group.backbone} here; the paper: {', '.join(models)}")
    else:
        out.append(f"backbone: {group.backbone} here ~ the paper's {ref.models.get(matched, matched)}")
    if cfg and ref.settings:
        unstated, unknown = [], []
        for item in ref.settings:
            ours = _ours(item["key"], cfg, group)
            if item.get("paper") is None:
                unstated.append(f"{item['label']} {ours if ours is not None else 'not recorded'}")
            elif ours is None:
                unknown.append(f"{item['label']} (the paper: {item['paper']})")
            elif not _same(ours, item["paper"]):
                out.append(f"differs: {item['label']}: {ours} here; the paper: {item['paper']} [{item['source']}]")
        if unknown:
            out.append("not recorded by this grid's results: " + "; ".join(unknown))
        if unstated:
            out.append(f"not stated by {ref.id} (this grid's value): " + "; ".join(unstated))
    elif cfg:  # a reference without structured settings: its setup as written
        out += [f"the paper's {key}: {text}" for key, text in ref.setup.items()]
    n_seeds = max((group.n_seeds(s) for s in group.strategies), default=0)
    out.append(f"{n_seeds} seed(s) here; published values are single numbers (no interval)")
    out.append(f"source: {ref.authors}, {ref.title}, {ref.url}")
    return out


def paper_rows(group: Group, ref: Reference) -> list[tuple[str, str]]:
    """(arm, the paper's strategy it stands for): the untrained baseline first, then the reference's strategies
    in this grid (in an alpha sweep, alpha 1 / 0 / 0.5 for X-X-mono / X-Y / hybrid)."""
    roles = paper_arms(group.strategies)
    rows = [(BASELINE, BASELINE)] if BASELINE in group.strategies else []
    for strategy in ref.strategies:
        arm = strategy if strategy in group.strategies else roles.get(strategy)
        if arm is not None:
            rows.append((arm, strategy))
    return rows


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
    same_pool = full_pool(group)
    arms = paper_rows(group, ref)
    if all(arm == BASELINE for arm, _ in arms):
        return None
    rows: list[list[Value]] = []
    for metric, setting, aggregate in slots:
        for arm, strategy in arms:
            ours = our_value(group, arm, setting, metric, aggregate)
            name = paper_name(arm) if arm == strategy else f"{paper_name(strategy)} ({paper_name(arm)})"
            row: list[Value] = [name, setting, _label(metric, aggregate), ours]
            sources = set()
            for m in models:
                pub = ref.find(m, strategy, group.dataset, setting, metric)
                comparable = pub is not None and ours is not None and (metric != RANK_DISTANCE or same_pool)
                row.append(pub.value if pub else None)
                row.append(ours.mean - pub.value if comparable and pub and ours else None)
                if pub:
                    sources.add(pub.source)
            row.append("; ".join(sorted(sources)) or None)
            rows.append(row)
    notes = ["Δ = ours (mean over seeds) - published"]
    if BASELINE in group.strategies:
        notes.append(
            "zero-shot: the untrained backbone, evaluated like the trained cells; the paper has no such row, so a "
            "Δ vs the paper says nothing about fine-tuning: compare the trained rows with the zero-shot one"
        )
    lengths = eval_lengths(group)
    if len(lengths) == 1 and None not in lengths:
        notes.append(f"evaluation max length: {next(iter(lengths))} tokens for every cell, the untrained baseline "
                     "included")  # fmt: skip
    elif len(lengths) == 1:
        notes.append("evaluation max length not recorded (results written before hbt recorded it): like for like "
                     "unknown")  # fmt: skip
    else:
        used = "; ".join(f"{n}: {', '.join(arms)}" for n, arms in lengths.items())
        notes.append(f"not like for like: the cells were evaluated at different max lengths ({used})")
    if any(metric == RANK_DISTANCE for metric, _, _ in slots):
        if same_pool:
            notes.append(f"rank distance: the paper's pool (every {group.dataset} language, {_pool_size(group)} "
                         "candidates here): compared")  # fmt: skip
        else:
            notes.append(
                f"rank distance: no Δ: ranks here are over a pool of {_pool_size(group)} candidates "
                f"({','.join(group.languages)}), the paper's over every {group.dataset} language; rank distances over "
                "pools of different sizes are not comparable (evaluate every language, e.g. the study preset)"
            )
    notes += differences(group, ref, models)
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
        have = sorted({c.dataset for c in ref.cells})
        raise ConfigError(f"{reference} publishes no numbers for this grid's datasets (it has: {', '.join(have)})")
    return tables
