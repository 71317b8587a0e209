"""A stable digest of a model's weights and prompts, used as an embedding-cache key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

FINGERPRINT_VERSION = 1


def model_fingerprint(model: Any) -> str:
    """blake2b (128-bit hex) over every state_dict tensor (name, dtype, shape, bytes), the prompts, the
    maximum sequence length and the module layout. Identical weights give identical digests across runs and
    devices; changing any weight, prompt or the truncation length changes it. Takes ~0.5 s for a 100M-parameter
    model on CPU."""
    # (start-up: torch)
    import torch

    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"hbt-fingerprint-v{FINGERPRINT_VERSION}\0".encode())
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(f"{flat.dtype!s}:{tuple(tensor.shape)}\0".encode())
        if flat.numel():
            digest.update(memoryview(flat.view(torch.uint8).numpy()))
    meta = {
        "prompts": dict(sorted((getattr(model, "prompts", None) or {}).items())),
        "max_seq_length": getattr(model, "max_seq_length", None),
        "modules": [type(module).__name__ for module in _children(model)],
    }
    digest.update(json.dumps(meta, sort_keys=True, default=str).encode("utf-8"))
    return digest.hexdigest()


def _children(model: Any) -> list[Any]:
    try:
        return list(model.children())
    except AttributeError:
        return []
