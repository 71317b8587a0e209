"""mBART as a sentence encoder: the encoder stack of `MBartModel` only, as a sentence-transformers input module.

The decoder is dropped (a third of mbart-large-50's parameters). Follow it with a mean `Pooling` module;
`mbart_sentence_model` builds that pair. The module saves its HF config (`config.json`), its weights
(`model.safetensors`) and its tokenizer next to `mbart_encoder_config.json`, and loads back with
`MBartEncoderModule.load` (sentence-transformers calls it from `modules.json`; hbt's `load_backbone` passes the
class explicitly, so no `trust_remote_code` is needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from sentence_transformers.sentence_transformer.modules import Pooling
from transformers import AutoTokenizer, MBartConfig, PreTrainedTokenizerBase
from transformers.models.mbart.modeling_mbart import MBartEncoder

from ._util import (
    portable_tokenizer_config,
    register_text_languages,
    text_inputs,
    wants_text_languages,
)
from .folder_module import FolderModule


def _language_codes() -> dict[str, str]:
    """ISO 639-1 -> mBART-50 language code ("fi" -> "fi_FI"), from transformers' list of the 52 codes."""
    # (start-up: transformers)
    from transformers.models.mbart50.tokenization_mbart50 import FAIRSEQ_LANGUAGE_CODES

    return {code.split("_")[0]: code for code in FAIRSEQ_LANGUAGE_CODES}


MBART50_CODES = _language_codes()


def language_code(lang: str | None) -> str | None:
    """The mBART-50 code of a language ("ja" -> "ja_XX"; an mBART code passes through), None when it has none."""
    if not lang:
        return None
    return lang if lang in MBART50_CODES.values() else MBART50_CODES.get(lang)


class MBartEncoderModule(FolderModule):
    """Token embeddings from an mBART encoder (`features["token_embeddings"]`).

    Language codes, as mBART-50 expects: each text is `[lang_code] pieces </s>` with its own language's code. The
    language of a text comes from the input (`{"text": ..., "lang": "fi"}`), else from `set_text_languages` (hbt's
    evaluation and training register every query, passage and training text with its language), else `src_lang`.
    A tokenizer without mBART-50's codes (the tiny random model's) adds its own special tokens instead.
    """

    config_file_name = "mbart_encoder_config.json"
    folder_kind = "mBART encoder module"
    config_keys: list[str] = ["max_seq_length", "src_lang"]  # noqa: RUF012 - a list in ST's Module
    save_in_root = True
    tokenizer: PreTrainedTokenizerBase

    def __init__(
        self,
        encoder: MBartEncoder,
        tokenizer: PreTrainedTokenizerBase,
        max_seq_length: int = 512,
        src_lang: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # sentence-transformers Module.__init__(*args, **kwargs)
        self.auto_model = encoder
        self.tokenizer = tokenizer
        self.max_seq_length = int(min(max_seq_length, encoder.config.max_position_embeddings))
        self.src_lang = src_lang
        self.text_langs: dict[str, str] = {}  # text -> language, see set_text_languages (not saved)
        if src_lang is not None and hasattr(tokenizer, "src_lang"):
            tokenizer.src_lang = src_lang  # mBART-50 prefixes each text with its language code

    # ---- construction ----------------------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        config: MBartConfig,
        tokenizer: PreTrainedTokenizerBase,
        max_seq_length: int = 512,
        src_lang: str | None = None,
    ) -> Self:
        """Randomly initialised encoder (tests, experiments)."""
        return cls(MBartEncoder(config), tokenizer, max_seq_length=max_seq_length, src_lang=src_lang)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        max_seq_length: int = 512,
        src_lang: str | None = "en_XX",
        local_files_only: bool = False,
    ) -> Self:
        """Encoder of a pretrained mBART checkpoint (hub id or local directory); the decoder is discarded."""
        # (start-up: transformers)
        from transformers import MBartModel

        full = MBartModel.from_pretrained(name_or_path, local_files_only=local_files_only)
        encoder = full.get_encoder()  # keeps the (scaled) shared embedding; the decoder goes with `full`
        del full
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_files_only)
        return cls(encoder, tokenizer, max_seq_length=max_seq_length, src_lang=src_lang)

    # ---- sentence-transformers protocol ----------------------------------------------------------------------
    def set_text_languages(self, languages: Mapping[str, str]) -> None:
        """Remember the language of texts (text -> ISO code such as "fi") for their language-code token."""
        self.text_langs.update(languages)

    def _code_id(self, lang: str | None) -> int | None:
        code = language_code(lang) or language_code(self.src_lang)
        if code is None:
            return None
        code_id = self.tokenizer.convert_tokens_to_ids(code)
        return code_id if isinstance(code_id, int) and code_id != self.tokenizer.unk_token_id else None

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        texts = text_inputs(inputs, prompt, type(self).__name__)
        max_length = int(kwargs.get("max_length") or self.max_seq_length)
        langs = [
            item.get("lang") if isinstance(item, dict) else self.text_langs.get(item)  # before any prompt
            for item in inputs
        ]
        code_ids = [self._code_id(lang) for lang in langs]
        if texts and all(c is not None for c in code_ids):
            # (start-up: torch)
            import torch

            pieces = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
            eos = self.tokenizer.eos_token_id
            rows = [[c, *ids[: max_length - 2], eos] for c, ids in zip(code_ids, pieces, strict=True)]
            width = max(len(r) for r in rows)
            input_ids = torch.full((len(rows), width), int(self.tokenizer.pad_token_id), dtype=torch.long)
            attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
                attention_mask[i, : len(row)] = 1
            return {"input_ids": input_ids, "attention_mask": attention_mask}
        encoded = self.tokenizer(
            texts, padding=True, truncation="longest_first", max_length=max_length, return_tensors="pt"
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        output = self.auto_model(
            input_ids=features["input_ids"], attention_mask=features["attention_mask"], return_dict=True
        )
        features["token_embeddings"] = output.last_hidden_state
        return features

    def get_embedding_dimension(self) -> int:
        return int(self.auto_model.config.d_model)

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.auto_model.config.save_pretrained(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        self.save_tokenizer(output_path)
        portable_tokenizer_config(output_path)

    @classmethod
    def from_folder(cls, folder: Path, config: dict[str, Any]) -> Self:
        hf_config = MBartConfig.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        return cls(MBartEncoder(hf_config), tokenizer, **config)


def mbart_sentence_model(module: MBartEncoderModule, device: str | None = None) -> Any:
    """A SentenceTransformer: the encoder module followed by mean pooling."""
    # (start-up: sentence_transformers)
    from sentence_transformers import SentenceTransformer

    pooling = Pooling(module.get_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[module, pooling], device=device)


def tiny_mbart_config(vocab_size: int, d_model: int = 32, layers: int = 2, max_positions: int = 128) -> MBartConfig:
    """A small random-weight mBART configuration (pad 1, bos 0, eos 2 as in XLM-R-style vocabularies)."""
    return MBartConfig(
        vocab_size=vocab_size,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_position_embeddings=max_positions,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        scale_embedding=True,
    )


__all__ = [
    "MBART50_CODES",
    "MBartEncoderModule",
    "language_code",
    "mbart_sentence_model",
    "register_text_languages",
    "tiny_mbart_config",
    "wants_text_languages",
]
