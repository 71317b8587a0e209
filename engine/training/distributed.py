"""Which process am I? torchrun and `accelerate launch` both export RANK / WORLD_SIZE / LOCAL_RANK."""

from __future__ import annotations

import contextlib
import os


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_device(device: str) -> str | None:
    """This rank's device for `device`: under auto its own GPU (cuda:LOCAL_RANK, not every rank on cuda:0), None
    without one (the library's default); any other device as given."""
    if device != "auto":
        return device
    import torch

    return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else None


def is_main() -> bool:
    """Rank 0 alone writes events, results, models and indexes; the other ranks only train."""
    return rank() == 0


def finish_training() -> None:
    """End of training on every rank, in order: wait for all ranks, then destroy the process group. A process that
    exits with a live gloo/NCCL group can abort ("terminate called without an active exception"), and torchrun then
    kills the other ranks, rank 0 among them while it saves the model. No-op outside a distributed run."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def abandon_group() -> None:
    """On a failure path (no barrier: another rank may be gone), drop the process group before the process exits."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):  # best effort on the way out
            dist.destroy_process_group()
