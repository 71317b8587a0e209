"""Which process am I? torchrun and `accelerate launch` both export RANK / WORLD_SIZE / LOCAL_RANK."""

from __future__ import annotations

import contextlib
import os

from ..common.vocabulary import bad_value


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_device(device: str) -> str | None:
    """This rank's device for `device`: under auto its own GPU (cuda:LOCAL_RANK, not every rank on cuda:0), None
    without one (the library's default); any other device as given."""
    if device != "auto":
        return device
    # (start-up: torch)
    import torch

    return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else None


def check_available(device: str, key: str = "device") -> None:
    """A device named explicitly must exist here (a ConfigError naming `key` otherwise), so that `--device cuda` on a
    CPU-only torch is one line before anything runs, not an internal error in every cell. auto and cpu always are."""
    if device in ("auto", "cpu"):
        return
    # (start-up: torch)
    import torch

    why = ""
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            why = "this torch has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        elif int(device.partition(":")[2] or 0) >= count:
            why = f"{count} CUDA GPU(s) visible: cuda:0 to cuda:{count - 1}"
    elif device == "mps" and not torch.backends.mps.is_available():
        why = "no Apple GPU"
    if why:
        raise bad_value(key, f"{device!r} is not available ({why}, torch {torch.__version__}): use cpu or auto")


def is_main() -> bool:
    """Rank 0 alone writes events, results, models and indexes; the other ranks only train."""
    return rank() == 0


def finish_training() -> None:
    """End of training on every rank, in order: wait for all ranks, then destroy the process group. A process that
    exits with a live gloo/NCCL group can abort ("terminate called without an active exception"), and torchrun then
    kills the other ranks, rank 0 among them while it saves the model. No-op outside a distributed run."""
    # (start-up: torch)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def abandon_group() -> None:
    """On a failure path (no barrier: another rank may be gone), drop the process group before the process exits."""
    # (start-up: torch)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):  # best effort on the way out
            dist.destroy_process_group()
