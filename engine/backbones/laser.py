"""LASER's BiLSTM sentence encoder as a trainable sentence-transformers input module.

Architecture as in LASER (Artetxe & Schwenk 2019): token embedding -> multi-layer bidirectional LSTM ->
max-pooling over time (padding excluded) -> sentence embedding (1024-d for laser2: 5 layers x 512 per
direction). Parameter names follow LASER's `LaserLstmEncoder` (`embed_tokens.weight`, `lstm.weight_ih_l0`, ...),
so LASER checkpoints load without renaming.

Two tokenizers are supported:

- `"hf"`: a `tokenizers.Tokenizer` (`tokenizer.json`), used by tests and tiny models;
- `"laser"`: LASER's own pipeline rebuilt from maintained packages (`laser_files.LaserTextTokenizer`: Moses
  punctuation normalisation via sacremoses, lower-casing, SentencePiece), then LASER's dictionary
  (`laser_dictionary.json`) from pieces to ids.

Either way the ids get LASER's `</s>` appended. Nothing is truncated by default (`max_seq_length` None):
LASER's own SentenceEncoder encodes every piece of a sentence, however long (laser_encoders/models.py). Memory
grows linearly with length: per batch about batch x pieces x 2 x hidden x 4 bytes for one layer's outputs (laser2:
64 texts x 2,000 pieces x 1,024 x 4 B = 0.5 GB), and the encoder halves its batch on out-of-memory.

Real weights: `LaserBiLSTM.from_laser_files("laser2")` (or
`"laser3-<code>"`) downloads the published checkpoint into hbt's cache and maps it onto this module without
fairseq (see `laser_files`); laser3 models that are transformers rather than BiLSTMs are refused in one line.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import torch
from tokenizers import Tokenizer
from torch import nn

from ..common.errors import UserError
from ..common.io import read_json, write_json
from ._util import text_inputs
from .folder_module import FolderModule
from .laser_files import (
    LASER_INSTALL_HINT,
    LaserTextTokenizer,
    checkpoint_dictionary,
    ensure_files,
    load_checkpoint,
)

SPM_FILE = "laser.spm"
DICTIONARY_FILE = "laser_dictionary.json"
HF_TOKENIZER_FILE = "tokenizer.json"


class LaserBiLSTM(FolderModule):
    """Embedding + BiLSTM + max-pool. Outputs `token_embeddings` and `sentence_embedding`."""

    folder_kind = "LASER module"
    config_file_name = "laser_config.json"
    config_keys: list[str] = [  # noqa: RUF012 - declared as a list by sentence-transformers' Module
        "vocab_size",
        "padding_idx",
        "eos_idx",
        "unk_idx",
        "embed_dim",
        "hidden_size",
        "num_layers",
        "bidirectional",
        "max_seq_length",
        "tokenizer_kind",
        "lang",
    ]
    save_in_root = True

    def __init__(
        self,
        vocab_size: int,
        padding_idx: int = 1,
        eos_idx: int = 2,
        unk_idx: int = 3,
        embed_dim: int = 320,
        hidden_size: int = 512,
        num_layers: int = 5,
        bidirectional: bool = True,
        max_seq_length: int | None = None,
        tokenizer_kind: str = "hf",
        lang: str = "en",
        tokenizer: Any = None,
        dictionary: dict[str, int] | None = None,
        spm_model: str | Path | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # sentence-transformers Module.__init__(*args, **kwargs)
        if tokenizer_kind not in ("hf", "laser"):
            raise ValueError(f"tokenizer_kind must be 'hf' or 'laser', not {tokenizer_kind!r}")
        self.vocab_size = int(vocab_size)
        self.padding_idx = int(padding_idx)
        self.eos_idx = int(eos_idx)
        self.unk_idx = int(unk_idx)
        self.embed_dim = int(embed_dim)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.max_seq_length = int(max_seq_length) if max_seq_length is not None else None  # None: whole sentences
        self.tokenizer_kind = tokenizer_kind
        self.lang = lang
        self.embed_tokens = nn.Embedding(self.vocab_size, self.embed_dim, padding_idx=self.padding_idx)
        self.lstm = nn.LSTM(
            input_size=self.embed_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
        )
        self.dictionary = dictionary
        self.spm_model = Path(spm_model) if spm_model is not None else None
        self._laser_tokenizer: Any = None
        if tokenizer_kind == "hf":
            if tokenizer is None:
                raise ValueError("tokenizer_kind='hf' needs a tokenizers.Tokenizer")
            tokenizer.no_padding()
            tokenizer.no_truncation()
            self.tokenizer = tokenizer
        else:
            if dictionary is None or self.spm_model is None:
                raise ValueError("tokenizer_kind='laser' needs a dictionary and an spm_model file")

    # ---- tokenisation ----------------------------------------------------------------------------------------
    def _piece_ids(self, texts: list[str]) -> list[list[int]]:
        if self.tokenizer_kind == "hf":
            return [enc.ids for enc in self.tokenizer.encode_batch(texts, add_special_tokens=False)]
        if self._laser_tokenizer is None:
            assert self.spm_model is not None
            self._laser_tokenizer = LaserTextTokenizer(self.spm_model, lang=self.lang)
        assert self.dictionary is not None
        return [self._laser_tokenizer.ids(t, self.dictionary, self.unk_idx) for t in texts]

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        texts = text_inputs(inputs, prompt, type(self).__name__)
        limit = kwargs.get("max_length") or self.max_seq_length  # None: every piece, as LASER
        pieces = self._piece_ids(texts)
        rows = [[*(ids[: int(limit) - 1] if limit else ids), self.eos_idx] for ids in pieces]
        width = max((len(r) for r in rows), default=1)
        input_ids = torch.full((len(rows), width), self.padding_idx, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    # ---- model -----------------------------------------------------------------------------------------------
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        input_ids = features["input_ids"]
        # as LASER's LaserLstmEncoder: padding is every position holding the padding id
        mask = features["attention_mask"].bool() & input_ids.ne(self.padding_idx)
        lengths = mask.sum(dim=1).clamp(min=1)
        embedded = self.embed_tokens(input_ids)  # B x T x E
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        tokens, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=input_ids.shape[1])
        pooled = tokens.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values
        features["token_embeddings"] = tokens
        features["sentence_embedding"] = pooled
        return features

    def get_embedding_dimension(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)

    # ---- persistence -----------------------------------------------------------------------------------------
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        out = Path(output_path)
        self.save_config(output_path)
        device = next(self.parameters()).device
        self.cpu()  # safetensors cannot save LSTM weights from an accelerator
        try:
            self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        finally:
            self.to(device)
        if self.tokenizer_kind == "hf":
            self.tokenizer.save(str(out / HF_TOKENIZER_FILE))
        else:
            assert self.spm_model is not None and self.dictionary is not None
            if self.spm_model.resolve() != (out / SPM_FILE).resolve():
                shutil.copyfile(self.spm_model, out / SPM_FILE)
            write_json(out / DICTIONARY_FILE, self.dictionary)

    @classmethod
    def from_folder(cls, folder: Path, config: dict[str, Any]) -> Self:
        if config.get("tokenizer_kind", "hf") == "hf":
            return cls(**config, tokenizer=Tokenizer.from_file(str(folder / HF_TOKENIZER_FILE)))
        dictionary = {str(k): int(v) for k, v in read_json(folder / DICTIONARY_FILE).items()}
        return cls(**config, dictionary=dictionary, spm_model=folder / SPM_FILE)

    # ---- real LASER weights ----------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls, checkpoint_path: str | Path, spm_model: str | Path, lang: str = "en", max_seq_length: int | None = None
    ) -> Self:
        """A LASER BiLSTM checkpoint (`params`, `model`, `dictionary`) with its SentencePiece model."""
        checkpoint = load_checkpoint(Path(checkpoint_path))
        params = dict(checkpoint["params"])
        module = cls(
            vocab_size=int(params["num_embeddings"]),
            padding_idx=int(params["padding_idx"]),
            embed_dim=int(params.get("embed_dim", 320)),
            hidden_size=int(params.get("hidden_size", 512)),
            num_layers=int(params.get("num_layers", 1)),
            bidirectional=bool(params.get("bidirectional", False)),
            max_seq_length=max_seq_length,
            tokenizer_kind="laser",
            lang=lang,
            dictionary=checkpoint_dictionary(checkpoint),
            spm_model=Path(spm_model),
        )
        try:
            module.load_state_dict(checkpoint["model"])
        except RuntimeError as exc:
            raise UserError(f"{checkpoint_path}: weights do not fit its params ({str(exc).splitlines()[0]})") from exc
        return module

    @classmethod
    def from_laser_files(cls, name: str, cache_dir: str | Path, max_seq_length: int | None = None) -> Self:
        """`name` is "laser2" or "laser3-<code>" (e.g. laser3-zul_Latn): its files are downloaded into `cache_dir`
        when missing (see `laser_files.ensure_files`), then loaded without fairseq. Punctuation is normalised as
        English, as laser_encoders does for every language."""
        files = ensure_files(name, Path(cache_dir))
        return cls.from_checkpoint(files.checkpoint, files.spm, lang="en", max_seq_length=max_seq_length)


def laser_sentence_model(module: LaserBiLSTM, device: str | None = None) -> Any:
    """A SentenceTransformer holding the LASER module (it pools itself)."""
    # (start-up: sentence_transformers)
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(modules=[module], device=device)


__all__ = ["LASER_INSTALL_HINT", "LaserBiLSTM", "laser_sentence_model"]
