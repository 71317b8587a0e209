"""Optional int8 ONNX Runtime path for evaluation encoding, without optimum (which pins an older transformers).

The model's transformer is exported with `torch.onnx.export` (input_ids, attention_mask -> token states), its
weights quantised with onnxruntime's own `quantize_dynamic` (int8, per output channel: naive per-tensor int8 moves
mE5 embeddings to cosine ~0.977), and sentences pooled as the model's Pooling module says (mean / cls) and
L2-normalised in numpy. Tokenisation (and the "query: " / "passage: " prompts) is the sentence-transformers
model's own. Needs the `fast` extra (onnx, onnxruntime). Off by default: `eval_runtime = "onnx-int8"` opts in,
and `benchmarks/bench_eval_speed.py` reports its speed and mAP difference against torch float32.
"""

from __future__ import annotations

import copy
import hashlib
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..backbones._util import wants_text_languages
from ..common.errors import UserError
from .encode import model_inputs


def _require() -> Any:
    try:
        # (extra: fast)
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as exc:
        raise UserError(
            f"eval_runtime onnx needs the fast extra: pip install 'hbt[fast]' ({exc.name} missing)"
        ) from exc
    return onnxruntime


def export_onnx(model: Any, folder: Path, quantize: bool = True) -> Path:
    """Export model[0]'s transformer to folder/model.onnx (and model.int8.onnx when quantize); returns the path."""
    # (start-up: torch)
    import torch

    _require()
    # exported from a copy set to eager attention (a plain masked softmax exports everywhere): the live model keeps
    # its own implementation, which transformers offers no public getter for to restore afterwards
    hf = copy.deepcopy(model[0].auto_model)
    hf.set_attn_implementation("eager")
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / "model.onnx"

    class Body(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            states: torch.Tensor = self.hf(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return states

    sample = model.preprocess(["query: an example sentence", "passage: another one, a little longer"])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape-constant branches (true for every input)
        torch.onnx.export(
            Body().eval(),
            (sample["input_ids"], sample["attention_mask"]),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["token_states"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "token_states": {0: "batch", 1: "tokens"},
            },
            opset_version=17,
            dynamo=False,
        )
    if not quantize:
        return fp32
    # (extra: fast)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = folder / "model.int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    return int8


class OnnxEncoder:
    """An `Encoder` running the exported transformer in ONNX Runtime (int8 weights by default)."""

    def __init__(
        self, model: Any, fingerprint: str, runtime: str = "onnx-int8", batch_size: int = 64, threads: int = 0
    ) -> None:
        ort = _require()
        self.model = model
        self.runtime = runtime
        self.fingerprint = hashlib.blake2b(f"{fingerprint}:{runtime}".encode(), digest_size=16).hexdigest()
        self.batch_size = batch_size
        self._tmp = tempfile.TemporaryDirectory(prefix="hbt-onnx-")
        path = export_onnx(model, Path(self._tmp.name), quantize=runtime == "onnx-int8")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        pooling = next((m for m in model if type(m).__name__ == "Pooling"), None)
        self.mode = str(getattr(pooling, "pooling_mode", "mean")) if pooling is not None else "mean"
        self.uses_languages = wants_text_languages(model)

    def encode(self, texts: Sequence[str], role: str, langs: Sequence[str] | None = None) -> np.ndarray:
        prompts = getattr(self.model, "prompts", {}) or {}
        prompt = prompts.get(role) or None
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        inputs = model_inputs(self.model, texts, langs)  # each text with its language where the model needs it
        out = np.zeros((len(texts), 0), dtype=np.float32)
        rows: list[np.ndarray] = []
        for start in range(0, len(order), self.batch_size):
            batch = [inputs[i] for i in order[start : start + self.batch_size]]
            feats = self.model.preprocess(batch, prompt=prompt)
            ids = feats["input_ids"].numpy().astype(np.int64)
            mask = feats["attention_mask"].numpy().astype(np.int64)
            (states,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            rows.append(self._pool(states, mask))
        if rows:
            stacked = np.concatenate(rows)
            out = np.empty_like(stacked)
            out[order] = stacked
        return out

    def _pool(self, states: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.mode == "cls":
            vec = states[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            vec = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(vec, axis=1, keepdims=True)
        unit: np.ndarray = (vec / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def close(self) -> None:
        self._tmp.cleanup()
