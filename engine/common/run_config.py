"""The configuration of one run (a grid cell): what to train (optionally) and what to evaluate. Plain settings and
the checks of the settings themselves, below every layer that reads them (training, runs, cli, tui);
`runs.config.check_config` adds the checks against the datasets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import ConfigError
from .setting import EVALUATION, TRAINING, parse_alphas, setting
from .vocabulary import (
    BASELINE,
    DATASET_NAMES,
    DEVICE_HELP,
    EMPTY_TOPICS,
    EVAL_RUNTIMES,
    GRID_STRATEGIES,
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
    """Every field is declared once, here (`setting`: default, help, the commands that take it, choices): the CLI
    flags, a preset's [run] keys and the TUI's Setup fields are made from these declarations."""

    backbone: str | None = setting(None, "short name, hub id or local path (default: the offline bundled mE5-small)",
                                   ("eval", "train"))  # fmt: skip
    strategy: str = setting(BASELINE, "batch strategy to fine-tune with (a grid: [preset] strategies)",
                            ("train",), choices=GRID_STRATEGIES, required=True)  # fmt: skip
    eval_data: list[str] = setting(["xquad-r"], f"evaluation datasets, comma-separated, of: {', '.join(DATASET_NAMES)}",
                                   EVALUATION)  # fmt: skip
    train_data: str = setting("mlqa-r", "training dataset (parallel QA: mlqa-r, xquad-r)", TRAINING)
    data_dir: str | None = setting(None, "folder holding the datasets (default: $HBT_DATA_DIR, else download)",
                                   EVALUATION)  # fmt: skip
    langs: list[str] | None = setting(None, "evaluation languages, e.g. ar,de,en (default: all of each dataset's)",
                                      EVALUATION)  # fmt: skip
    train_langs: list[str] | None = setting(None, "training languages (default: all of the training set's)",
                                            TRAINING)  # fmt: skip
    max_queries: int | None = setting(None, "at most N parallel question groups per evaluation dataset", EVALUATION)
    text_mode: str = setting("auto", "what is encoded for a candidate (auto: each dataset's convention; MIRACL: "
                             "title then text)", EVALUATION, choices=TEXT_MODES)  # fmt: skip
    seed: int = setting(0, "training seed (a grid: [preset] seeds)", ("train",))
    # training
    hybrid_p: float | str = setting(0.5, "P(X-X batch) of hybrid, or 'proportional' (by pool sizes, 2408.10536); "
                                    "a list (0,0.25,0.5,0.75,1) sweeps alpha in a grid: one arm per value", TRAINING,
                                    parse=parse_alphas)  # fmt: skip
    hybrid_mix: str = setting("batch", "batch: whole batches are X-X or X-Y; within: each batch mixes both", TRAINING,
                              choices=HYBRID_MIXES)  # fmt: skip
    hybrid_p_end: float | None = setting(None, "linear schedule for p from hybrid_p to this value over training",
                                         TRAINING)  # fmt: skip
    xx_langs: str = setting("proportional", "how X-X batches pick their language", TRAINING, choices=XX_LANGS)
    steps: int | None = setting(50, "training steps", TRAINING, group="length")
    epochs: float | None = setting(None, "training epochs (instead of steps)", TRAINING, group="length")
    batch_size: int = setting(16, "pairs per batch (in-batch negatives: at least 2)", TRAINING)
    lr: float | None = setting(None, "learning rate (default: the backbone's measured one, see `list backbones`; "
                               "else 2e-5)", TRAINING)  # fmt: skip
    warmup_ratio: float = setting(0.1, "share of the steps the learning rate warms up", TRAINING)
    scale: float | None = setting(None, "MNRL scale, 1 / temperature (default: the backbone's, else 20)", TRAINING)
    cached_loss: bool = setting(False, "CachedMultipleNegativesRankingLoss (big batches on small memory)", TRAINING)
    mini_batch_size: int = setting(16, "mini-batch of the cached loss", TRAINING)
    max_seq_length: int = setting(128, "training: texts cut at this many tokens", TRAINING)
    # evaluation: texts cut at this many tokens, the same for every cell of a grid (the untrained baseline included);
    # None: the backbone's own length (its registry entry, e.g. 512), capped by what its tokenizer allows
    eval_max_seq_length: int | None = setting(None, "cut evaluation texts at N tokens (default: the backbone's own "
                                              "length)", EVALUATION)  # fmt: skip
    freeze_embeddings: bool | None = setting(None, "freeze the word embeddings (default: on CPU yes, on GPU no)",
                                             TRAINING)  # fmt: skip
    train_top_layers: int | None = setting(None, "train only the top N transformer layers (+ pooling; CPU speed)",
                                           TRAINING)  # fmt: skip
    frozen_cache: bool = setting(True, "with train_top_layers: compute the frozen bottom once per unique text",
                                 TRAINING)  # fmt: skip
    eval_runtime: str = setting("torch", "evaluation encoding: torch, or ONNX Runtime (the fast extra)", EVALUATION,
                                choices=EVAL_RUNTIMES)  # fmt: skip
    max_train_pairs: int | None = setting(None, "keep a seeded sample of N question groups for training", TRAINING)
    hard_negatives: bool = setting(False, "one hard negative per pair: another sentence of the answer's paragraph "
                                   "(2408.10536)", TRAINING)  # fmt: skip
    weight_decay: float = setting(0.0, "AdamW weight decay (2408.10536: 0.01)", TRAINING)
    # early stopping on a held-out validation split (2408.10536 picks the checkpoint of lowest validation loss)
    validation_fraction: float | None = setting(None, "hold out this share of the training question groups; "
                                                "validation loss every eval_steps", TRAINING)  # fmt: skip
    eval_steps: int = setting(50, "steps between validation losses", TRAINING)
    early_stopping_patience: int | None = setting(None, "stop after N validation losses without a new minimum; the "
                                                  "best checkpoint is kept", TRAINING)  # fmt: skip
    split_by_article: bool = setting(False, "train and evaluate on one dataset, split by article (asserted "
                                     "disjoint)", TRAINING)  # fmt: skip
    eval_batch_size: int = setting(64, "texts per encoding batch in evaluation", EVALUATION)
    shard_size: int | None = setting(None, "stream candidate embeddings to disk shards of N rows (huge pools)",
                                     EVALUATION)  # fmt: skip
    index: str = setting("exact", "top-k search (ivf / hnsw: approximate, recall@10 against exact reported; mAP "
                         "stays exact)", EVALUATION, choices=INDEXES)  # fmt: skip
    corpus_limit: int | None = setting(None, "xor-retrieve: gold passages + N sampled others instead of the whole "
                                       "collection", EVALUATION)  # fmt: skip
    allow_large: bool = setting(False, "start encoding a corpus estimated above an hour (MIRACL full corpora)",
                                EVALUATION, flag="--yes")  # fmt: skip
    empty_topics: str = setting("keep", "MIRACL topics without a relevant judgement: keep (scored 0, as trec_eval) "
                                "or drop", EVALUATION, choices=EMPTY_TOPICS)  # fmt: skip
    checkpoint_steps: int | None = setting(None, "save a resumable checkpoint every N steps", TRAINING)
    save_model: bool = setting(True, "save the trained model in the cell's folder", TRAINING)
    device: str = setting("auto", DEVICE_HELP, EVALUATION)
    precision: str = setting("auto", "auto: bf16 on a GPU that has it, else fp16; fp32 on CPU / MPS", EVALUATION,
                             choices=PRECISIONS)  # fmt: skip

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
