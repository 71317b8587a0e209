"""The one private torch attribute hbt reads, behind one function with its own test (tests/test_compat.py).

`Tensor._version` is autograd's in-place version counter (documented in "Autograd mechanics: in-place correctness
checks", underscored, unchanged since torch 0.4): it goes up on every in-place write. The frozen-bottom cache uses
it to notice a frozen weight edited in place (a loaded state dict, a user's `mul_`) without hashing hundreds of MB
of weights every training step. No public API tells that a tensor was written in place.
"""

from __future__ import annotations

import torch


def tensor_version(tensor: torch.Tensor) -> int:
    """A counter that increases whenever `tensor` is modified in place."""
    return int(tensor._version)
