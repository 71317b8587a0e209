"""Small helpers shared by the backbone modules."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..common.io import read_json, write_json

# the E5 family's role prompts (multilingual-e5 model cards): the bundled model, the tiny test models and me5-*
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


def portable_tokenizer_config(model_dir: str | Path) -> None:
    """Name the generic fast-tokenizer class in `tokenizer_config.json`: transformers 4.x and 5.x both resolve
    `PreTrainedTokenizerFast` (5.x writes `TokenizersBackend`, unknown to 4.x) and load `tokenizer.json` as is."""
    path = Path(model_dir) / "tokenizer_config.json"
    if not path.is_file():
        return
    config = read_json(path)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.pop("backend", None)
    write_json(path, config)


def hub_cached(repo_id: str, filename: str = "config.json") -> bool:
    """True when `filename` of `repo_id` is in the local Hugging Face cache (no network access)."""
    try:
        # (optional: its absence is handled here)
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return False
    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # invalid repo ids raise validation errors
        return False
    return isinstance(found, str) and os.path.isfile(found)


def text_inputs(inputs: Any, prompt: str | None, owner: str) -> list[str]:
    """Texts from a sentence-transformers `preprocess` call (plain strings only), with the prompt prepended."""
    texts: list[str] = []
    for item in inputs:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            texts.append(item["text"])
        else:
            raise TypeError(f"{owner} encodes text only, got {type(item).__name__}")
    if prompt:
        texts = [prompt + text for text in texts]
    return texts


def register_text_languages(model: Any, languages: Mapping[str, str]) -> bool:
    """Tell every module of `model` that wants it (mBART-50's language codes) the language of these texts;
    False when no module does (nothing stored)."""
    modules = [m for m in (model if hasattr(model, "__iter__") else []) if hasattr(m, "set_text_languages")]
    for module in modules:
        module.set_text_languages(languages)
    return bool(modules)


def wants_text_languages(model: Any) -> bool:
    return any(hasattr(m, "set_text_languages") for m in (model if hasattr(model, "__iter__") else []))
