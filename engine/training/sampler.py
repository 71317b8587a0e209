"""Batch strategies as a sentence-transformers batch sampler.

A strategy decides, batch by batch, which pool a batch is drawn from: X-X-mono (`xx`: one language for question and
answer, the whole batch in one language) or X-Y (`xy`: question and answer languages differ). LAReQA's other
baselines (arXiv 2004.05484): X-X (`xx-mix`: same-language pairs, a batch mixing languages) and En-En (`en-en`:
English pairs only). Every batch, whatever the
strategy, holds no two pairs of the same conflict set (one parallel question group, or several groups that share an
answer sentence: translations and shared answers would be false negatives for each other) and no repeated text.
With hard negatives, a pair's negative is a text of the batch too, and it may not answer another question of the batch.
Same seed and epoch -> same batches.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

from ..common.errors import ConfigError
from ..common.vocabulary import EN_EN, GRID_STRATEGIES, HYBRID, STRATEGY_OF, XX, XX_MIX, XY, Strategy, check_strategy
from .pairs import PairTable

# the pools a batch is drawn from, in the order of a training's batch composition (its keys in results.json and events)
BatchPool: TypeAlias = Literal["xx", "xy", "mix", "xx-mix"]


@dataclass(frozen=True)
class BatchKind:
    """What one batch is drawn from: `xx` (X-X pairs of one language), `xy` (X-Y pairs), `xx-mix` (X-X pairs, the
    languages mixed: LAReQA's X-X) or `mix` (`n_xx` X-X pairs of one language, the rest X-Y: hybrid mixed within
    batches). A strategy chooses the kind; the sampler records what it drew, with the X-X language (`lang`) and the
    X-X pairs it found (`n_xx`)."""

    pool: BatchPool
    n_xx: int = 0  # mix: how many pairs of the batch are X-X
    lang: str | None = None  # xx, as drawn: the batch's language

    @classmethod
    def mixed(cls, n_xx: int) -> BatchKind:
        return cls("mix", n_xx=n_xx)


XX_BATCH = BatchKind("xx")
XY_BATCH = BatchKind("xy")
XX_MIX_BATCH = BatchKind("xx-mix")


class BatchStrategy(ABC):
    """Chooses the kind of each batch. `spec` is the strategy's declaration in the vocabulary: its name and the
    pairs it needs."""

    spec: ClassVar[Strategy]

    @property
    def name(self) -> str:
        return self.spec.name

    def p_xx(self, table: PairTable) -> float:
        return 0.0

    @abstractmethod
    def kind(
        self, batch_no: int, total: int, batch_size: int, rng: np.random.Generator, table: PairTable
    ) -> BatchKind: ...


class MonolingualStrategy(BatchStrategy):
    spec = XX

    def kind(self, batch_no: int, total: int, batch_size: int, rng: np.random.Generator, table: PairTable) -> BatchKind:
        return XX_BATCH


class MixedMonolingualStrategy(BatchStrategy):
    """LAReQA's X-X: every pair same-language, the languages of a batch mixed (drawn from all X-X pairs)."""

    spec = XX_MIX

    def kind(self, batch_no: int, total: int, batch_size: int, rng: np.random.Generator, table: PairTable) -> BatchKind:
        return XX_MIX_BATCH


class EnglishStrategy(MonolingualStrategy):
    """LAReQA's En-En: English question-answer pairs only (X-X batches of `spec.only_lang`)."""

    spec = EN_EN


class CrossLingualStrategy(BatchStrategy):
    spec = XY

    def kind(self, batch_no: int, total: int, batch_size: int, rng: np.random.Generator, table: PairTable) -> BatchKind:
        return XY_BATCH


@dataclass
class HybridStrategy(BatchStrategy):
    """X-X with probability p, X-Y otherwise; p may follow a linear schedule or be proportional to pool sizes.

    mix="batch": each whole batch is X-X or X-Y (2408.10536). mix="within": every batch holds Binomial(B, p)
    X-X pairs (from one language) and the rest X-Y pairs.
    """

    p: float | str = 0.5
    p_end: float | None = None
    mix: str = "batch"
    spec: ClassVar[Strategy] = HYBRID

    def p_xx(self, table: PairTable) -> float:
        if self.p == "proportional":
            return float(table.is_xx.mean()) if len(table) else 0.0
        return float(self.p)

    def p_at(self, batch_no: int, total: int, table: PairTable) -> float:
        p0 = self.p_xx(table)
        if self.p_end is None or total <= 1:
            return p0
        return p0 + (self.p_end - p0) * batch_no / (total - 1)

    def kind(self, batch_no: int, total: int, batch_size: int, rng: np.random.Generator, table: PairTable) -> BatchKind:
        p = self.p_at(batch_no, total, table)
        if self.mix == "within":
            return BatchKind.mixed(int(rng.binomial(batch_size, p)))
        return XX_BATCH if rng.random() < p else XY_BATCH


# the sampler of each trained strategy, keyed by its declaration in the vocabulary (engine/common cannot name these
# classes: it sits below training); a test holds the keys to exactly the vocabulary's trained strategies
SAMPLERS: dict[Strategy, type[BatchStrategy]] = {
    cls.spec: cls
    for cls in (MonolingualStrategy, CrossLingualStrategy, HybridStrategy, MixedMonolingualStrategy, EnglishStrategy)
}


def make_strategy(name: str, **options: Any) -> BatchStrategy:
    check_strategy(name, GRID_STRATEGIES)
    cls = SAMPLERS[STRATEGY_OF[name]]
    return cls(**options) if cls is HybridStrategy else cls()


class _Pool:
    """A reshuffled cycle over row indices; conflicting rows are deferred to the next batch, not dropped."""

    def __init__(self, rows: np.ndarray, rng: np.random.Generator) -> None:
        self.rows = rows
        self.rng = rng
        self.queue: list[int] = []
        self.deferred: list[int] = []

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, n: int, used_groups: set[int], used_texts: set[int], table: PairTable) -> list[int]:
        out: list[int] = []
        skipped: list[int] = []
        budget = 2 * len(self.rows) + n  # at most two passes over the pool before giving up on this batch
        while len(out) < n and budget > 0:
            if not self.deferred and not self.queue:
                self.queue = self.rng.permutation(self.rows).tolist()[::-1]
            row = self.deferred.pop() if self.deferred else self.queue.pop()
            budget -= 1
            g, qt, at = int(table.conflict[row]), int(table.q_text[row]), int(table.a_text[row])
            nt, nc = int(table.n_text[row]), int(table.n_conflict[row])  # hard negative (-1: none)
            if g in used_groups or qt in used_texts or at in used_texts or qt == at:
                skipped.append(row)
                continue
            if nt >= 0 and (nt in used_texts or nt in (qt, at) or nc in used_groups or nc == g):
                skipped.append(row)  # the negative is in the batch already, or answers a question of the batch
                continue
            used_groups.add(g)
            used_texts.update((qt, at))
            if nt >= 0:
                used_texts.add(nt)
                if nc >= 0:
                    used_groups.add(nc)
            out.append(row)
        self.deferred.extend(reversed(skipped))
        return out


class StrategyBatchSampler(DefaultBatchSampler):
    """Yields batches of dataset row indices following a BatchStrategy over a PairTable aligned with the rows."""

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = True,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
        *,
        table: PairTable,
        strategy: BatchStrategy,
        xx_langs: str = "proportional",
        total_batches: int | None = None,
        num_replicas: int = 1,
    ) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
        # distributed: one global batch of batch_size x num_replicas keeps the strategy's invariants, and is yielded
        # as num_replicas consecutive per-device chunks; accelerate's BatchSamplerShard deals chunk r to rank r
        self.num_replicas = num_replicas
        self.global_size = batch_size * num_replicas
        if len(dataset) != len(table):
            raise ValueError(f"dataset has {len(dataset)} rows but the pair table {len(table)}")
        self.table = table
        self.strategy = strategy
        self.xx_langs = xx_langs
        self.total_batches = total_batches
        self.history: list[BatchKind] = []  # every batch yielded, in order, as drawn
        spec = strategy.spec  # the pairs it needs
        xx = table.is_xx
        self._xx_rows = {code: np.flatnonzero(xx & (table.q_lang == code)) for code in range(len(table.langs))}
        self._xx_rows = {c: r for c, r in self._xx_rows.items() if len(r)}
        if spec.only_lang is not None:
            only = table.langs.index(spec.only_lang) if spec.only_lang in table.langs else -1
            self._xx_rows = {c: r for c, r in self._xx_rows.items() if c == only}
            if not self._xx_rows:
                raise ConfigError(f"strategy {spec.name} needs {spec.only_lang} pairs: add it to --train-langs")
        self._xx_all = np.flatnonzero(xx)
        self._xy_rows = np.flatnonzero(~xx)
        if spec.needs_xy(every_batch_xx=strategy.p_xx(table) >= 1) and not len(self._xy_rows):
            raise ConfigError("strategy needs X-Y pairs but the training data has one language: add --train-langs")
        if spec.xx and not self._xx_rows:
            raise ConfigError("strategy needs X-X pairs but the training data has none")

    def __len__(self) -> int:
        """Per-device batches yielded per epoch (num_replicas chunks per global batch)."""
        n = len(self.table) / self.global_size
        return (int(n) if self.drop_last or self.num_replicas > 1 else math.ceil(n)) * self.num_replicas

    def _xx_lang(self, rng: np.random.Generator) -> int:
        codes = sorted(self._xx_rows)
        if self.xx_langs == "balanced":
            return int(rng.choice(codes))
        sizes = np.array([len(self._xx_rows[c]) for c in codes], dtype=np.float64)
        return int(rng.choice(codes, p=sizes / sizes.sum()))

    def __iter__(self) -> Iterator[list[int]]:
        epoch = getattr(self, "epoch", 0)
        rng = np.random.default_rng([self.seed, epoch])
        xx_pools = {c: _Pool(rows, rng) for c, rows in self._xx_rows.items()}
        xy_pool = _Pool(self._xy_rows, rng)
        mixed_pool = _Pool(self._xx_all, rng)
        n_batches = len(self) // self.num_replicas  # global batches
        total = self.total_batches or n_batches
        size = self.global_size
        for b in range(n_batches):
            kind = self.strategy.kind(epoch * n_batches + b, total, size, rng, self.table)
            groups: set[int] = set()
            texts: set[int] = set()
            if kind.pool == "xy":
                batch = xy_pool.take(size, groups, texts, self.table)
                drawn = kind
            elif kind.pool == "xx-mix":
                batch = mixed_pool.take(size, groups, texts, self.table)
                drawn = kind
            elif kind.pool == "xx":
                lang = self._xx_lang(rng)
                batch = xx_pools[lang].take(size, groups, texts, self.table)
                drawn = BatchKind("xx", lang=self.table.langs[lang])
            else:
                lang = self._xx_lang(rng)
                batch = xx_pools[lang].take(kind.n_xx, groups, texts, self.table)
                batch += xy_pool.take(size - len(batch), groups, texts, self.table)
                drawn = BatchKind.mixed(int(self.table.is_xx[batch].sum()))
            if len(batch) < 2 or (self.num_replicas > 1 and len(batch) < size):
                continue  # too few distinct groups left for in-batch negatives (or to give every rank a full chunk)
            self.history.append(drawn)
            if self.num_replicas == 1:
                yield batch
            else:
                for r in range(self.num_replicas):
                    yield batch[r * self.batch_size : (r + 1) * self.batch_size]

    def composition(self, steps: int | None = None) -> dict[str, int]:
        """Counts of batch kinds among the first `steps` batches yielded: {"xx": .., "xy": .., "mix": ..} (and
        "xx-mix" when there are LAReQA X-X batches)."""
        out = {"xx": 0, "xy": 0, "mix": 0}
        for kind in self.history[:steps]:
            out[kind.pool] = out.get(kind.pool, 0) + 1
        return out


@dataclass
class SamplerFactory:
    """The callable sentence-transformers' trainer calls to build the batch sampler (args.batch_sampler)."""

    table: PairTable
    strategy: BatchStrategy
    xx_langs: str = "proportional"
    total_batches: int | None = None
    num_replicas: int = 1
    last: StrategyBatchSampler | None = None
    eval_table: PairTable | None = None  # the validation pairs (early stopping): same strategy, fixed batches

    def __call__(self, dataset: Any, **kwargs: Any) -> StrategyBatchSampler:
        if self.eval_table is not None and len(dataset) == len(self.eval_table) != len(self.table):
            # the trainer asks for the validation loader's sampler: seed and epoch fixed, so every evaluation
            # scores the same batches
            return StrategyBatchSampler(
                dataset,
                table=self.eval_table,
                strategy=self.strategy,
                xx_langs=self.xx_langs,
                num_replicas=self.num_replicas,
                **kwargs,
            )
        self.last = StrategyBatchSampler(
            dataset,
            table=self.table,
            strategy=self.strategy,
            xx_langs=self.xx_langs,
            total_batches=self.total_batches,
            num_replicas=self.num_replicas,
            **kwargs,
        )
        return self.last
