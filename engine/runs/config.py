"""The configuration of one run (a grid cell): what to train (optionally) and what to evaluate."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hbt.engine.common.errors import ConfigError

STRATEGIES = ("none", "xx", "xy", "hybrid", "xx-mix", "en-en")  # xx-mix, en-en: LAReQA's X-X and En-En
# what the papers call them (LAReQA 2004.05484, 2408.10536): tables and the reference comparison show these
PAPER_NAMES = {
    "none": "zero-shot",
    "xx": "X-X-mono",
    "xy": "X-Y",
    "hybrid": "hybrid",
    "xx-mix": "X-X",
    "en-en": "En-En",
}


def paper_name(strategy: str) -> str:
    return PAPER_NAMES.get(strategy, strategy)


DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
POSITIVE = ("steps", "epochs", "batch_size", "lr", "scale", "mini_batch_size", "max_seq_length", "max_train_pairs",
            "max_queries", "eval_batch_size", "checkpoint_steps", "train_top_layers", "eval_steps",
            "early_stopping_patience")  # fmt: skip
INDEXES = ("exact", "ivf", "hnsw")  # top-k search over the multilingual pool (ranks and mAP are always exact)


@dataclass
class RunConfig:
    backbone: str | None = None  # None: the offline default backbone
    strategy: str = "none"  # none = evaluate the backbone as it is (zero-shot baseline)
    eval_data: list[str] = field(default_factory=lambda: ["xquad-r"])
    train_data: str = "mlqa-r"
    data_dir: str | None = None
    langs: list[str] | None = None  # evaluation languages (default: all of each dataset's)
    train_langs: list[str] | None = None  # training languages (default: all of the training set's)
    max_queries: int | None = None  # parallel question groups per evaluation dataset
    text_mode: str = "sentence"
    seed: int = 0
    # training
    hybrid_p: float | str = 0.5  # probability of an X-X batch, or "proportional" (by pool sizes, 2408.10536)
    hybrid_mix: str = "batch"  # batch: whole batches are X-X or X-Y; within: each batch mixes both
    hybrid_p_end: float | None = None  # linear schedule for p from hybrid_p to this value over training
    xx_langs: str = "proportional"  # how X-X batches pick their language: proportional | balanced
    steps: int | None = 50
    epochs: float | None = None
    batch_size: int = 16
    lr: float | None = None  # None: the backbone's measured default (registry train_defaults), else 2e-5
    warmup_ratio: float = 0.1
    scale: float | None = None  # MNRL scale = 1 / temperature; None: the backbone's default, else 20
    cached_loss: bool = False  # CachedMultipleNegativesRankingLoss (big batches on small memory)
    mini_batch_size: int = 16
    max_seq_length: int = 128
    freeze_embeddings: bool | None = None  # None: freeze on CPU (memory), train on GPU
    train_top_layers: int | None = None  # train only the top N transformer layers (+ pooling); None: all
    frozen_cache: bool = True  # with train_top_layers: compute the frozen bottom once per unique text (shared)
    eval_runtime: str = "torch"  # onnx-int8 | onnx-fp32: ONNX Runtime for evaluation encoding (the fast extra)
    max_train_pairs: int | None = None
    hard_negatives: bool = False  # one hard negative per pair: a non-answer sentence of the answer's paragraph
    weight_decay: float = 0.0  # AdamW weight decay (2408.10536: 0.01)
    # early stopping on a held-out validation split (2408.10536 picks the checkpoint of lowest validation loss)
    validation_fraction: float | None = None  # share of the training question groups held out for validation
    eval_steps: int = 50  # validation loss every N steps (with validation_fraction)
    early_stopping_patience: int | None = None  # stop after N evaluations without a lower validation loss
    split_by_article: bool = False  # allow train_data == eval dataset, split by article (asserted disjoint)
    eval_batch_size: int = 64
    shard_size: int | None = None  # stream candidate embeddings to on-disk shards of N rows (pools beyond memory)
    index: str = "exact"  # ivf | hnsw: approximate top-k, its recall@10 against exact reported
    corpus_limit: int | None = None  # XOR-Retrieve: gold passages + N sampled others instead of the whole collection
    allow_large: bool = False  # start encoding a corpus estimated above an hour (MIRACL full corpora): --yes
    checkpoint_steps: int | None = None
    save_model: bool = True
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "auto"  # auto (bf16 on a GPU that has it, else fp16; fp32 on CPU/MPS) | fp32 | bf16 | fp16

    def validate(self) -> RunConfig:
        for key in ("langs", "train_langs", "eval_data"):
            values = getattr(self, key)
            if values is not None and (not values or not all(isinstance(v, str) and v.strip() for v in values)):
                hint = "; leave it out for all languages" if key != "eval_data" else ""
                raise ConfigError(f"{key} has an empty value ({values!r}){hint}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r} (allowed: {', '.join(STRATEGIES)})")
        if self.text_mode not in ("sentence", "sentence+context"):
            raise ConfigError(f"unknown text mode {self.text_mode!r} (allowed: sentence, sentence+context)")
        if self.hybrid_mix not in ("batch", "within"):
            raise ConfigError(f"unknown hybrid mix {self.hybrid_mix!r} (allowed: batch, within)")
        if self.xx_langs not in ("proportional", "balanced"):
            raise ConfigError(f"unknown xx_langs {self.xx_langs!r} (allowed: balanced, proportional)")
        if isinstance(self.hybrid_p, str) and self.hybrid_p != "proportional":
            raise ConfigError(f"hybrid_p must be a number in [0, 1] or 'proportional', got {self.hybrid_p!r}")
        if isinstance(self.hybrid_p, float | int) and not 0 <= float(self.hybrid_p) <= 1:
            raise ConfigError(f"hybrid_p must be in [0, 1], got {self.hybrid_p}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be at least 2 for in-batch negatives, got {self.batch_size}")
        if self.strategy != "none" and self.train_data in self.eval_data and not self.split_by_article:
            raise ConfigError(
                f"train_data {self.train_data!r} is also an eval dataset: zero-shot evaluation needs disjoint data "
                "(pick another eval dataset, or set split_by_article = true to hold out half of its articles)"
            )
        if self.shard_size is not None and self.shard_size < 1:
            raise ConfigError(f"shard_size must be a positive number of rows, got {self.shard_size}")
        if self.eval_runtime not in ("torch", "onnx-int8", "onnx-fp32"):
            raise ConfigError(f"unknown eval_runtime {self.eval_runtime!r} (allowed: torch, onnx-int8, onnx-fp32)")
        if self.index not in INDEXES:
            raise ConfigError(f"unknown index {self.index!r} (allowed: {', '.join(INDEXES)})")
        if not DEVICE.fullmatch(self.device):
            raise ConfigError(f"unknown device {self.device!r} (allowed: auto, cpu, cuda, cuda:N, mps)")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r} (allowed: {', '.join(PRECISIONS)})")
        for key in POSITIVE:
            value = getattr(self, key)
            if value is not None and not value > 0:  # `not >` also catches NaN
                raise ConfigError(f"{key} must be positive, got {value}")
        if self.corpus_limit is not None and self.corpus_limit < 0:
            raise ConfigError(f"corpus_limit must be 0 or more passages, got {self.corpus_limit}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.hybrid_p_end is not None and not 0 <= self.hybrid_p_end <= 1:
            raise ConfigError(f"hybrid_p_end must be in [0, 1], got {self.hybrid_p_end}")
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 0.5:
            raise ConfigError(f"validation_fraction must be in (0, 0.5), got {self.validation_fraction}")
        if self.early_stopping_patience is not None and self.validation_fraction is None:
            raise ConfigError("early_stopping_patience needs a validation split: set validation_fraction too")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.steps is None and self.epochs is None:
            raise ConfigError("give steps or epochs")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
