"""SentencePiece's "precompiled charsmap" (the normalisation table the `Precompiled` normaliser of `tokenizers`
reads), written from a plain `{source string: replacement}` map. The bundled backbone's tokenizer builds its
normaliser with it (hbt.engine.backbones.bundled_tokenizer).
"""

from __future__ import annotations

import struct
from collections import deque

import numpy as np


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
