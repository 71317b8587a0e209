"""Fine-tuning with in-batch negatives through sentence-transformers' trainer, batches built by a strategy."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset
from hbt.engine import distributed
from hbt.engine.config import RunConfig
from hbt.engine.events import EventBus, TrainStep
from hbt.engine.interrupts import Cancelled
from hbt.engine.pairs import PairTable
from hbt.engine.sampler import SamplerFactory, make_strategy
from transformers import PrinterCallback, TrainerCallback


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

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
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
                batches=sampler.composition(step) if sampler else {},
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
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


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
    return Dataset.from_dict({"anchor": [p.question for p in table.pairs], "positive": [p.answer for p in table.pairs]})


def make_loss(model: Any, config: RunConfig, gather: bool = False) -> Any:
    """In-batch negatives; with `gather` (several devices) every rank's embeddings join the global batch."""
    from sentence_transformers.sentence_transformer import losses

    if config.cached_loss:
        return losses.CachedMultipleNegativesRankingLoss(
            model, scale=config.scale, mini_batch_size=config.mini_batch_size, gather_across_devices=gather
        )
    return losses.MultipleNegativesRankingLoss(model, scale=config.scale, gather_across_devices=gather)


def mixed_precision(config: RunConfig, on_cpu: bool) -> dict[str, bool]:
    """TrainingArguments' bf16/fp16 flags: `auto` uses bf16 where the GPU has it, else fp16; none on CPU."""
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
    from hbt.engine.backbones.partial import enable_partial, warm_frozen_cache

    n = int(config.train_top_layers or 0)
    module = enable_partial(model, n, cache=None) if not config.frozen_cache else enable_partial(model, n)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    cached = "cached per unique text" if config.frozen_cache else "recomputed every step"
    bus.log(f"training the top {n} of {len(module.auto_model.encoder.layer)} layers ({trainable:,} parameters); "
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
            bus.log(f"frozen cache: {report.computed} of {report.texts} texts computed in {report.seconds:.1f}s; "
                    f"store {report.nbytes / 2**20:.0f} MiB")  # fmt: skip


@dataclass
class TrainerBundle:
    trainer: Any
    callback: EventCallback
    factory: SamplerFactory
    total_steps: int


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
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    on_cpu = not torch.cuda.is_available() or config.device == "cpu"
    freeze = config.freeze_embeddings if config.freeze_embeddings is not None else on_cpu
    if freeze:
        bus.log(f"froze {_freeze_embeddings(model):,} word-embedding parameters (freeze_embeddings)")
    model.max_seq_length = min(config.max_seq_length, model.max_seq_length or config.max_seq_length)
    if config.train_top_layers:  # after max_seq_length: the cache keys are the truncated token sequences
        _train_top_only(model, config, bus, table)
    options: dict[str, Any] = {"p": config.hybrid_p, "p_end": config.hybrid_p_end, "mix": config.hybrid_mix}
    strategy = make_strategy(config.strategy, **options)
    batches_per_epoch = max(len(table) // config.batch_size, 1)
    total = config.steps if config.steps else math.ceil(batches_per_epoch * (config.epochs or 1))
    factory = SamplerFactory(table, strategy, config.xx_langs, total_batches=total)
    prompts = getattr(model, "prompts", {}) or {}
    precision = mixed_precision(config, on_cpu)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir),
        max_steps=total,
        num_train_epochs=config.epochs or 1,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.lr,
        warmup_steps=int(config.warmup_ratio * total),
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=1,
        logging_nan_inf_filter=False,  # the trainer would log a NaN step as the window's mean: we must see it
        save_strategy="steps" if config.checkpoint_steps else "no",
        save_steps=config.checkpoint_steps or 500,
        save_total_limit=2,
        report_to="none",
        batch_sampler=batch_sampler if batch_sampler is not None else factory,
        dataloader_drop_last=True,
        disable_tqdm=True,
        use_cpu=on_cpu,
        ddp_backend="gloo" if on_cpu and distributed.world_size() > 1 else None,
        bf16=precision.get("bf16", False),
        fp16=precision.get("fp16", False),
        prompts={"anchor": prompts["query"], "positive": prompts["passage"]}
        if prompts.get("query") and prompts.get("passage")
        else None,
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
        loss=make_loss(model, config, gather=args.world_size > 1),
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes through hbt's event stream, not print()
    return TrainerBundle(trainer, callback, factory, total)


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
    bus.stage("train", f"{config.strategy}: {bundle.total_steps} steps x {config.batch_size} pairs")
    t0 = time.perf_counter()
    bundle.trainer.train(resume_from_checkpoint=resume_from)
    callback = bundle.callback
    if callback.fault is not None:
        raise callback.fault
    done = int(bundle.trainer.state.global_step)
    if done < bundle.total_steps and cancel is not None and cancel():
        raise Cancelled("during training", step=done, checkpoint=last_checkpoint(out_dir))
    sampler = bundle.factory.last
    return TrainResult(
        steps=done,
        loss_curve=callback.curve,
        composition=sampler.composition(done) if sampler else {},  # the loader fetches ahead: count steps taken
        seconds=time.perf_counter() - t0,
        pairs=table.counts(),
    )
