"""mBART as a sentence encoder: the encoder stack of `MBartModel` only, as a sentence-transformers input module.

The decoder is dropped (a third of mbart-large-50's parameters). Follow it with a mean `Pooling` module;
`mbart_sentence_model` builds that pair. The module saves its HF config (`config.json`), its weights
(`model.safetensors`) and its tokenizer next to `mbart_encoder_config.json`, and loads back with
`MBartEncoderModule.load` (sentence-transformers calls it from `modules.json`; hbt's `load_backbone` passes the
class explicitly, so no `trust_remote_code` is needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from hbt.engine.backbones._util import portable_tokenizer_config, text_inputs
from sentence_transformers.sentence_transformer.modules import InputModule, Pooling
from transformers import AutoTokenizer, MBartConfig, PreTrainedTokenizerBase
from transformers.models.mbart.modeling_mbart import MBartEncoder


class MBartEncoderModule(InputModule):
    """Token embeddings from an mBART encoder (`features["token_embeddings"]`)."""

    config_file_name = "mbart_encoder_config.json"
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
        super().__init__()
        self.auto_model = encoder
        self.tokenizer = tokenizer
        self.max_seq_length = int(min(max_seq_length, encoder.config.max_position_embeddings))
        self.src_lang = src_lang
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
        from transformers import MBartModel

        full = MBartModel.from_pretrained(name_or_path, local_files_only=local_files_only)
        encoder = full.get_encoder()  # keeps the (scaled) shared embedding; the decoder goes with `full`
        del full
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_files_only)
        return cls(encoder, tokenizer, max_seq_length=max_seq_length, src_lang=src_lang)

    # ---- sentence-transformers protocol ----------------------------------------------------------------------
    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        texts = text_inputs(inputs, prompt, type(self).__name__)
        max_length = kwargs.get("max_length") or self.max_seq_length
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
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        init_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Self:
        hub_kwargs: dict[str, Any] = {
            "subfolder": subfolder,
            "token": token,
            "cache_folder": cache_folder,
            "revision": revision,
            "local_files_only": local_files_only,
        }
        directory = cls.load_dir_path(model_name_or_path, **hub_kwargs)
        if directory is None:
            raise FileNotFoundError(f"no mBART encoder module at {model_name_or_path!r}")
        config = cls.load_config(model_name_or_path, **hub_kwargs)
        hf_config = MBartConfig.from_pretrained(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        module = cls(MBartEncoder(hf_config), tokenizer, **config)
        cls.load_torch_weights(model_name_or_path, model=module, **hub_kwargs)
        return module


def mbart_sentence_model(module: MBartEncoderModule, device: str | None = None) -> Any:
    """A SentenceTransformer: the encoder module followed by mean pooling."""
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


__all__ = ["MBartEncoderModule", "mbart_sentence_model", "tiny_mbart_config"]
