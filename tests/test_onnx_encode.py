"""The optional ONNX Runtime evaluation encoder (torch.onnx.export + onnxruntime quantize_dynamic, no optimum)."""

from __future__ import annotations

import numpy as np
import pytest
from hbt.engine.backbones import load_backbone
from hbt.engine.common.errors import ConfigError
from hbt.engine.common.run_config import RunConfig
from hbt.engine.encoding.encode import SentenceTransformerEncoder

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TEXTS = ["hello world", "a much longer text about the rivers of Europe, their towns and bridges", "中文的句子",
         "x", "Das Buch schrieb sie 1921 in Berlin."]  # fmt: skip


@pytest.mark.parametrize("role", ["query", "passage"])
def test_onnx_matches_torch_with_prompts_and_padding(role: str) -> None:
    from hbt.engine.encoding.onnx_encode import OnnxEncoder

    model = load_backbone("tiny-random")
    want = SentenceTransformerEncoder(model, "fp").encode(TEXTS, role)
    fp32 = OnnxEncoder(model, "fp", "onnx-fp32", batch_size=2)  # batches of mixed lengths: padding exercised
    got = fp32.encode(TEXTS, role)
    np.testing.assert_allclose(got, want, atol=2e-5)
    int8 = OnnxEncoder(model, "fp", "onnx-int8", batch_size=2)
    cos = (int8.encode(TEXTS, role) * want).sum(axis=1)
    assert cos.min() > 0.99 and not np.allclose(cos, 1.0, atol=1e-7)  # quantised: close, not identical
    assert len({fp32.fingerprint, int8.fingerprint, "fp"}) == 3  # never shares embedding-cache keys
    fp32.close()
    int8.close()


def test_eval_runtime_is_validated() -> None:
    with pytest.raises(ConfigError, match="unknown eval_runtime 'tensorrt'"):
        RunConfig(eval_runtime="tensorrt").validate()
