"""The results model: one dataset's summary in results.json, typed, with the vocabulary every reader shares.

Vocabulary, defined here once: the settings (`Setting`, `SETTINGS`; display names `SETTING_NAME`, on-disk blocks
`SETTING_FIELD`, headline columns `HEADLINE_FIELD`), the metric keys (`METRICS`, `N_QUERIES`) and the language-bias
keys (`BIAS_LANGUAGE_KEYS` per query language, `BIAS_KEYS` overall). A dataset's summary is a `DatasetSummary`:
`from_json` validates a results.json block (a ValueError naming what is wrong, so readers can skip a torn or
malformed file with that reason) and `to_json` writes it back.

Language pairs are tuples (query language, candidate language) in memory and nested on disk
(`"per_pair": {query_lang: {candidate_lang: metrics}}`, schema RESULTS_SCHEMA). Files of the previous schema
(hbt.results/1, flat `"x-y"` pair keys) are still read: the key is split at the known languages, so codes with a
dash (zh-cn) split right.

per_query.json keys stay strings ("mono/x", "cross/x-y", "multi/x", "rankdist/x"): build them with `query_key`
and read them with `parse_query_key`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

RESULTS_SCHEMA = "hbt.results/2"
READABLE_SCHEMAS = ("hbt.results/1", RESULTS_SCHEMA)  # /1: flat "x-y" pair keys

Setting: TypeAlias = Literal["mono", "cross", "multi"]
SETTINGS: tuple[Setting, ...] = ("mono", "cross", "multi")
SETTING_NAME: dict[Setting, str] = {"mono": "monolingual", "cross": "cross-lingual", "multi": "multilingual"}
SETTING_FIELD: dict[Setting, str] = {"mono": "monolingual", "cross": "cross_lingual", "multi": "multilingual"}
HEADLINE_FIELD: dict[Setting, str] = {"mono": "mono_map", "cross": "cross_map", "multi": "multi_map"}

METRICS = ("map", "mrr@10", "ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100")
N_QUERIES = "n_queries"

BIAS_K = 10
RANK_DISTANCE = "rank_distance"
OWN_SHARE = f"own_share@{BIAS_K}"
OWN_EXCESS = f"own_excess@{BIAS_K}"
POOL_SHARE = "pool_share"
RANK_GAP = "rank_gap"
MAP_SPREAD = "map_spread"
BIAS_LANGUAGE_KEYS = (RANK_DISTANCE, OWN_SHARE, POOL_SHARE, OWN_EXCESS, RANK_GAP)  # per query language
BIAS_KEYS = (RANK_DISTANCE, OWN_EXCESS, RANK_GAP, MAP_SPREAD)  # over query languages

MISSING = "–"  # how every table (report, CLI, TUI) shows a missing value
RANKDIST = "rankdist"  # per_query.json: per-query rank distance of a query language

Metrics: TypeAlias = dict[str, float]
Pair: TypeAlias = tuple[str, str]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number(value: Any) -> float | None:
    """`value` as a float when it is a JSON number (not a bool), else None (shown missing)."""
    return float(value) if _number(value) else None


def _metrics(value: Any, where: str) -> Metrics:
    """A {metric: number} block; a ValueError naming `where` otherwise. NaN and infinity are not metrics (hbt never
    writes them; a file holding them was edited or damaged): such a run is reported as malformed, not averaged."""
    if not isinstance(value, dict):
        raise ValueError(f"{where} is not an object")
    for key, v in value.items():
        if not _number(v):
            raise ValueError(f"{where}.{key} is not a number")
        if not math.isfinite(v):
            raise ValueError(f"{where}.{key} is {v} (not a finite number)")
    return dict(value)


def _by_name(value: Any, where: str) -> dict[str, Metrics]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} is not an object")
    return {str(k): _metrics(v, f"{where}.{k}") for k, v in value.items()}


def _object(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"{where} is not an object")
    return dict(value)


def split_pair(key: str, langs: Iterable[str]) -> Pair:
    """An old flat 'X-Y' key into (X, Y), using the known languages so that codes with a dash (zh-cn) split right."""
    known = set(langs)
    for x in sorted(known, key=len, reverse=True):
        if key.startswith(x + "-") and len(key) > len(x) + 1:
            return x, key[len(x) + 1 :]
    x, _, y = key.partition("-")
    return x, y


def pair_label(pair: Pair) -> str:
    """How a pair is shown in tables: 'X-Y'."""
    return f"{pair[0]}-{pair[1]}"


def query_key(setting: Setting | Literal["rankdist"], x: str, y: str | None = None) -> str:
    """A per_query.json key: 'mono/x', 'cross/x-y', 'multi/x' or 'rankdist/x'."""
    return f"{setting}/{x}-{y}" if setting == "cross" else f"{setting}/{x}"


def parse_query_key(key: str, langs: Iterable[str] = ()) -> tuple[str, str, str | None]:
    """(setting, query language, candidate language or None) of a per_query.json key."""
    kind, _, rest = key.partition("/")
    if kind == "cross":
        x, y = split_pair(rest, langs)
        return kind, x, y
    return kind, rest, None


@dataclass
class LanguageBlock:
    """Monolingual or multilingual metrics: per query language, their macro mean; multilingual also `all` (mean
    over every query, LAReQA's micro mAP), a corpus dataset also `median` over languages."""

    per_language: dict[str, Metrics] = field(default_factory=dict)
    macro: Metrics = field(default_factory=dict)
    all: Metrics | None = None
    median: Metrics | None = None

    @classmethod
    def from_json(cls, obj: Any, where: str) -> LanguageBlock:
        if not isinstance(obj, dict):
            raise ValueError(f"{where} block is missing")
        macro = _metrics(obj.get("macro"), f"{where}.macro")
        if "map" not in macro:
            raise ValueError(f"{where}.macro has no map")
        return cls(
            per_language=_by_name(obj.get("per_language"), f"{where}.per_language"),
            macro=macro,
            all=_metrics(obj["all"], f"{where}.all") if obj.get("all") is not None else None,
            median=_metrics(obj["median"], f"{where}.median") if obj.get("median") is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"per_language": self.per_language, "macro": self.macro}
        if self.all is not None:
            out["all"] = self.all
        if self.median is not None:
            out["median"] = self.median
        return out


@dataclass
class PairBlock:
    """Cross-lingual metrics per ordered pair (query language, candidate language) and their macro mean."""

    per_pair: dict[Pair, Metrics] = field(default_factory=dict)
    macro: Metrics = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Any, where: str, langs: Iterable[str]) -> PairBlock:
        if not isinstance(obj, dict):
            raise ValueError(f"{where} block is missing")
        macro = _metrics(obj.get("macro"), f"{where}.macro")
        if "map" not in macro:
            raise ValueError(f"{where}.macro has no map")
        raw = obj.get("per_pair") or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{where}.per_pair is not an object")
        pairs: dict[Pair, Metrics] = {}
        known = list(langs)
        for key, value in raw.items():
            inner = value.get("map") if isinstance(value, dict) else None
            if isinstance(value, dict) and not _number(inner) and all(isinstance(v, dict) for v in value.values()):
                for y, m in value.items():  # nested (this schema): {query_lang: {candidate_lang: metrics}}
                    pairs[str(key), str(y)] = _metrics(m, f"{where}.per_pair.{key}.{y}")
            else:  # flat (hbt.results/1): {"x-y": metrics}
                pairs[split_pair(str(key), known)] = _metrics(value, f"{where}.per_pair.{key}")
        return cls(pairs, macro)

    def to_json(self) -> dict[str, Any]:
        nested: dict[str, dict[str, Metrics]] = {}
        for (x, y), m in self.per_pair.items():
            nested.setdefault(x, {})[y] = m
        return {"per_pair": nested, "macro": self.macro}

    def from_query(self, x: str) -> dict[str, Metrics]:
        """Candidate language -> metrics of the pairs whose queries are in `x`."""
        return {y: m for (q, y), m in self.per_pair.items() if q == x}


@dataclass
class BiasBlock:
    """Language bias of the multilingual pool: BIAS_LANGUAGE_KEYS per query language, BIAS_KEYS over them."""

    per_language: dict[str, Metrics] = field(default_factory=dict)
    overall: Metrics = field(default_factory=lambda: dict.fromkeys(BIAS_KEYS, 0.0))  # no multilingual pool: 0.0

    @classmethod
    def from_json(cls, obj: Any, where: str = "language_bias") -> BiasBlock:
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise ValueError(f"{where} is not an object")
        rest = {k: v for k, v in obj.items() if k != "per_language"}
        return cls(_by_name(obj.get("per_language"), f"{where}.per_language"), _metrics(rest, where))

    def to_json(self) -> dict[str, Any]:
        return {"per_language": self.per_language, **self.overall}


@dataclass
class DatasetSummary:
    """One dataset's block of results.json (see the module docstring); unknown fields are kept in `extra`."""

    languages: list[str]
    n_queries: int
    n_candidates: int
    mono: LanguageBlock
    cross: PairBlock
    multi: LanguageBlock
    bias: BiasBlock = field(default_factory=BiasBlock)
    encoded: dict[str, int] | None = None
    timings: dict[str, float] | None = None
    pool: str | None = None  # the pool ranked against, where the dataset names one (MIRACL, XOR-Retrieve)
    answer_recall: dict[str, Any] | None = None  # XOR-Retrieve's R@kt: per_language, macro, tokenizer
    corpus: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    rank: str | None = None  # "worker": a distributed rank that only encoded its slice (never written)
    extra: dict[str, Any] = field(default_factory=dict)

    _FIELDS = (
        "languages", "n_queries", "n_candidates", "monolingual", "cross_lingual", "multilingual", "language_bias",
        "encoded", "timings", "pool", "answer_recall", "corpus", "search", "rank",
    )  # fmt: skip

    @classmethod
    def worker(cls, encoded: dict[str, int]) -> DatasetSummary:
        """What a worker rank of a distributed evaluation returns: only what it encoded."""
        return cls([], 0, 0, LanguageBlock(), PairBlock(), LanguageBlock(), encoded=encoded, rank="worker")

    @classmethod
    def from_json(cls, obj: Any, name: str = "dataset") -> DatasetSummary:
        """Validate and read one dataset's block; a ValueError naming the dataset and the bad field."""
        where = f"dataset {name!r}"
        if not isinstance(obj, dict):
            raise ValueError(f"{where} is not an object")
        try:
            mono = LanguageBlock.from_json(obj.get("monolingual"), "monolingual")
            multi = LanguageBlock.from_json(obj.get("multilingual"), "multilingual")
            langs = obj.get("languages")
            if langs is None:
                langs = sorted(set(mono.per_language) | set(multi.per_language))
            if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
                raise ValueError("languages is not a list of language codes")
            known = [*langs, *mono.per_language, *multi.per_language]
            cross = PairBlock.from_json(obj.get("cross_lingual"), "cross_lingual", known)
            bias = BiasBlock.from_json(obj.get("language_bias"))
            counts = {k: obj.get(k, 0) for k in ("n_queries", "n_candidates")}
            for k, v in counts.items():
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ValueError(f"{k} is not an integer")
            pool = obj.get("pool")
            if pool is not None and not isinstance(pool, str):
                raise ValueError("pool is not a string")
            rank = obj.get("rank")
            return cls(
                languages=list(langs),
                n_queries=counts["n_queries"],
                n_candidates=counts["n_candidates"],
                mono=mono,
                cross=cross,
                multi=multi,
                bias=bias,
                encoded=_object(obj.get("encoded"), "encoded"),
                timings=_object(obj.get("timings"), "timings"),
                pool=pool,
                answer_recall=_object(obj.get("answer_recall"), "answer_recall"),
                corpus=_object(obj.get("corpus"), "corpus"),
                search=_object(obj.get("search"), "search"),
                rank=str(rank) if rank is not None else None,
                extra={k: v for k, v in obj.items() if k not in cls._FIELDS},
            )
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        if self.rank == "worker":
            return {"rank": self.rank, "encoded": self.encoded}
        out: dict[str, Any] = {}
        if self.pool is not None:
            out["pool"] = self.pool
        out |= {
            "languages": self.languages,
            "n_queries": self.n_queries,
            "n_candidates": self.n_candidates,
            "monolingual": self.mono.to_json(),
            "cross_lingual": self.cross.to_json(),
            "multilingual": self.multi.to_json(),
            "language_bias": self.bias.to_json(),
        }
        optional = (
            ("answer_recall", self.answer_recall), ("corpus", self.corpus), ("encoded", self.encoded),
            ("search", self.search), ("timings", self.timings),
        )  # fmt: skip
        out |= {k: v for k, v in optional if v is not None}
        return out | self.extra

    # ---- reading ---------------------------------------------------------------------------------------------

    def block(self, setting: Setting) -> LanguageBlock | PairBlock:
        return self.mono if setting == "mono" else self.cross if setting == "cross" else self.multi

    def macro(self, setting: Setting, metric: str = "map") -> float | None:
        """A setting's macro metric; None (shown as missing, not 0.0) when the setting had no queries, e.g.
        cross-lingual with one language, or when the metric is absent."""
        macro = self.block(setting).macro
        if macro.get(N_QUERIES, 1) == 0:
            return None
        return number(macro.get(metric))

    def language(self, setting: Setting, lang: str) -> Metrics | None:
        """Metrics of the queries in `lang` (mono, multi; cross-lingual rows are per pair: None)."""
        block = self.mono if setting == "mono" else self.multi if setting == "multi" else None
        return block.per_language.get(lang) if block is not None else None

    def pair(self, x: str, y: str) -> Metrics | None:
        """Metrics of queries in x against candidates in y (the monolingual row when x == y)."""
        return self.mono.per_language.get(x) if x == y else self.cross.per_pair.get((x, y))

    def by_query_key(self) -> dict[str, Metrics]:
        """Every setting's metrics keyed as per_query.json keys them ('mono/x', 'cross/x-y', 'multi/x')."""
        out = {query_key("mono", x): m for x, m in self.mono.per_language.items()}
        out |= {query_key("cross", x, y): m for (x, y), m in self.cross.per_pair.items()}
        out |= {query_key("multi", x): m for x, m in self.multi.per_language.items()}
        return out

    def recall_languages(self) -> list[str]:
        """The query languages of XOR-Retrieve's answer recall (R@kt)."""
        per = (self.answer_recall or {}).get("per_language")
        return [str(x) for x in per] if isinstance(per, dict) else []

    def recall(self, lang: str | None, key: str) -> float | None:
        """Answer recall `key` (r@2kt, r@5kt, n_queries) of query language `lang`, or its macro (lang None)."""
        block = (self.answer_recall or {}).get("macro" if lang is None else "per_language")
        if lang is not None and isinstance(block, dict):
            block = block.get(lang)
        return number(block.get(key)) if isinstance(block, dict) else None

    @property
    def is_cross_only(self) -> bool:
        """XOR-Retrieve: answer recall beside cross-lingual rows, no mono / multi pool."""
        return self.answer_recall is not None

    @property
    def is_monolingual_corpus(self) -> bool:
        """MIRACL-like: a named pool and no multilingual setting."""
        return bool(self.pool) and not self.multi.per_language


Headline: TypeAlias = dict[str, float | None]


def headline(summary: DatasetSummary) -> Headline:
    """mono_map / cross_map / multi_map: each setting's macro mAP, None when the setting had no queries."""
    return {HEADLINE_FIELD[s]: summary.macro(s) for s in SETTINGS}


def read_datasets(doc: Any) -> dict[str, DatasetSummary]:
    """Every dataset of a results.json document (either readable schema); a ValueError naming what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError("results.json is not a JSON object")
    schema = doc.get("schema")
    if schema is not None and schema not in READABLE_SCHEMAS:
        raise ValueError(f"results.json schema {schema!r} is not one of {', '.join(READABLE_SCHEMAS)}")
    datasets = doc.get("datasets")
    if not isinstance(datasets, dict) or not datasets:
        raise ValueError("results.json has no datasets")
    return {str(name): DatasetSummary.from_json(s, str(name)) for name, s in datasets.items()}


def first_dataset(datasets: Mapping[str, Any], preferred: Sequence[str] = ()) -> str:
    """The headline dataset: the first of `preferred` (the config's eval_data) present, else the first listed."""
    order = [d for d in preferred if d in datasets] + list(datasets)
    return order[0]


def evaluation_max_length(doc: Mapping[str, Any]) -> int | None:
    """results.json `evaluation.max_seq_length`: the token length every evaluation text of the run was cut at (the
    same for every cell of a grid, the untrained baseline included); None in results written before it was kept."""
    block = doc.get("evaluation")
    value = block.get("max_seq_length") if isinstance(block, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_setting(name: str) -> Setting:
    """A setting from its short name or any of its spellings (monolingual, cross-lingual, cross_lingual, ...)."""
    for s in SETTINGS:
        if name in (s, SETTING_NAME[s], SETTING_FIELD[s], HEADLINE_FIELD[s]):
            return s
    raise ValueError(f"unknown setting {name!r} (allowed: {', '.join(SETTINGS)})")


__all__ = [
    "BIAS_KEYS",
    "BIAS_LANGUAGE_KEYS",
    "HEADLINE_FIELD",
    "METRICS",
    "N_QUERIES",
    "RESULTS_SCHEMA",
    "SETTINGS",
    "SETTING_FIELD",
    "SETTING_NAME",
    "BiasBlock",
    "DatasetSummary",
    "LanguageBlock",
    "PairBlock",
    "Setting",
    "as_setting",
    "first_dataset",
    "headline",
    "number",
    "pair_label",
    "parse_query_key",
    "query_key",
    "read_datasets",
    "split_pair",
]


@dataclass
class DatasetResult:
    """Metrics of one benchmark in every setting, plus per-query AP (for paired significance tests)."""

    summary: DatasetSummary
    per_query_ap: dict[str, dict[str, float]] = field(default_factory=dict)  # setting key -> query id -> AP
