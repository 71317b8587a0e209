"""Fine-tuning with in-batch negatives through sentence-transformers' trainer, batches built by a strategy."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import PrinterCallback, TrainerCallback

from ..backbones.registry import training_defaults
from ..common.errors import ConfigError
from ..common.events import EventBus, TrainStep
from ..common.interrupts import Cancelled
from ..common.run_config import RunConfig
from . import distributed
from .pairs import PairTable, split_validation
from .sampler import SamplerFactory, make_strategy


class NonFiniteLoss(RuntimeError):
    def __init__(self, step: int, last_finite: float | None) -> None:
        super().__init__(f"loss became NaN/inf at step {step} (last finite loss: {last_finite})")
        self.step = step
        self.last_finite = last_finite


@dataclass
class TrainResult:
    steps: int
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    composition: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    pairs: dict[str, int] = field(default_factory=dict)
    validation: dict[str, Any] | None = None  # early stopping: validation loss curve, best step, stopped early

    @property
    def final_loss(self) -> float | None:
        return self.loss_curve[-1][1] if self.loss_curve else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "final_loss": self.final_loss,
            "loss_curve": [[s, round(v, 6)] for s, v in self.loss_curve],
            "composition": self.composition,
            "seconds": round(self.seconds, 2),
            "pairs": self.pairs,
            **({"validation": self.validation} if self.validation is not None else {}),
        }


class EventCallback(TrainerCallback):
    """Turns the trainer's logs into TrainStep events; stops on a non-finite loss or a cancel request."""

    def __init__(self, bus: EventBus, factory: SamplerFactory, batch_size: int, strategy: str, cancel: Any) -> None:
        self.bus = bus
        self.factory = factory
        self.batch_size = batch_size
        self.strategy = strategy
        self.cancel = cancel
        self.curve: list[tuple[int, float]] = []
        self.t0 = time.perf_counter()
        self.fault: NonFiniteLoss | None = None
        # after a resume: batch kinds of the epochs before the resumed one, and how many steps they were
        self.prior: dict[str, int] = {}
        self.offset = 0

    def composition(self, step: int) -> dict[str, int]:
        """Batch kinds of the first `step` steps of the whole run (a resumed sampler starts at its epoch)."""
        sampler = self.factory.last
        now = sampler.composition(step - self.offset) if sampler else {}
        return {k: self.prior.get(k, 0) + now.get(k, 0) for k in {**self.prior, **now}}

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
        if logs and "eval_loss" in logs:
            self.bus.log(f"validation loss {float(logs['eval_loss']):.4f} at step {int(state.global_step)}")
        if not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        step = int(state.global_step)
        if not math.isfinite(loss):
            self.fault = NonFiniteLoss(step, self.curve[-1][1] if self.curve else None)
            control.should_training_stop = True
            return
        self.curve.append((step, loss))
        sampler = self.factory.last
        elapsed = time.perf_counter() - self.t0
        self.bus.emit(
            TrainStep(
                step=step,
                total_steps=int(state.max_steps),
                epoch=float(state.epoch or 0.0),
                loss=loss,
                lr=float(logs.get("learning_rate", 0.0)),
                batches=self.composition(step) if sampler else {},
                samples_per_s=step * self.batch_size / elapsed if elapsed > 0 else 0.0,
                strategy=self.strategy,
            )
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if _any_rank(self.cancel is not None and self.cancel()):
            control.should_training_stop = True
            control.should_save = True


def _any_rank(flag: bool) -> bool:
    """True when `flag` holds on any rank (all ranks must stop at the same step, or the others would hang)."""
    # (start-up: torch)
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


MAX_WARMUP_STEPS = 10_000


def warmup_steps(config: RunConfig, total: int) -> int:
    """Linear warm-up: warmup_ratio of the run, capped at MAX_WARMUP_STEPS (a huge budget must not mean a warm-up of
    billions of steps at a near-zero learning rate)."""
    return min(int(config.warmup_ratio * total), MAX_WARMUP_STEPS)


def last_checkpoint(out_dir: Path) -> str | None:
    """The newest complete `checkpoint-N` under out_dir: the trainer writes trainer_state.json last, so a folder
    without a readable one was cut off mid-save (kill -9) and is passed over."""
    found: list[tuple[int, Path]] = []
    for path in out_dir.glob("checkpoint-*") if out_dir.is_dir() else []:
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
            found.append((int(path.name.split("-")[-1]), path))
        except (OSError, ValueError):
            continue
    return str(max(found)[1]) if found else None


def pairs_dataset(table: PairTable) -> Dataset:
    """(anchor, positive) columns, plus `negative` when every pair has a hard negative (MNRL scores it as one more
    candidate of its anchor, and of every other anchor in the batch)."""
    columns = {"anchor": [p.question for p in table.pairs], "positive": [p.answer for p in table.pairs]}
    if table.has_negatives:
        columns["negative"] = [p.negative or "" for p in table.pairs]
    return Dataset.from_dict(columns)


def _validation_args(config: RunConfig, eval_table: PairTable | None) -> dict[str, Any]:
    """TrainingArguments for early stopping: validation loss every eval_steps, a checkpoint at each evaluation, the
    lowest-loss checkpoint loaded at the end (transformers' load_best_model_at_end)."""
    if eval_table is None:
        return {}
    return {
        "eval_strategy": "steps",
        "eval_steps": config.eval_steps,
        "per_device_eval_batch_size": config.batch_size,
        "save_strategy": "steps",
        "save_steps": config.eval_steps,
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_loss",
        "greater_is_better": False,
    }


def validation_record(trainer: Any, eval_table: PairTable, config: RunConfig, total: int) -> dict[str, Any]:
    """What early stopping saw: the validation loss curve, the best step (whose weights the model now holds)."""
    curve = [(int(e["step"]), float(e["eval_loss"])) for e in trainer.state.log_history if "eval_loss" in e]
    best = min(curve, key=lambda x: x[1]) if curve else None
    return {
        "fraction": config.validation_fraction,
        "pairs": len(eval_table),
        "eval_steps": config.eval_steps,
        "patience": config.early_stopping_patience,
        "loss_curve": [[s, round(v, 6)] for s, v in curve],
        "best_step": best[0] if best else None,
        "best_loss": round(best[1], 6) if best else None,
        "stopped_early": int(trainer.state.global_step) < total,
    }


def with_backbone_defaults(config: RunConfig) -> RunConfig:
    """lr / scale left unset (None) take the backbone's measured training defaults from the registry."""
    if config.lr is not None and config.scale is not None:
        return config

    defaults = training_defaults(config.backbone)
    return replace(
        config,
        lr=config.lr if config.lr is not None else defaults["lr"],
        scale=config.scale if config.scale is not None else defaults["scale"],
    )


def make_loss(model: Any, config: RunConfig, gather: bool = False) -> Any:
    """In-batch negatives; with `gather` (several devices) every rank's embeddings join the global batch."""
    # (start-up: sentence_transformers)
    from sentence_transformers.sentence_transformer import losses

    config = with_backbone_defaults(config)
    assert config.scale is not None  # filled from the backbone's defaults when unset

    if config.cached_loss:
        return losses.CachedMultipleNegativesRankingLoss(
            model, scale=config.scale, mini_batch_size=config.mini_batch_size, gather_across_devices=gather
        )
    return losses.MultipleNegativesRankingLoss(model, scale=config.scale, gather_across_devices=gather)


def mixed_precision(config: RunConfig, on_cpu: bool) -> dict[str, bool]:
    """TrainingArguments' bf16/fp16 flags: `auto` uses bf16 where the GPU has it, else fp16; none on CPU."""
    # (start-up: torch)
    import torch

    choice = config.precision
    if choice == "auto":
        if on_cpu or not torch.cuda.is_available():
            return {}
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"bf16": choice == "bf16", "fp16": choice == "fp16"}


def _freeze_embeddings(model: Any) -> int:
    """Freeze the word-embedding table (most parameters of multilingual models, most optimizer memory)."""
    frozen = 0
    for name, param in model.named_parameters():
        if "word_embeddings" in name or name.endswith("embed_tokens.weight"):
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


def _train_top_only(model: Any, config: RunConfig, bus: EventBus, table: PairTable | None = None) -> None:
    """Only the top N layers train; the frozen bottom runs in inference mode, cached per text unless disabled."""
    # (start-up: torch, sentence_transformers, transformers)
    from ..backbones.partial import enable_partial, encoder_layers, shared_folder, warm_frozen_cache

    n = int(config.train_top_layers or 0)
    module = enable_partial(model, n, cache=None) if not config.frozen_cache else enable_partial(model, n)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    folder = shared_folder(model)
    shared = f", shared with other processes through {folder}" if folder is not None else ""
    cached = f"cached per unique text{shared}" if config.frozen_cache else "recomputed every step"
    bus.log(f"training the top {n} of {len(encoder_layers(module.auto_model))} layers ({trainable:,} parameters); "
            f"frozen bottom {cached}")  # fmt: skip
    if config.frozen_cache and table is not None:
        prompts = getattr(model, "prompts", {}) or {}
        q, p = (
            (prompts.get("query"), prompts.get("passage"))
            if prompts.get("query") and prompts.get("passage")
            else (None, None)
        )
        texts = {q: [x.question for x in table.pairs]}
        texts.setdefault(p, []).extend(x.answer for x in table.pairs)
        bus.stage("frozen-cache", f"bottom outputs of {sum(len(v) for v in texts.values())} training texts")
        report = warm_frozen_cache(model, texts, batch_size=config.eval_batch_size)
        if report.skipped:
            bus.log(f"frozen cache: {report.texts} training texts exceed half its bound; filled during training")
        else:
            shared = f", {report.read} read from the cache folder" if report.read else ""
            bus.log(f"frozen cache: {report.computed} of {report.texts} texts computed{shared} in "
                    f"{report.seconds:.1f}s; store {report.nbytes / 2**20:.0f} MiB")  # fmt: skip


@dataclass
class TrainerBundle:
    trainer: Any
    callback: EventCallback
    factory: SamplerFactory
    total_steps: int
    table: PairTable | None = None  # the pairs trained on (the validation pairs held out)
    eval_table: PairTable | None = None


def build_trainer(
    model: Any,
    table: PairTable,
    config: RunConfig,
    out_dir: Path,
    bus: EventBus,
    cancel: Any = None,
    batch_sampler: Any = None,
) -> TrainerBundle:
    """The sentence-transformers trainer for `config`; `batch_sampler` overrides the strategy (benchmarks)."""
    # (start-up: torch)
    import torch

    config = with_backbone_defaults(config)
    assert config.lr is not None  # filled from the backbone's defaults when unset
    # (start-up: sentence_transformers)
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    on_cpu = not torch.cuda.is_available() or config.device == "cpu"
    freeze = config.freeze_embeddings if config.freeze_embeddings is not None else on_cpu
    if freeze:
        bus.log(f"froze {_freeze_embeddings(model):,} word-embedding parameters (freeze_embeddings)")
    model.max_seq_length = min(config.max_seq_length, model.max_seq_length or config.max_seq_length)
    if config.train_top_layers:  # after max_seq_length: the cache keys are the truncated token sequences
        _train_top_only(model, config, bus, table)
    eval_table = None
    if config.validation_fraction:
        table, eval_table = split_validation(table, config.validation_fraction, config.seed)
        if len(eval_table) < config.batch_size:
            raise ConfigError(
                f"validation split holds {len(eval_table)} pairs, fewer than one batch of {config.batch_size}: "
                "raise validation_fraction"
            )
        bus.log(f"validation: {len(eval_table)} pairs held out, loss every {config.eval_steps} steps")
    options: dict[str, Any] = {"p": config.hybrid_p, "p_end": config.hybrid_p_end, "mix": config.hybrid_mix}
    strategy = make_strategy(config.strategy, **options)
    batches_per_epoch = max(len(table) // config.batch_size, 1)
    total = config.steps if config.steps else math.ceil(batches_per_epoch * (config.epochs or 1))
    factory = SamplerFactory(table, strategy, config.xx_langs, total_batches=total, eval_table=eval_table)
    prompts = getattr(model, "prompts", {}) or {}
    precision = mixed_precision(config, on_cpu)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir),
        max_steps=total,
        num_train_epochs=config.epochs or 1,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=warmup_steps(config, total),
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=1,
        logging_nan_inf_filter=False,  # the trainer would log a NaN step as the window's mean: we must see it
        save_total_limit=2,
        report_to="none",
        batch_sampler=batch_sampler if batch_sampler is not None else factory,
        dataloader_drop_last=True,
        disable_tqdm=True,
        use_cpu=on_cpu,
        ddp_backend="gloo" if on_cpu and distributed.world_size() > 1 else None,
        bf16=precision.get("bf16", False),
        fp16=precision.get("fp16", False),
        prompts={"anchor": prompts["query"], "positive": prompts["passage"], "negative": prompts["passage"]}
        if prompts.get("query") and prompts.get("passage")
        else None,
        **{
            "save_strategy": "steps" if config.checkpoint_steps else "no",
            "save_steps": config.checkpoint_steps or 500,
            **_validation_args(config, eval_table),  # early stopping saves at every evaluation
        },
    )
    factory.num_replicas = args.world_size  # global batches hold the strategy across all ranks
    global_batch = config.batch_size * args.world_size
    if args.world_size > 1:
        bus.log(f"distributed: {args.world_size} ranks x {config.batch_size} pairs = global batch {global_batch}")
    callback = EventCallback(bus, factory, global_batch, config.strategy, cancel)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=pairs_dataset(table),
        eval_dataset=pairs_dataset(eval_table) if eval_table is not None else None,
        loss=make_loss(model, config, gather=args.world_size > 1),
        callbacks=[callback, *_early_stopping(config)],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes through hbt's event stream, not print()
    return TrainerBundle(trainer, callback, factory, total, table, eval_table)


def _early_stopping(config: RunConfig) -> list[Any]:
    if config.early_stopping_patience is None:
        return []
    # (start-up: transformers)
    from transformers import EarlyStoppingCallback

    return [EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)]


def _replay_finished_epochs(bundle: TrainerBundle, resume_from: str) -> tuple[dict[str, int], int]:
    """The trainer resumes by starting the sampler at the checkpoint's epoch (it replays only that epoch's batches):
    replay the epochs before it from the seeded sampler (same seed and epoch, same batches) so that batch counts
    cover the whole run. Returns (their batch kinds, their steps)."""
    state = json.loads((Path(resume_from) / "trainer_state.json").read_text(encoding="utf-8"))
    per_epoch = len(bundle.trainer.get_train_dataloader())  # the trainer's steps per epoch (no grad accumulation)
    epochs = int(state.get("global_step", 0)) // per_epoch if per_epoch else 0
    sampler = bundle.factory.last
    if not epochs or sampler is None:
        return {}, 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for _ in sampler:
            pass
    return sampler.composition(), epochs * per_epoch


def train(
    model: Any,
    table: PairTable,
    config: RunConfig,
    out_dir: Path,
    bus: EventBus,
    cancel: Any = None,
    resume_from: str | None = None,
) -> TrainResult:
    """Fine-tune `model` in place on `table` with the configured strategy; checkpoints go to out_dir."""
    bundle = build_trainer(model, table, config, out_dir, bus, cancel)
    if resume_from:
        bundle.callback.prior, bundle.callback.offset = _replay_finished_epochs(bundle, resume_from)
    bus.stage("train", f"{config.strategy}: {bundle.total_steps} steps x {config.batch_size} pairs")
    t0 = time.perf_counter()
    bundle.trainer.train(resume_from_checkpoint=resume_from)
    callback = bundle.callback
    if callback.fault is not None:
        raise callback.fault
    done = int(bundle.trainer.state.global_step)
    validation = None
    if bundle.eval_table is not None:
        validation = validation_record(bundle.trainer, bundle.eval_table, config, bundle.total_steps)
        bus.log(f"early stopping: best validation loss {validation['best_loss']} at step {validation['best_step']}")
    if done < bundle.total_steps and cancel is not None and cancel():
        raise Cancelled("during training", step=done, checkpoint=last_checkpoint(out_dir))
    sampler = bundle.factory.last
    return TrainResult(
        steps=done,
        loss_curve=callback.curve,
        composition=callback.composition(done) if sampler else {},  # the loader fetches ahead: count steps taken
        seconds=time.perf_counter() - t0,
        pairs=(bundle.table or table).counts(),
        validation=validation,
    )
