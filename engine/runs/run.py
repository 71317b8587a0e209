"""One run (a grid cell): load the backbone, optionally train with a batch strategy, evaluate zero-shot, write."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..backbones import DEFAULT_BACKBONE, load_backbone, model_fingerprint
from ..backbones._util import register_text_languages, wants_text_languages
from ..backbones.frozen_cache import share_through_disk
from ..backbones.registry import resolve_backbone
from ..common.errors import ConfigError, UserError
from ..common.events import EventBus, JsonlSink, RunFinished, RunStarted, TrainStep, read_events
from ..common.interrupts import Cancelled, stops_at_once
from ..common.io import cache_dir, ensure_dir, read_json, write_error, write_json
from ..common.run_config import RunConfig
from ..common.vocabulary import BASELINE
from ..data import files_read
from ..data.benchmark import Benchmark
from ..data.miracl import CorpusTask
from ..data.registry import check_langs, load_eval, load_lareqa_parts, resolve_data_dir, spec
from ..data.split import ArticleSplit, evaluation_side, split_by_article, training_side
from ..data.xor import XorTask
from ..encoding.encode import EmbeddingCache, SentenceTransformerEncoder
from ..encoding.onnx_encode import OnnxEncoder
from ..evaluation.evaluate import evaluate_benchmark
from ..evaluation.results import RESULTS_SCHEMA
from ..evaluation.xor_metric import tokenizer
from ..training import distributed
from ..training.pairs import PairTable, build_pairs
from . import environment
from .config import check_config
from .jobs import this_host
from .rundir import RunDir

EVAL_SUBSET_SEED = 0  # the evaluation subset never depends on the training seed


def eval_langs(config: RunConfig, dataset: str) -> list[str]:
    """The requested languages that this dataset has (all of them when none requested)."""
    available = spec(dataset).languages
    if not config.langs:
        return list(available)
    chosen = [lang for lang in config.langs if lang in available]
    if not chosen:
        raise ConfigError(
            f"{dataset} has none of the languages {','.join(config.langs)} (it has {','.join(available)})"
        )
    return chosen


def with_eval_length(config: RunConfig) -> RunConfig:
    """eval_max_seq_length left unset (None) takes the backbone's own length (its registry entry), so that every cell
    of a grid, trained or not, records and uses one evaluation length."""
    if config.eval_max_seq_length is not None:
        return config

    try:
        length = resolve_backbone(config.backbone).max_seq_length
    except UserError:  # an unreachable hub id: loading the model says why, one line
        return config
    return replace(config, eval_max_seq_length=length)


def position_limit(model: Any) -> int | None:
    """Token positions the encoder can embed: its config's max_position_embeddings, less the RoBERTa family's
    padding offset (XLM-R: 514 - 2); None for a module without a transformers config (LASER, mBART's encoder)."""
    # (start-up: torch)
    import torch

    hf = getattr(model[0], "auto_model", None)
    positions = getattr(getattr(hf, "config", None), "max_position_embeddings", None)
    if hf is None or not isinstance(positions, int):
        return None
    for module in hf.modules():
        pad = getattr(module, "padding_idx", None)
        if isinstance(pad, int) and isinstance(getattr(module, "position_embeddings", None), torch.nn.Embedding):
            return positions - pad - 1
    return positions


def set_eval_length(model: Any, config: RunConfig) -> int | None:
    """Cut evaluation texts at the config's evaluation length, the same for every cell (a trained model would keep its
    training length otherwise), never beyond the positions the encoder has; returns the length used (None: the
    encoder cuts nothing, as LASER with whole sentences)."""
    wanted = config.eval_max_seq_length or model.max_seq_length
    if wanted is None:
        return None
    limit = position_limit(model)
    model.max_seq_length = min(int(wanted), limit) if limit else int(wanted)
    return int(model.max_seq_length)


def dataset_split(config: RunConfig) -> ArticleSplit | None:
    """The article split when a run trains and evaluates on one dataset (split_by_article), else None."""
    if not (config.split_by_article and config.strategy != BASELINE and config.train_data in config.eval_data):
        return None
    all_langs = list(spec(config.train_data).languages)
    return split_by_article(load_lareqa_parts(config.train_data, resolve_data_dir(config.data_dir), all_langs))


def build_training_table(config: RunConfig, split: ArticleSplit | None = None) -> PairTable:
    langs = check_langs(config.train_data, config.train_langs)
    parts = load_lareqa_parts(config.train_data, resolve_data_dir(config.data_dir), langs)
    if split is not None:
        parts = training_side(parts, split)
    pairs = build_pairs(
        parts, max_groups=config.max_train_pairs, seed=config.seed, hard_negatives=config.hard_negatives
    )
    if not pairs:
        raise ConfigError(f"no training pairs in {config.train_data} for languages {','.join(langs)}")
    return PairTable.from_pairs(pairs)


def _train_parts_used(config: RunConfig, split: ArticleSplit) -> list[Any]:
    langs = check_langs(config.train_data, config.train_langs)
    return training_side(load_lareqa_parts(config.train_data, resolve_data_dir(config.data_dir), langs), split)


def _prior_curve(run: RunDir, up_to: int) -> list[tuple[int, float]]:
    """Loss points logged before a resume point (a later attempt's point for a step replaces an earlier one)."""
    points: dict[int, float] = {}
    for event in read_events(run.events_file):
        if isinstance(event, TrainStep) and event.step <= up_to:
            points[event.step] = event.loss
    return sorted(points.items())


def _save_model_atomically(model: Any, target: Path) -> None:
    """Save into `<target>.partial`, then rename: a failed save leaves neither a partial folder nor a torn model.
    A full disk is a one-line OutputError (safetensors reports it as SafetensorError, not OSError)."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    # (start-up: torch, sentence_transformers, transformers)
    from ..backbones.partial import saved_as_plain

    try:
        with saved_as_plain(model):
            model.save(str(partial))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
    except Exception as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_error(target, exc) from exc
        if "No space left on device" in str(exc) or "os error 28" in str(exc):
            raise write_error(target, OSError(errno.ENOSPC, "No space left on device")) from exc
        raise


MAX_EPOCHS = 100  # a training budget beyond this many passes over the training pairs is refused


def check_budget(config: RunConfig, table: PairTable) -> None:
    """Refuse a step budget far beyond the training data (say how many epochs it means), before anything runs."""
    if not config.steps:
        return
    epochs = config.steps * config.batch_size / max(len(table), 1)
    if epochs > MAX_EPOCHS:
        raise ConfigError(
            f"steps {config.steps} x batch_size {config.batch_size} is {epochs:.3g} epochs over {len(table)} training "
            f"pairs (at most {MAX_EPOCHS}): lower steps or batch_size, or use more training data",
            key="steps",
        )


def _remove_stop_checkpoints(run: RunDir, config: RunConfig, checkpoint: Any) -> None:
    """Once a cell completes, the checkpoints a Ctrl-C/cancel wrote have served their purpose: without
    `checkpoint_steps` every checkpoint is a stop's; with it, the periodic ones stay (they were asked for) and only
    the stop's (run.json `checkpoint`) goes."""
    if not config.checkpoint_steps:
        shutil.rmtree(run.checkpoints_dir, ignore_errors=True)
    elif isinstance(checkpoint, str):
        folder = Path(checkpoint)
        if folder.parent.resolve() == run.checkpoints_dir.resolve():
            shutil.rmtree(folder, ignore_errors=True)


def _training_done(run: RunDir) -> bool:
    """An earlier attempt trained and saved the model (a resume goes straight to evaluation)."""
    return run.training_file.exists() and (run.model_dir / "config.json").exists()


def register_pair_languages(model: Any, table: PairTable) -> None:
    """Backbones whose input depends on the text's language (mBART-50's language codes) learn every training
    text's language: question -> its language, answer and hard negative -> the answer's."""

    if wants_text_languages(model):
        languages = {p.question: p.q_lang for p in table.pairs} | {p.answer: p.a_lang for p in table.pairs}
        languages |= {p.negative: p.a_lang for p in table.pairs if p.negative is not None}
        register_text_languages(model, languages)


def _train_or_resume(
    model: Any,
    table: PairTable | None,
    config: RunConfig,
    run: RunDir,
    bus: EventBus,
    cancel: Callable[[], bool] | None,
    resume: bool,
) -> tuple[Any, dict[str, Any]]:
    """Train (or pick up where an interrupted attempt stopped): returns the trained model and its training record."""
    # (start-up: sentence_transformers, transformers, datasets)
    from ..training.train import last_checkpoint, train

    if table is None:
        bus.log(f"training already finished: loading {run.model_dir}")
        return load_backbone(str(run.model_dir)), dict(read_json(run.training_file))
    checkpoint = last_checkpoint(run.checkpoints_dir) if resume else None
    bus.stage("pairs", f"{config.train_data} -> {config.strategy}")
    bus.log(f"training pairs: {table.counts()}")
    if checkpoint:
        bus.log(f"resuming from {checkpoint}")
    register_pair_languages(model, table)
    result = train(model, table, config, run.checkpoints_dir, bus, cancel, resume_from=checkpoint)
    distributed.finish_training()  # every rank done: tear the group down in order before rank 0 writes alone
    if checkpoint:
        resumed_at = int(Path(checkpoint).name.split("-")[-1])
        result.loss_curve = [*_prior_curve(run, resumed_at), *result.loss_curve]
    training = result.to_dict()
    if config.save_model:
        bus.stage("save-model", str(run.model_dir))
        _save_model_atomically(model, run.model_dir)
        write_json(run.training_file, training)
    return model, training


def _train_on_worker_rank(
    config: RunConfig, out: Path, cancel: Callable[[], bool] | None, resume: bool, model: Any
) -> dict[str, Any]:
    """Ranks other than 0 in a distributed run: train in lockstep, then encode this rank's slice of every streamed
    corpus (rank 0 waits for those shards); write no results, evaluate nothing else."""
    # (start-up: sentence_transformers, transformers, datasets)
    from ..training.train import last_checkpoint, train

    device = distributed.local_device(config.device)
    backbone = config.backbone or DEFAULT_BACKBONE
    if config.strategy == BASELINE:
        _encode_corpus_slices(config, lambda: model or load_backbone(backbone, device=device))
        return {}
    run = RunDir(out)
    if resume and _training_done(run):  # rank 0 skips training too: its model was saved
        _encode_corpus_slices(config, lambda: load_backbone(str(run.model_dir), device=device))
        return {}
    model = model or load_backbone(config.backbone or DEFAULT_BACKBONE)
    checkpoint = last_checkpoint(run.checkpoints_dir) if resume else None
    table = build_training_table(config, dataset_split(config))
    check_budget(config, table)
    register_pair_languages(model, table)
    train(model, table, config, run.checkpoints_dir, EventBus(), cancel, resume_from=checkpoint)
    distributed.finish_training()  # with rank 0, before it saves: then this rank exits with no live group
    _encode_corpus_slices(config, lambda: model)
    return {}


def _encode_corpus_slices(config: RunConfig, get_model: Callable[[], Any]) -> None:
    """On a worker rank: the shards j with j % world_size == rank of each streamed corpus (XOR-Retrieve's collection,
    MIRACL's corpora), written where rank 0 looks for them (the cache folder must be shared across nodes)."""

    streamed = [
        bench
        for name in config.eval_data
        if isinstance(bench := load_eval(name, config.data_dir, eval_langs(config, name), config.corpus_limit,
                                         empty_topics=config.empty_topics), CorpusTask | XorTask)
    ]  # fmt: skip
    if not streamed:
        return
    model = get_model()
    set_eval_length(model, config)
    encoder = SentenceTransformerEncoder(model, model_fingerprint(model), batch_size=config.eval_batch_size)
    for bench in streamed:
        if config.max_queries:
            bench = bench.subset(max_queries=config.max_queries, seed=EVAL_SUBSET_SEED)
        evaluate_benchmark(
            bench, encoder, text_mode=config.text_mode, shard_size=config.shard_size, allow_large=config.allow_large
        )


@dataclass
class _Prepared:
    """What `_prepare` checked and loaded before anything is written: the effective config, the evaluation sets,
    the training table (None when no training runs now) and the model (None when a finished training's is loaded)."""

    config: RunConfig
    backbone: str
    benches: dict[str, Any]
    table: PairTable | None
    model: Any

    @property
    def trains(self) -> bool:
        return self.config.strategy != BASELINE

    @property
    def recorded_config(self) -> dict[str, Any]:
        """The config as run.json, RunStarted and results.json record it (with the backbone really used)."""
        return {**self.config.to_dict(), "backbone": self.backbone}


def _prepare(config: RunConfig, run: RunDir, bus: EventBus, model: Any, resume: bool) -> _Prepared:
    """The fail-fast part of a run: read and check every data file, the training budget and the zero-shot split, and
    load the model, before anything is written (a bad file, an unreachable hub or a bad path leaves no output)."""

    split = dataset_split(config)
    benches = {}
    if "xor-retrieve" in config.eval_data:
        tokenizer()  # R@kt's tokens as the official script counts them (NLTK's punkt tables) or one line, now
    for name in config.eval_data:
        bench = load_eval(
            name, config.data_dir, eval_langs(config, name), corpus_limit=config.corpus_limit,
            empty_topics=config.empty_topics,
        )  # fmt: skip
        if split is not None and name == config.train_data and isinstance(bench, Benchmark):
            bench = evaluation_side(bench, split)
        benches[name] = (
            bench.subset(max_queries=config.max_queries, seed=EVAL_SUBSET_SEED) if config.max_queries else bench
        )
    trains = config.strategy != BASELINE
    table = build_training_table(config, split) if trains and not (resume and _training_done(run)) else None
    if table is not None:
        check_budget(config, table)
    if split is not None and table is not None:  # the zero-shot invariant, asserted on what will really be used
        held_out = benches[config.train_data]
        assert isinstance(held_out, Benchmark)  # article splits exist for LAReQA datasets only (dataset_split)
        split.check_disjoint(_train_parts_used(config, split), held_out)
    backbone = config.backbone or DEFAULT_BACKBONE
    if model is None and not (trains and table is None):  # (a finished training loads its own saved model)
        bus.stage("load-model", backbone)
        model = load_backbone(backbone, device=None if config.device == "auto" else config.device)
    return _Prepared(config=config, backbone=backbone, benches=benches, table=table, model=model)


def _mark_after(run: RunDir, status: str, **extra: Any) -> None:
    """Record how a run ended, if the disk lets us: the error that ended it (a full disk writing results.json, say)
    is the one the user must see, not a second one met writing run.json (which then still says running: the index
    shows the run interrupted)."""
    with contextlib.suppress(UserError):
        run.mark(status, **extra)


@contextmanager
def recorded_status(run: RunDir, bus: EventBus, config: dict[str, Any]) -> Iterator[None]:
    """Record a run's life in its folder: run.json says running (with this pid), then complete when the block ends,
    or cancelled (with the step and checkpoint), interrupted (a second Ctrl-C) or failed (a user error's line, or an
    unexpected error's type and message with its traceback in traceback.txt, named on the exception for the CLI);
    events.jsonl gets the block's events between RunStarted and RunFinished. Every exception is re-raised."""
    out = run.path
    run.mark("running", pid=os.getpid(), host=this_host())
    sink = JsonlSink(
        run.events_file, kinds={"stage", "progress", "train_step", "eval_done", "log", "run_started", "run_finished"}
    )  # (progress: a process following the cell from its folder shows its encoding and search too)
    bus.subscribe(sink)
    try:
        bus.emit(RunStarted(run_dir=str(out), config=config))
        yield
        run.mark("complete")
        bus.emit(RunFinished(run_dir=str(out), status="complete"))
    except UserError as exc:  # (user_error: every cell would meet it; a grid stops on it)
        _mark_after(run, "failed", error=str(exc), user_error=True)
        bus.emit(RunFinished(run_dir=str(out), status="failed", error=str(exc)))
        raise
    except Cancelled as exc:
        _mark_after(run, "cancelled", error=str(exc), step=exc.step, checkpoint=exc.checkpoint)
        bus.emit(RunFinished(run_dir=str(out), status="cancelled", error=str(exc)))
        raise
    except KeyboardInterrupt:
        _mark_after(run, "interrupted", error="stopped at once by the user (second Ctrl-C)")
        bus.emit(RunFinished(run_dir=str(out), status="interrupted"))
        raise
    except Exception as exc:
        trace = out / "traceback.txt"
        with contextlib.suppress(OSError):
            trace.write_text(traceback.format_exc(), encoding="utf-8")
            exc.traceback_path = str(trace)  # type: ignore[attr-defined]  # the CLI names it in its one line
        numeric = {
            k: getattr(exc, a) for k, a in (("step", "step"), ("last_finite_loss", "last_finite")) if hasattr(exc, a)
        }
        _mark_after(run, "failed", error=f"{type(exc).__name__}: {exc}", traceback=str(trace), **numeric)
        bus.emit(RunFinished(run_dir=str(out), status="failed", error=f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        bus.unsubscribe(sink)
        sink.close()


def _train_evaluate_write(
    plan: _Prepared,
    run: RunDir,
    bus: EventBus,
    cancel: Callable[[], bool] | None,
    resume: bool,
    stop_checkpoint: Any,
    data_files: list[Path],
    embedding_cache: bool = True,
) -> dict[str, Any]:
    """The body of a run: train (or resume), build the evaluation encoder, evaluate every dataset, write
    per_query.json and results.json (with the data files read, by content), drop the checkpoints a stop left;
    returns the results document."""
    # (start-up: torch, sentence_transformers, transformers)
    from ..backbones.partial import share_for_evaluation, shared_folder

    config, model = plan.config, plan.model
    t0 = time.perf_counter()
    training = None
    if plan.trains:
        model, training = _train_or_resume(model, plan.table, config, run, bus, cancel, resume)
    eval_length = set_eval_length(model, config)  # one length for every cell (training may have used another)
    encoder: Any = SentenceTransformerEncoder(model, model_fingerprint(model), batch_size=config.eval_batch_size)
    if config.eval_runtime != "torch":
        bus.stage("export", f"{config.eval_runtime} evaluation encoder")
        encoder = OnnxEncoder(model, encoder.fingerprint, config.eval_runtime, config.eval_batch_size)
    if config.eval_runtime == "torch" and config.frozen_cache and share_for_evaluation(model, config.train_top_layers):
        folder = shared_folder(model)
        where = f" and {folder}" if folder is not None else ""
        bus.log(f"evaluation encodes through the shared frozen-bottom cache{where} (top layers only per cell)")
    cache = (
        EmbeddingCache(cache_dir() / "embeddings.sqlite", warn=lambda m: bus.log(m, "warning"))
        if config.strategy == BASELINE and embedding_cache
        else None
    )
    datasets: dict[str, Any] = {}
    per_query: dict[str, Any] = {}
    current = [""]
    kept = "the trained model is kept; --resume evaluates it again" if plan.trains else "--resume evaluates it again"
    # nothing is lost by stopping an evaluation halfway (the trained model is saved): a stop takes effect at once
    with stops_at_once(cancel, lambda: f"during the evaluation of {current[0]} ({kept})"):
        for name in config.eval_data:
            if cancel is not None and cancel():
                raise Cancelled("before evaluating " + name)
            current[0] = name
            bus.stage("load-data", name)
            outcome = evaluate_benchmark(
                plan.benches[name], encoder, text_mode=config.text_mode, cache=cache, bus=bus,
                shard_size=config.shard_size, index=config.index, allow_large=config.allow_large,
            )  # fmt: skip
            if spec(name).pool:  # every table names the pool (full corpus / judged passages)
                outcome.summary.pool = spec(name).pool
            datasets[name] = outcome.summary.to_json()
            per_query[name] = outcome.per_query_ap
    if cache:
        cache.close()
    results = {
        "schema": RESULTS_SCHEMA,
        "run_id": run.path.name,
        "config": plan.recorded_config,
        "environment": environment.describe(),
        "data": files_read.describe(data_files, resolve_data_dir(config.data_dir)),
        "timings": {"total_s": round(time.perf_counter() - t0, 2)},
        "evaluation": {"max_seq_length": eval_length},
        "training": training,
        "datasets": datasets,
    }
    bus.stage("write", str(run.results_file))
    write_json(run.per_query_file, per_query)
    write_json(run.results_file, results)
    _remove_stop_checkpoints(run, config, stop_checkpoint)
    return results


def execute(
    config: RunConfig,
    out: Path,
    bus: EventBus | None = None,
    cancel: Callable[[], bool] | None = None,
    model: Any = None,
    resume: bool = False,
    embedding_cache: bool = True,
) -> dict[str, Any]:
    """Run one cell into `out` and return its results document. The run dir is marked failed on error,
    cancelled on a cancel request (after a checkpoint), interrupted on a second Ctrl-C. With `resume`, training
    restarts from the last checkpoint in `out` (or is skipped when its model was already saved). With
    `embedding_cache=False` an untrained baseline encodes its texts again instead of reading them from the
    embedding cache (`reproduce`).
    Three steps: `_prepare` (fail fast, nothing written), `recorded_status` (run.json and the events around the
    body) and `_train_evaluate_write` (the body)."""
    # (start-up: sentence_transformers, transformers, datasets)
    from ..training.train import with_backbone_defaults

    check_config(config)
    config = with_eval_length(with_backbone_defaults(config))  # results record the lr / scale / length really used
    if not distributed.is_main():
        return _train_on_worker_rank(config, out, cancel, resume, model)
    run = RunDir(out)
    bus = bus or EventBus()
    share_through_disk(default=False)  # (worker processes attached it already; the local grid on request)
    with files_read.recording() as data_files:
        plan = _prepare(config, run, bus, model, resume)
        ensure_dir(out)
        write_json(run.config_file, plan.recorded_config)
        cancelled = resume and run.status().get("status") == "cancelled"
        stop_checkpoint = run.status().get("checkpoint") if cancelled else None
        with recorded_status(run, bus, plan.recorded_config):
            results = _train_evaluate_write(
                plan, run, bus, cancel, resume, stop_checkpoint, data_files, embedding_cache
            )
    return results
