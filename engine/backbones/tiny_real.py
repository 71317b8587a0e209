"""Tiny random-weight checkpoints written in the published on-disk formats, for offline proofs and tests.

- `write_laser_files(folder, name="laser2")`: what dl.fbaipublicfiles.com/nllb/laser serves for LASER2 (or a
  LASER3 BiLSTM), at toy size: `<stem>.pt` (`torch.save`d dict: `params` = LaserLstmEncoder's constructor
  arguments, `model` = its state dict, `dictionary` = piece -> id with `<s> <pad> </s> <unk>` at 0..3), `<stem>.spm`
  (a SentencePiece unigram model trained here) and `<stem>.cvocab` (fairseq dictionary lines `<piece> <count>`).
  Pre-fill `<hbt cache>/laser/` with it and `--backbone laser2` loads it with no network.
- `write_mbart_dir(folder)`: a tiny `MBartModel` (`config.json` with `model_type: mbart`, safetensors) with an
  mBART-50 tokenizer built from a SentencePiece model trained here (fairseq id layout, the 52 language codes);
  `--backbone <folder>` loads it as the mBART encoder.

Random weights: plumbing only, their numbers mean nothing.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

from .laser_files import file_names

# a few sentences per language of TyDi QA / XOR-TyDi (+ English) so every script gets pieces
CORPUS = (
    "The capital of Finland is Helsinki, a city on the Baltic Sea.",
    "When was the University of Tokyo founded? It was founded in 1877.",
    "Mount Everest is the highest mountain above sea level.",
    "The river flows through the city and into the sea.",
    "Suomen pääkaupunki on Helsinki, joka sijaitsee Itämeren rannalla.",
    "Milloin Tokion yliopisto perustettiin?",
    "Столица Финляндии — Хельсинки, город на берегу Балтийского моря.",
    "Когда был основан Токийский университет?",
    "عاصمة فنلندا هي هلسنكي، وهي مدينة على بحر البلطيق.",
    "متى تأسست جامعة طوكيو؟",
    "ফিনল্যান্ডের রাজধানী হেলসিংকি, বাল্টিক সাগরের তীরে একটি শহর।",
    "টোকিও বিশ্ববিদ্যালয় কবে প্রতিষ্ঠিত হয়?",
    "フィンランドの首都はヘルシンキで、バルト海に面した都市です。",
    "東京大学はいつ設立されましたか？",
    "핀란드의 수도는 발트해에 접한 도시 헬싱키이다.",
    "도쿄 대학교는 언제 설립되었나요?",
    "ఫిన్లాండ్ రాజధాని హెల్సింకి, బాల్టిక్ సముద్రం ఒడ్డున ఉన్న నగరం.",
    "టోక్యో విశ్వవిద్యాలయం ఎప్పుడు స్థాపించబడింది?",
    "Ibu kota Finlandia adalah Helsinki. Mji mkuu wa Finland ni Helsinki.",
    "เมืองหลวงของฟินแลนด์คือเฮลซิงกิ",
)


def train_spm(prefix: Path, vocab_size: int = 700, lowercase: bool = True) -> Path:
    """Train a small SentencePiece unigram model on CORPUS; returns `<prefix>.model`."""
    # (extra: laser)
    import sentencepiece as spm

    sentences = [s.lower() if lowercase else s for s in CORPUS] * 3
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        byte_fallback=True,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    path = prefix.with_suffix(".model")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.getvalue())
    return path


def laser_checkpoint(
    pieces: list[str], embed_dim: int = 16, hidden_size: int = 8, num_layers: int = 2, seed: int = 0
) -> dict[str, Any]:
    """A LASER BiLSTM checkpoint dict over `pieces` (ids 4.. in order), random weights from `seed`."""
    # (start-up: torch)
    import torch
    from torch import nn

    dictionary = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for piece in pieces:
        dictionary.setdefault(piece, len(dictionary))
    params = {
        "num_embeddings": len(dictionary),
        "padding_idx": 1,
        "embed_dim": embed_dim,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "bidirectional": True,
        "left_pad": False,
        "padding_value": 0.0,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        embed = nn.Embedding(len(dictionary), embed_dim, padding_idx=1)
        lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, bidirectional=True)
    model = {f"embed_tokens.{k}": v for k, v in embed.state_dict().items()}
    model |= {f"lstm.{k}": v for k, v in lstm.state_dict().items()}
    return {"params": params, "model": model, "dictionary": dictionary}


def write_laser_files(folder: Path, name: str = "laser2", seed: int = 0, **sizes: int) -> dict[str, Path]:
    """`<stem>.pt`, `<stem>.spm`, `<stem>.cvocab` of a tiny LASER BiLSTM in `folder` (see the module docstring)."""
    # (extra: laser) (start-up: torch)
    import sentencepiece as spm
    import torch

    pt_name, spm_name, cvocab_name = file_names(name)
    folder.mkdir(parents=True, exist_ok=True)
    model_file = train_spm(folder / (spm_name + ".tmp"))
    (folder / spm_name).write_bytes(model_file.read_bytes())
    model_file.unlink()
    processor = spm.SentencePieceProcessor(model_file=str(folder / spm_name))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    pieces = [p for p in pieces if p not in ("<unk>", "<s>", "</s>", "<pad>")]
    checkpoint = laser_checkpoint(pieces, seed=seed, **sizes)
    torch.save(checkpoint, folder / pt_name)
    counts = "".join(f"{p} {1000 - i}\n" for i, p in enumerate(pieces))
    (folder / cvocab_name).write_text(counts, encoding="utf-8")
    return {"checkpoint": folder / pt_name, "spm": folder / spm_name, "cvocab": folder / cvocab_name}


def mbart50_tokenizer(spm_model: Path) -> Any:
    """An mBART-50 tokenizer over a SentencePiece model (fairseq layout: <s> <pad> </s> <unk>, pieces, language
    codes, <mask>), as transformers builds it from `sentencepiece.bpe.model`."""
    # (extra: laser) (start-up: transformers)
    import sentencepiece as spm
    from transformers import MBart50Tokenizer

    processor = spm.SentencePieceProcessor(model_file=str(spm_model))
    vocab = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]
    return MBart50Tokenizer(vocab=vocab, src_lang="en_XX", tgt_lang="en_XX")


def tiny_mbart_model(vocab_size: int, seed: int = 0) -> Any:
    # (start-up: torch, transformers)
    import torch
    from transformers import MBartModel

    # (start-up: sentence_transformers, transformers)
    from .mbart import tiny_mbart_config

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MBartModel(tiny_mbart_config(vocab_size, d_model=32, layers=2, max_positions=128))


def write_mbart_dir(folder: Path, seed: int = 0) -> Path:
    """A tiny mBART checkpoint directory (model + mBART-50 tokenizer) that `--backbone <folder>` loads."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = mbart50_tokenizer(train_spm(folder / "spm-tmp", lowercase=False))
    (folder / "spm-tmp.model").unlink()
    model = tiny_mbart_model(len(tokenizer), seed=seed)
    model.config.model_type  # noqa: B018 - "mbart", read by hbt's registry
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    """python -m hbt.engine.backbones.tiny_real --laser-cache DIR --mbart DIR"""

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--laser-cache", type=Path, help="write tiny laser2 files here (<hbt cache>/laser)")
    parser.add_argument("--mbart", type=Path, help="write a tiny mBART checkpoint directory here")
    args = parser.parse_args(argv)
    if args.laser_cache:
        for role, path in write_laser_files(args.laser_cache).items():
            print(f"{role}: {path}")
    if args.mbart:
        print(f"mbart: {write_mbart_dir(args.mbart)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
