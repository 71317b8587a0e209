"""The adapters that hold hbt's few steps inside third-party libraries (run on every supported version: CI with the
lock, .ci/canary with the newest releases)."""

from __future__ import annotations

import torch
from hbt.engine.backbones import load_backbone
from hbt.engine.backbones.hf_layers import encoder_stack, layer_mask, run_layer
from hbt.engine.common.torch_compat import tensor_version


def test_tensor_version_counts_in_place_writes_only() -> None:
    t = torch.zeros(3)
    v0 = tensor_version(t)
    _ = t + 1  # out of place: unchanged
    assert tensor_version(t) == v0
    t.add_(1)
    t[0] = 5.0
    assert tensor_version(t) == v0 + 2
    module = torch.nn.Linear(2, 2)
    before = tensor_version(module.weight)
    module.load_state_dict({"weight": torch.ones(2, 2), "bias": torch.zeros(2)})
    assert tensor_version(module.weight) > before


def test_layer_by_layer_equals_the_models_forward_with_padding() -> None:
    model = load_backbone("tiny-random").eval()
    hf = model[0].auto_model
    feats = model.preprocess(["a short one", "a much longer sentence than the first, with padding in the batch"])
    stack = encoder_stack(hf)
    assert stack is not None
    embeddings, layers = stack
    with torch.no_grad():
        hidden = embeddings(input_ids=feats["input_ids"], token_type_ids=feats.get("token_type_ids"))
        mask = layer_mask(hf, feats["attention_mask"], hidden)
        for layer in layers:
            hidden = run_layer(layer, hidden, mask)
        want = hf(input_ids=feats["input_ids"], attention_mask=feats["attention_mask"]).last_hidden_state
    keep = feats["attention_mask"].bool()
    assert not keep.all()  # the batch is padded: the mask matters
    torch.testing.assert_close(hidden[keep], want[keep], rtol=1e-5, atol=1e-5)


def test_encoder_stack_refuses_other_architectures() -> None:
    assert encoder_stack(torch.nn.Linear(2, 2)) is None
