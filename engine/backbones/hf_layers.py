"""The one place hbt steps inside a transformers encoder (top-N training runs its layers one by one).

Public transformers API only: the padding mask comes from `transformers.masking_utils.create_bidirectional_mask`
(what the models' own forward calls, in the form the configured attention implementation expects: an additive
float mask for eager, a boolean mask or None for sdpa), and a layer is called as its encoder calls it:
`layer(hidden_states, attention_mask)`. transformers 4.x returned a tuple from a layer and 5.x a tensor; both are
accepted. `tests/test_partial.py` holds the layer-by-layer result equal to the model's own forward, so a release
that changes either convention fails CI (or the canary) instead of training on wrong states.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask


def encoder_stack(hf: Any) -> tuple[nn.Module, nn.ModuleList] | None:
    """(embeddings, layers) of a BERT-style encoder (BERT, XLM-R, mE5, LaBSE), else None."""
    embeddings = getattr(hf, "embeddings", None)
    layers = getattr(getattr(hf, "encoder", None), "layer", None)
    if isinstance(embeddings, nn.Module) and isinstance(layers, nn.ModuleList) and len(layers):
        return embeddings, layers
    return None


def layer_mask(hf: Any, attention_mask: torch.Tensor, hidden: torch.Tensor) -> Any:
    """The mask every layer of `hf` gets for this batch (None when the attention needs none)."""
    return create_bidirectional_mask(config=hf.config, inputs_embeds=hidden, attention_mask=attention_mask)


def run_layer(layer: nn.Module, hidden: torch.Tensor, mask: Any) -> torch.Tensor:
    out = layer(hidden, mask)
    states: torch.Tensor = out[0] if isinstance(out, tuple) else out
    return states
