"""`hbt-bench encode-corpus`: encode MIRACL's full corpora into shards ahead of `eval`.

Launched plainly it encodes every shard; under torchrun / `accelerate launch` (RANK, WORLD_SIZE, LOCAL_RANK) each
rank encodes its slice (shard j on rank j % WORLD_SIZE) on its own GPU, and rank 0 writes the manifest when all are
on disk. Interrupted, the same command resumes (complete shards are skipped). `eval` with the same backbone, text
mode, shard size and data then finds the shards (cache folder, keyed like the embedding cache) and only searches.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..backbones import DEFAULT_BACKBONE, load_backbone, model_fingerprint
from ..common.errors import ConfigError
from ..common.events import EventBus
from ..common.text import safe
from ..common.vocabulary import DEVICE_HELP, TEXT_MODES, check_device, check_positive
from ..data.miracl import CorpusTask
from ..data.registry import load_eval
from ..encoding.corpus_shards import CorpusOptions
from ..encoding.encode import SentenceTransformerEncoder
from ..runs.environment import quiet_third_party_output
from ..training import distributed


def add_parser(sub: Any) -> None:
    p = sub.add_parser("encode-corpus", help="encode MIRACL corpora to disk shards (one slice per rank if launched)")
    p.add_argument("--backbone", help="short name, hub id or local path (default: the offline bundled mE5-small)")
    p.add_argument("--data-dir", help="folder holding miracl/ (default: $HBT_DATA_DIR, else the hub)")
    p.add_argument("--langs", type=lambda v: [x.strip() for x in v.split(",") if x.strip()], help="e.g. en,sw")
    p.add_argument("--text-mode", choices=TEXT_MODES, default="auto", help="auto: MIRACL's title then text")
    p.add_argument("--shard-size", type=int, help="passages per shard (default 100000)")
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help=f"{DEVICE_HELP} (auto: cuda:LOCAL_RANK when launched on GPUs)")
    p.add_argument("--yes", action="store_true", help="start even when the estimate is above an hour")


def cmd_encode_corpus(args: argparse.Namespace, console: Any) -> int:
    quiet_third_party_output()
    # (start-up: faiss)
    from ..evaluation.corpus_eval import encode_language

    # (start-up: scipy)
    from .display import RichListener

    if args.shard_size is not None and args.shard_size < 1:
        raise ConfigError(
            f"--shard-size must be a positive number of passages, got {args.shard_size}", key="shard_size"
        )
    check_device(args.device)
    distributed.check_available(args.device, "--device")
    check_positive("--eval-batch-size", args.eval_batch_size)
    task = load_eval("miracl", args.data_dir, args.langs)
    assert isinstance(task, CorpusTask)
    rank, world = distributed.rank(), distributed.world_size()
    device = distributed.local_device(args.device) or "cpu"
    model = load_backbone(args.backbone or DEFAULT_BACKBONE, device=device)
    encoder = SentenceTransformerEncoder(model, model_fingerprint(model), batch_size=args.eval_batch_size)
    bus = EventBus()
    options = CorpusOptions(text_mode=args.text_mode, bus=bus, shard_size=args.shard_size, allow_large=args.yes)
    with RichListener(console) as listener:
        bus.subscribe(listener)
        for part in task.languages:
            shards, n = encode_language(task, part, encoder, options, rank=rank, world_size=world)
            where = f"rank {rank}/{world}: " if world > 1 else ""
            done = f"{shards.pool.n_rows:,} passages in {shards.root}" if shards else "slice on disk"
            line = f"{where}miracl/{part.lang}: {n:,} passages encoded here; {done}"
            console.print(safe(line), markup=False, highlight=False)
    return 0
