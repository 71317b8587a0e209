"""Partial fine-tuning: only the top N transformer layers train; the frozen bottom's outputs are cached per text.

`enable_partial(model, n_top)` turns the model's sentence-transformers `Transformer` module into a
`PartialTransformer` (same object, same weights, same tokenizer and save format): its forward runs the frozen
bottom (embeddings + the first L-N layers) in inference mode (eval: no dropout; no_grad) and then the top N layers
with gradients. The bottom's output for a given text never changes, so with a cache (default: the process-wide
`frozen_cache.SHARED`) it is computed once per unique token sequence and a training step runs only the
top N layers forward and backward. Everything else (sentence-transformers' trainer, losses, pooling, `encode`)
is unchanged: the module maps tokenised texts to token embeddings like the module it replaces.

Cache keys carry a fingerprint of the frozen part; the module checks the frozen tensors' in-place version
counters on every forward and re-fingerprints when any changed (a weight edited, a state dict loaded), so stale
outputs are never served. BERT-style encoders only (BERT, XLM-R, mE5, LaBSE): `model.embeddings` and
`model.encoder.layer`, stepped through with public transformers API only (`hf_layers`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sentence_transformers.base.modules.transformer import Transformer
from torch import nn

from ..common.errors import ConfigError
from ..common.torch_compat import tensor_version
from .fingerprint import model_fingerprint
from .frozen_cache import SHARED, FrozenCache, token_key
from .frozen_disk import shard_name
from .hf_layers import encoder_stack, layer_mask, run_layer

_NO_CACHE = object()


@dataclass
class PartialState:
    n_top: int
    cache: FrozenCache | None
    fingerprint: str = ""
    versions: int = -1


def encoder_layers(hf: Any) -> nn.ModuleList:
    stack = encoder_stack(hf)
    if stack is None:
        raise ConfigError(
            f"train_top_layers needs a BERT-style encoder (embeddings + encoder.layer), not {type(hf).__name__}"
        )
    return stack[1]


class PartialTransformer(Transformer):
    """A sentence-transformers `Transformer` whose bottom layers are frozen and whose outputs are cached.

    Loaded from a saved folder (its class is recorded in modules.json) it behaves exactly as `Transformer`
    until `enable_partial` is called again."""

    _hbt_partial: PartialState | None = None

    # -- the frozen part -------------------------------------------------------------------------------------
    def _hf(self) -> Any:
        return self.auto_model

    def bottom_modules(self) -> list[nn.Module]:
        state = self._hbt_partial
        assert state is not None
        layers = encoder_layers(self._hf())
        return [self._hf().embeddings, *layers[: len(layers) - state.n_top]]

    def top_layers(self) -> list[nn.Module]:
        state = self._hbt_partial
        assert state is not None
        layers = encoder_layers(self._hf())
        return list(layers[len(layers) - state.n_top :])

    def _frozen_tensors(self) -> list[torch.Tensor]:
        return [t for m in self.bottom_modules() for t in (*m.parameters(), *m.buffers())]

    def frozen_fingerprint(self) -> str:
        """Fingerprint of the frozen part; recomputed when any frozen tensor was modified in place."""

        state = self._hbt_partial
        assert state is not None
        versions = sum(tensor_version(t) for t in self._frozen_tensors())
        if versions != state.versions or not state.fingerprint:
            bottom = nn.ModuleList(self.bottom_modules())
            state.fingerprint = f"{type(self._hf()).__name__}:{state.n_top}:{model_fingerprint(bottom)}"
            state.versions = versions
        return state.fingerprint

    @torch.no_grad()
    def _run_bottom(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None) -> torch.Tensor:
        modules = self.bottom_modules()
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        try:
            kwargs = {"input_ids": ids} if types is None else {"input_ids": ids, "token_type_ids": types}
            hidden = modules[0](**kwargs)
            ext = layer_mask(self._hf(), mask, hidden)
            for layer in modules[1:]:
                hidden = run_layer(layer, hidden, ext)
        finally:
            for m, mode in zip(modules, modes, strict=True):
                m.train(mode)
        out: torch.Tensor = hidden
        return out

    def bottom_states(
        self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None, wait: bool = True
    ) -> torch.Tensor | None:
        """[batch, tokens, hidden] outputs of the frozen part, from the cache (memory, then the disk tier) where
        present. None only when `wait` is False and another process is computing this batch's missing rows."""
        state = self._hbt_partial
        assert state is not None
        if state.cache is None:
            return self._run_bottom(ids, mask, types)
        cache, fp = state.cache, self.frozen_fingerprint()
        lengths = mask.sum(dim=1).tolist()
        keys = [token_key(ids[i, :n], None if types is None else types[i, :n]) for i, n in enumerate(lengths)]
        rows: list[torch.Tensor | None] = [cache.get(fp, k) for k in keys]
        missing = self._from_disk(cache, fp, keys, rows)
        if missing and cache.disk is not None:
            names = [keys[i] for i in missing]
            with cache.disk.claim(fp, shard_name(names), wait) as mine:
                if not mine:
                    return None
                missing = self._from_disk(cache, fp, keys, rows)  # the shard a holder before us wrote
                if missing:
                    self._compute(ids, mask, types, lengths, missing, keys, rows, cache, fp)
                    cache.disk.write(fp, shard_name([keys[i] for i in missing]), [keys[i] for i in missing],
                                     [rows[i] for i in missing])  # fmt: skip
        elif missing:
            self._compute(ids, mask, types, lengths, missing, keys, rows, cache, fp)
        batch, width = ids.shape
        hidden_size = int(self._hf().config.hidden_size)
        dtype = next(self._hf().parameters()).dtype
        states = torch.zeros(batch, width, hidden_size, dtype=dtype, device=ids.device)
        for i, cached in enumerate(rows):
            assert cached is not None
            states[i, : cached.shape[0]] = cached.to(ids.device, dtype)
        return states

    @staticmethod
    def _from_disk(cache: FrozenCache, fp: str, keys: list[str], rows: list[torch.Tensor | None]) -> list[int]:
        """Fill the rows the disk tier has (into memory too); the indices still missing."""
        missing = [i for i, r in enumerate(rows) if r is None]
        if not missing or cache.disk is None:
            return missing
        found = cache.disk.read(fp, [keys[i] for i in missing])
        for i in missing:
            row = found.get(keys[i])
            if row is not None:
                rows[i] = row
                cache.put(fp, keys[i], row)
                cache.stats.disk_hits += 1
        return [i for i in missing if rows[i] is None]

    def _compute(
        self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None, lengths: list[int],
        missing: list[int], keys: list[str], rows: list[torch.Tensor | None], cache: FrozenCache, fp: str,
    ) -> None:  # fmt: skip
        """Run the bottom for the `missing` rows (one sub-batch cut to their longest) and cache them."""
        t0 = time.perf_counter()
        width = int(max(lengths[i] for i in missing))
        sub = torch.tensor(missing, device=ids.device)
        out = self._run_bottom(ids[sub, :width], mask[sub, :width], None if types is None else types[sub, :width])
        for j, i in enumerate(missing):
            row = out[j, : lengths[i]].detach().to("cpu").clone()
            cache.put(fp, keys[i], row)
            rows[i] = row
        cache.stats.computed += len(missing)
        cache.stats.compute_s += time.perf_counter() - t0

    # -- forward ---------------------------------------------------------------------------------------------
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        state = self._hbt_partial
        if state is None or features.get("modality", "text") != "text" or "input_ids" not in features or kwargs:
            return super().forward(features, **kwargs)
        ids, mask = features["input_ids"], features["attention_mask"]
        hidden = self.bottom_states(ids, mask, features.get("token_type_ids"))
        assert hidden is not None  # (waits for any other process computing the same batch)
        ext = layer_mask(self._hf(), mask, hidden)
        for layer in self.top_layers():
            hidden = run_layer(layer, hidden, ext)
        features[self.module_output_name] = hidden
        return features


def enable_partial(model: Any, n_top: int, cache: FrozenCache | object | None = _NO_CACHE) -> PartialTransformer:
    """Make model[0] a PartialTransformer training only its top `n_top` layers (cache: the shared store unless
    given; None = recompute the frozen part every step). Freezes the bottom (requires_grad False)."""
    module = model[0]
    if not isinstance(module, Transformer):
        raise ConfigError(f"train_top_layers needs a transformers backbone, not {type(module).__name__}")
    layers = encoder_layers(module.auto_model)
    if not 1 <= n_top <= len(layers):
        raise ConfigError(f"train_top_layers must be between 1 and {len(layers)} for this backbone, got {n_top}")
    if type(module) is Transformer:
        module.__class__ = PartialTransformer  # same object and weights: the trainer and optimizer see no change
    assert isinstance(module, PartialTransformer)
    partial: PartialTransformer = module
    partial._hbt_partial = PartialState(n_top, SHARED if cache is _NO_CACHE else cache)  # type: ignore[arg-type]
    for m in partial.bottom_modules():
        m.requires_grad_(False)
    return partial


def disable_partial(model: Any) -> None:
    """Back to the plain sentence-transformers Transformer (frozen layers stay frozen)."""
    module = model[0]
    if isinstance(module, PartialTransformer):
        module._hbt_partial = None
        module.__class__ = Transformer


def partial_state(model: Any) -> PartialState | None:
    try:
        module = model[0]
    except (TypeError, IndexError, KeyError):
        return None
    return module._hbt_partial if isinstance(module, PartialTransformer) else None


def shared_folder(model: Any) -> Path | None:
    """Where the model's frozen-bottom cache is shared with other processes (its disk tier), if anywhere."""
    state = partial_state(model)
    disk = state.cache.disk if state is not None and state.cache is not None else None
    return disk.root if disk is not None else None


@contextlib.contextmanager
def saved_as_plain(model: Any) -> Iterator[None]:
    """While saving: model[0] is a plain `Transformer`, so the saved folder loads anywhere (modules.json
    records sentence-transformers' class, not hbt's)."""
    module = model[0] if len(model) else None
    state = partial_state(model)
    if state is None or module is None:
        yield
        return
    disable_partial(model)
    try:
        yield
    finally:
        module.__class__ = PartialTransformer
        module._hbt_partial = state


def share_for_evaluation(model: Any, n_top: int | None) -> bool:
    """Evaluation of a grid whose cells train the top `n_top` layers: encode through the shared frozen-output
    cache, so the bottom outputs of the evaluation texts are computed by the first cell (the untrained baseline)
    and each trained cell runs only its own top layers. False (and nothing changed) for non-BERT-style models."""
    if not n_top:
        return False
    if partial_state(model) is not None:
        return True
    try:
        enable_partial(model, n_top)
    except ConfigError:
        return False
    return True


@dataclass
class WarmReport:
    texts: int  # unique (prompt, text) inputs asked for
    computed: int  # of which computed here
    seconds: float
    nbytes: int  # the store's size afterwards
    skipped: bool = False  # too many texts for the store's bound: left to fill lazily during training
    read: int = 0  # of which read from the disk tier (computed by another process)


def warm_frozen_cache(
    model: Any, texts_by_prompt: dict[str | None, list[str]], batch_size: int = 64, fit: float = 0.5
) -> WarmReport:
    """Compute the frozen bottom's outputs of every unique training text once, before training (length-sorted
    batches of `batch_size`, no_grad), so each training step runs only the top layers. Skipped when the texts'
    estimated size exceeds `fit` of the store's bound (they then fill lazily, and the least used are dropped).
    With a disk tier, a batch another process is computing is left for a second pass (by then usually on disk):
    processes warming the same texts split them."""
    state = partial_state(model)
    if state is None or state.cache is None:
        return WarmReport(0, 0, 0.0, 0, skipped=True)
    module: PartialTransformer = model[0]
    cache = state.cache
    jobs = [(prompt, t) for prompt, texts in texts_by_prompt.items() for t in dict.fromkeys(texts)]
    hidden = int(module.auto_model.config.hidden_size)
    est_tokens = sum(min(len(t) // 3 + 8, int(model.max_seq_length or 512)) for _, t in jobs)
    if est_tokens * hidden * 4 > fit * cache.max_bytes:
        return WarmReport(len(jobs), 0, 0.0, cache.nbytes, skipped=True)
    jobs.sort(key=lambda job: len(job[1]))
    t0 = time.perf_counter()
    computed, read = cache.stats.computed, cache.stats.disk_hits
    batches = [
        (prompt, group[start : start + batch_size])
        for prompt in texts_by_prompt
        for group in [[t for p, t in jobs if p == prompt]]
        for start in range(0, len(group), batch_size)
    ]
    for wait in (False, True):
        later = []
        for prompt, texts in batches:
            feats = model.preprocess(texts, prompt=prompt)
            ids, mask = feats["input_ids"].to(model.device), feats["attention_mask"].to(model.device)
            types = feats.get("token_type_ids")
            if module.bottom_states(ids, mask, None if types is None else types.to(model.device), wait) is None:
                later.append((prompt, texts))
        batches = later
    return WarmReport(len(jobs), cache.stats.computed - computed, time.perf_counter() - t0, cache.nbytes,
                      read=cache.stats.disk_hits - read)  # fmt: skip
