"""Tiny random-weight backbones for fast plumbing tests.

`build_tiny_model(path)` writes a complete sentence-transformers directory (hidden size 32, 2 layers, mean
pooling, Normalize, prompts "query: " / "passage: ") in well under a second; `SentenceTransformer(str(path))`
loads it offline in about 0.1 s. Its tokenizer is a Unigram model over a small multilingual character set
(Latin incl. Turkish/Vietnamese letters, Greek, Cyrillic, Arabic, Hebrew, Devanagari, Thai, kana, common CJK)
plus a few frequent words, with byte fallback, so text in any language tokenizes without `<unk>`.

The embeddings are meaningless; use these models to test data flow, training loops, caching and reports.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from ..common.errors import UserError, one_of
from ..common.paths import CACHE_FIX, cache_root
from ._util import E5_PROMPTS, portable_tokenizer_config

TINY_ARCHS = ("bert", "xlmr", "mbart", "laser")
TINY_HIDDEN = 32
TINY_LAYERS = 2
TINY_MAX_LENGTH = 128
TINY_VERSION = 1  # bump when the tiny models change, so cached copies are rebuilt
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0..3, as in XLM-R

_RANGES = (
    (0x21, 0x7E),  # ASCII
    (0xC0, 0x17F),  # Latin-1 letters, Latin Extended-A (ç ğ ı ş ...)
    (0x1A0, 0x1B0),  # Vietnamese horns (ơ ư)
    (0x1EA0, 0x1EF9),  # Vietnamese letters with tone marks
    (0x386, 0x3CE),  # Greek
    (0x400, 0x45F),  # Cyrillic
    (0x5D0, 0x5EA),  # Hebrew
    (0x621, 0x64A),  # Arabic letters
    (0x660, 0x669),  # Arabic-Indic digits
    (0x900, 0x97F),  # Devanagari
    (0xE01, 0xE5B),  # Thai
    (0x3041, 0x3096),  # Hiragana
    (0x30A1, 0x30FA),  # Katakana
)
_CJK = (  # frequent Chinese characters (kana above); others go through byte fallback
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小"
    "么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知"
    "民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间"
    "新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼"
    "体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或"
    "司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认"
    "算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运"
    "武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取"
    "设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观"
    "争究包组造落视济喜离虽坏兴"
)
_WORDS = (
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "that",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "his",
    "her",
    "are",
    "were",
    "which",
    "this",
    "an",
    "be",
    "or",
    "de",
    "la",
    "le",
    "et",
    "les",
    "des",
    "en",
    "un",
    "une",
    "du",
    "est",
    "que",
    "el",
    "los",
    "las",
    "del",
    "por",
    "con",
    "para",
    "una",
    "se",
    "das",
    "der",
    "die",
    "und",
    "den",
    "ist",
    "nicht",
    "mit",
    "von",
    "zu",
    "im",
    "ein",
    "eine",
    "и",
    "в",
    "не",
    "на",
    "что",
    "с",
    "по",
    "как",
    "из",
    "для",
    "о",
    "это",
    "al",
    "في",
    "من",
    "على",
    "إلى",
    "की",
    "के",
    "में",
    "है",
    "और",
    "का",
    "को",
    "से",
    "的",
    "是",
    "在",
    "了",
    "和",
    "bir",
    "ve",
    "bu",
    "için",
    "ile",
    "da",
    "một",
    "của",
    "và",
    "có",
    "được",
    "là",
    "những",
)


def build_tiny_tokenizer() -> Any:
    """A `tokenizers.Tokenizer`: Unigram over `<s> <pad> </s> <unk>`, 256 byte pieces, "▁", the character set
    above and a few "▁word" pieces; NFKC, Metaspace, `<s> $A </s>`; about 1,800 pieces."""

    pieces: dict[str, float] = {}
    for special in SPECIALS:
        pieces[special] = 0.0
    for byte in range(256):
        pieces[f"<0x{byte:02X}>"] = -30.0  # only through byte fallback
    pieces["▁"] = -3.0
    for lo, hi in _RANGES:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if ch.isprintable() and not ch.isspace():
                pieces.setdefault(ch, -8.0)
    for ch in _CJK:
        pieces.setdefault(ch, -9.0)
    for word in _WORDS:
        pieces.setdefault("▁" + word, -6.0)
    tok = Tokenizer(models.Unigram(list(pieces.items()), unk_id=3, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Sequence(
        [decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    return tok


def _hf_tokenizer(tok: Any, max_length: int) -> Any:
    # (start-up: transformers)
    from transformers import PreTrainedTokenizerFast

    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=max_length,
    )
    wrapped.backend_tokenizer.post_processor = tok.post_processor
    return wrapped


def _transformer_config(arch: str, vocab_size: int) -> Any:
    common: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": TINY_HIDDEN,
        "num_hidden_layers": TINY_LAYERS,
        "num_attention_heads": 2,
        "intermediate_size": 2 * TINY_HIDDEN,
        "pad_token_id": 1,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }
    if arch == "bert":
        # (start-up: transformers)
        from transformers import BertConfig

        return BertConfig(max_position_embeddings=TINY_MAX_LENGTH, type_vocab_size=2, **common)
    # (start-up: transformers)
    from transformers import XLMRobertaConfig

    # XLM-R positions start after the padding index: two extra slots
    return XLMRobertaConfig(
        max_position_embeddings=TINY_MAX_LENGTH + 2, type_vocab_size=1, bos_token_id=0, eos_token_id=2, **common
    )


def build_tiny_model(path: Path, arch: str = "bert", seed: int = 0) -> Path:
    """Write a tiny random-weight sentence-transformers model to `path` (created; must be empty or absent).

    arch: "bert" or "xlmr" (standard modules: `SentenceTransformer(str(path))` loads them),
    "mbart" (encoder-only mBART + mean pooling) or "laser" (BiLSTM + max pooling); the last two use hbt's
    own modules, so load them with `hbt.engine.backbones.load_backbone(str(path))`.
    The same `seed` gives the same weights. Returns `path`.
    """
    # (start-up: torch, sentence_transformers)
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    if arch not in TINY_ARCHS:
        raise one_of("tiny backbone architecture", arch, TINY_ARCHS)
    target = Path(path)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty")
    tok = build_tiny_tokenizer()
    vocab_size = tok.get_vocab_size()
    modules: list[Any]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch in ("bert", "xlmr"):
            # (start-up: transformers)
            from transformers import AutoModel

            model = AutoModel.from_config(_transformer_config(arch, vocab_size))
            staging = Path(tempfile.mkdtemp(prefix="hbt-tiny-"))
            try:
                model.save_pretrained(staging)
                _hf_tokenizer(tok, TINY_MAX_LENGTH).save_pretrained(staging)
                portable_tokenizer_config(staging)
                first: Any = Transformer(str(staging), max_seq_length=TINY_MAX_LENGTH)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            modules = [first, Pooling(TINY_HIDDEN, pooling_mode="mean"), Normalize()]
        elif arch == "mbart":
            # (start-up: sentence_transformers, transformers)
            from .mbart import MBartEncoderModule, tiny_mbart_config

            encoder = MBartEncoderModule.from_config(
                tiny_mbart_config(vocab_size, d_model=TINY_HIDDEN, layers=TINY_LAYERS, max_positions=TINY_MAX_LENGTH),
                _hf_tokenizer(tok, TINY_MAX_LENGTH),
                max_seq_length=TINY_MAX_LENGTH,
            )
            modules = [encoder, Pooling(TINY_HIDDEN, pooling_mode="mean"), Normalize()]
        else:
            # (start-up: torch, sentence_transformers)
            from .laser import LaserBiLSTM

            lstm = LaserBiLSTM(
                vocab_size=vocab_size,
                embed_dim=TINY_HIDDEN,
                hidden_size=TINY_HIDDEN // 2,
                num_layers=TINY_LAYERS,
                bidirectional=True,
                max_seq_length=TINY_MAX_LENGTH,
                tokenizer=tok,
            )
            modules = [lstm, Normalize()]
        st_model = SentenceTransformer(modules=modules, device="cpu", prompts=dict(E5_PROMPTS))  # (E5-style)
    target.mkdir(parents=True, exist_ok=True)
    st_model.save(str(target), create_model_card=False)
    return target


def ensure_tiny_model(arch: str = "bert", seed: int = 0, cache_dir: Path | None = None) -> Path:
    """The tiny model of `arch`/`seed`, built once into `<hbt cache>/models/` (atomically) and reused."""
    if arch not in TINY_ARCHS:
        raise one_of("tiny backbone architecture", arch, TINY_ARCHS)
    target = cache_root(cache_dir) / "models" / f"tiny-random-{arch}-s{seed}-v{TINY_VERSION}"
    if (target / "modules.json").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise UserError(f"cannot create the model cache {target.parent}: {exc.strerror or exc} — {CACHE_FIX}") from exc
    try:
        build_tiny_model(staging / "model", arch=arch, seed=seed)
        try:
            os.replace(staging / "model", target)
        except OSError:
            if not (target / "modules.json").is_file():  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


__all__ = ["TINY_ARCHS", "build_tiny_model", "build_tiny_tokenizer", "ensure_tiny_model"]
