"""The configuration of one run (a grid cell): what to train (optionally) and what to evaluate. Plain settings and
the checks of the settings themselves, below every layer that reads them (training, runs, cli, tui);
`runs.config.check_config` adds the checks against the datasets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError
from .vocabulary import (
    BASELINE,
    EMPTY_TOPICS,
    EVAL_RUNTIMES,
    HYBRID_MIXES,
    INDEXES,
    POSITIVE,
    PRECISIONS,
    TEXT_MODES,
    XX_LANGS,
    bad_value,
    check_choice,
    check_device,
    check_positive,
    check_seed,
    check_strategy,
    check_unit,
)


@dataclass
class RunConfig:
    backbone: str | None = None  # None: the offline default backbone
    strategy: str = BASELINE  # none = evaluate the backbone as it is (zero-shot baseline)
    eval_data: list[str] = field(default_factory=lambda: ["xquad-r"])
    train_data: str = "mlqa-r"
    data_dir: str | None = None
    langs: list[str] | None = None  # evaluation languages (default: all of each dataset's)
    train_langs: list[str] | None = None  # training languages (default: all of the training set's)
    max_queries: int | None = None  # parallel question groups per evaluation dataset
    text_mode: str = "auto"  # auto: each dataset's convention (MIRACL: title then text); see vocabulary.TEXT_MODES
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
    max_seq_length: int = 128  # training: texts cut at this many tokens
    # evaluation: texts cut at this many tokens, the same for every cell of a grid (the untrained baseline included);
    # None: the backbone's own length (its registry entry, e.g. 512), capped by what its tokenizer allows
    eval_max_seq_length: int | None = None
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
    empty_topics: str = "keep"  # MIRACL topics with no relevant judgement: keep (scored 0, as trec_eval) | drop
    checkpoint_steps: int | None = None
    save_model: bool = True
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "auto"  # auto (bf16 on a GPU that has it, else fp16; fp32 on CPU/MPS) | fp32 | bf16 | fp16

    def validate(self) -> RunConfig:
        """The checks of the settings themselves (no data, no model); every ConfigError carries its field as `key`.
        `check_config` runs these and the checks against the datasets."""
        for key in ("langs", "train_langs", "eval_data"):
            values = getattr(self, key)
            if key == "eval_data" and values == []:
                raise bad_value(key, "must name at least one dataset")
            if values is not None and (not values or not all(isinstance(v, str) and v.strip() for v in values)):
                hint = "; leave it out for all languages" if key != "eval_data" else ""
                raise bad_value(key, f"has an empty value ({values!r}){hint}")
        check_strategy(self.strategy)
        check_choice("text_mode", "text mode", self.text_mode, TEXT_MODES)
        check_choice("empty_topics", "empty_topics", self.empty_topics, EMPTY_TOPICS)
        check_choice("hybrid_mix", "hybrid mix", self.hybrid_mix, HYBRID_MIXES)
        check_choice("xx_langs", "xx_langs", self.xx_langs, XX_LANGS)
        if isinstance(self.hybrid_p, str) and self.hybrid_p != "proportional":
            raise bad_value("hybrid_p", f"must be a number in [0, 1] or 'proportional', got {self.hybrid_p!r}")
        if not isinstance(self.hybrid_p, str):
            check_unit("hybrid_p", self.hybrid_p)
        if self.batch_size < 2:
            raise bad_value("batch_size", f"must be at least 2 for in-batch negatives, got {self.batch_size}")
        if self.strategy != BASELINE and self.train_data in self.eval_data and not self.split_by_article:
            raise bad_value(
                "train_data",
                f"{self.train_data!r} is also an eval dataset: zero-shot evaluation needs disjoint data "
                "(pick another eval dataset, or set split_by_article = true to hold out half of its articles)",
            )
        if self.shard_size is not None and self.shard_size < 1:
            raise bad_value("shard_size", f"must be a positive number of rows, got {self.shard_size}")
        check_choice("eval_runtime", "eval_runtime", self.eval_runtime, EVAL_RUNTIMES)
        check_choice("index", "index", self.index, INDEXES)
        check_device(self.device)
        check_choice("precision", "precision", self.precision, PRECISIONS)
        for key in POSITIVE:
            check_positive(key, getattr(self, key))
        if self.corpus_limit is not None and self.corpus_limit < 0:
            raise bad_value("corpus_limit", f"must be 0 or more passages, got {self.corpus_limit}")
        check_unit("warmup_ratio", self.warmup_ratio, closed=False)
        check_unit("hybrid_p_end", self.hybrid_p_end)
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 0.5:
            raise bad_value("validation_fraction", f"must be in (0, 0.5), got {self.validation_fraction}")
        if self.early_stopping_patience is not None and self.validation_fraction is None:
            raise bad_value("early_stopping_patience", "needs a validation split: set validation_fraction too")
        if not self.weight_decay >= 0:
            raise bad_value("weight_decay", f"must be >= 0, got {self.weight_decay}")
        if self.weight_decay == float("inf"):
            raise bad_value("weight_decay", f"must be a finite number, got {self.weight_decay}")
        check_seed("seed", self.seed)
        if self.steps is None and self.epochs is None:
            raise ConfigError("give steps or epochs", key="steps")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
