"""LASER without fairseq: the published files, their download into hbt's cache, and LASER's tokenizer.

Files (as published by LASER's `nllb/download_models.sh` and `laser_encoders/download_models.py`, base URL
`https://dl.fbaipublicfiles.com/nllb/laser`):

- `laser2.pt`, `laser2.spm`, `laser2.cvocab`;
- `laser3-<code>.v1.pt` plus, for the languages in `SPM_LANGUAGES`, `laser3-<code>.v1.spm` / `.cvocab` (the
  others use laser2's SentencePiece model and vocabulary).

A BiLSTM checkpoint (`torch.save`d dict) holds `params` (the `LaserLstmEncoder` constructor arguments:
`num_embeddings`, `padding_idx`, `embed_dim`, `hidden_size`, `num_layers`, `bidirectional`, ...), `model` (its state
dict: `embed_tokens.weight`, `lstm.weight_ih_l0`, `lstm.weight_ih_l0_reverse`, ...) and `dictionary` (piece -> id);
LASER then forces `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3 (laser_encoders/models.py, `SentenceEncoder.__init__`).
A fairseq transformer checkpoint (most LASER3 students) has `cfg` instead of `params`: hbt refuses it in one line.
The `.cvocab` file is a fairseq dictionary (`<piece> <count>` per line); only the transformer path needs it.

Tokenisation (laser_encoders/laser_tokenizer.py, `LaserTokenizer.tokenize`; the same steps as `SPMApply` in
source/lib/text_processing.py): every character of Unicode category C becomes a space; Moses punctuation
normalisation (`sacremoses.MosesPunctNormalizer(lang, perl_parity=True)` with substitutions 21 and 22 set to map `‘`
and `‚` to `"`, "parity with MOSES release-4.0"); lower-casing; SentencePiece pieces. `SentenceEncoder._tokenize`
then maps each whitespace-separated piece through the dictionary (unknown -> `<unk>`) and appends `</s>` (no `<s>`
for the BiLSTM).

Downloads are resumable (`<file>.part` + an HTTP Range request), checked against the size the server announces,
and recorded with their size and sha256 in `<file>.json`; a cached file whose size no longer matches is fetched
again. With no network and no cached copy: one `OfflineError` line.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.errors import ConfigError, OfflineError, UserError
from ..common.io import read_json, write_json

LASER_BASE_URL = os.environ.get("HBT_LASER_URL", "https://dl.fbaipublicfiles.com/nllb/laser")
LASER_INSTALL_HINT = "pip install 'hbt[laser]' (sacremoses, sentencepiece)"
# laser3 languages with their own SentencePiece model (nllb/download_models.sh `spm_langs`)
SPM_LANGUAGES = frozenset(
    [
        "amh_Ethi",
        "ayr_Latn",
        "azj_Latn",
        "bak_Cyrl",
        "bel_Cyrl",
        "bod_Tibt",
        "ckb_Arab",
        "crh_Latn",
        "dik_Latn",
        "dzo_Tibt",
        "fur_Latn",
        "fuv_Latn",
        "grn_Latn",
        "kab_Latn",
        "kac_Latn",
        "kaz_Cyrl",
        "kir_Cyrl",
        "kmr_Latn",
        "lij_Latn",
        "lim_Latn",
        "lmo_Latn",
        "ltg_Latn",
        "mya_Mymr",
        "pbt_Arab",
        "pes_Arab",
        "prs_Arab",
        "sat_Beng",
        "scn_Latn",
        "srd_Latn",
        "szl_Latn",
        "taq_Latn",
        "tgk_Cyrl",
        "tir_Ethi",
        "tzm_Tfng",
        "vec_Latn",
    ]
)
LASER3_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
SPECIAL_IDS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
_CHUNK = 1 << 20
MEMO_SIZE = 200_000  # tokenised texts remembered per tokenizer (then forgotten all at once)


@dataclass(frozen=True)
class LaserFiles:
    """The local files of one LASER model."""

    name: str
    checkpoint: Path
    spm: Path
    cvocab: Path


def file_names(name: str) -> tuple[str, str, str]:
    """(checkpoint, spm, cvocab) file names of `laser2` or `laser3-<code>` (e.g. laser3-zul_Latn)."""
    if name == "laser2":
        return "laser2.pt", "laser2.spm", "laser2.cvocab"
    code = name.removeprefix("laser3-")
    if not name.startswith("laser3-") or not LASER3_CODE.match(code):
        raise ConfigError(f"unknown LASER model {name!r} (allowed: laser2, laser3-<code> such as laser3-zul_Latn)")
    stem = f"laser3-{code}.v1"
    if code in SPM_LANGUAGES:
        return f"{stem}.pt", f"{stem}.spm", f"{stem}.cvocab"
    return f"{stem}.pt", "laser2.spm", "laser2.cvocab"


def _complete(path: Path) -> bool:
    """The file exists and has the size recorded when it was downloaded (or no record: placed there by hand)."""
    if not path.is_file():
        return False
    record = path.with_name(path.name + ".json")
    if not record.is_file():
        return True
    try:
        return int(read_json(record)["size"]) == path.stat().st_size
    except (OSError, ValueError, KeyError, TypeError):
        return False


def cached(name: str, cache_dir: Path) -> bool:
    """All files of `name` are in `cache_dir` (no network access)."""
    return all(_complete(cache_dir / f) for f in file_names(name))


def download(
    url: str, dest: Path, *, timeout: float = 30.0, progress: Callable[[int, int], None] | None = None
) -> Path:
    """Fetch `url` into `dest`, resuming a partial `<dest>.part`; the size must equal what the server announced.

    Writes `<dest>.json` (url, size, sha256) beside the file. Raises OfflineError when the host cannot be reached.
    """
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part file is already whole (or longer): start again
            part.unlink()
            return download(url, dest, timeout=timeout, progress=progress)
        raise UserError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OfflineError(f"cannot download {url} ({reason}): no network? put the file in {dest.parent}") from exc
    with response:
        if response.status == 206:
            total = int(response.headers.get("Content-Range", "*/0").rsplit("/", 1)[-1])
            mode = "ab"
        else:  # the server ignored the Range header: start over
            total, have, mode = int(response.headers.get("Content-Length", 0)), 0, "wb"
        with open(part, mode) as fh:
            while block := response.read(_CHUNK):
                fh.write(block)
                have += len(block)
                if progress is not None:
                    progress(have, total)
    size = part.stat().st_size
    if total and size != total:
        raise UserError(f"download of {url} is incomplete ({size} of {total} bytes): run again to resume")
    digest = hashlib.sha256()
    with open(part, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    os.replace(part, dest)
    write_json(dest.with_name(dest.name + ".json"), {"url": url, "size": size, "sha256": digest.hexdigest()})
    return dest


def ensure_files(
    name: str, cache_dir: Path, *, base_url: str | None = None, progress: Callable[[str, int, int], None] | None = None
) -> LaserFiles:
    """The files of `name` in `cache_dir`, downloading whatever is missing or incomplete."""
    names = file_names(name)
    base = (base_url or LASER_BASE_URL).rstrip("/")
    for filename in names:
        target = cache_dir / filename
        if _complete(target):
            continue
        if os.environ.get("HBT_OFFLINE") == "1":
            raise OfflineError(f"LASER model {name}: {target} is not in the cache and HBT_OFFLINE=1")
        report = (lambda done, total, f=filename: progress(f, done, total)) if progress else None
        download(f"{base}/{filename}", target, progress=report)
    return LaserFiles(name, *(cache_dir / f for f in names))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A LASER BiLSTM checkpoint as a dict (tensors, ints, bools and strings only: `weights_only` loading)."""

    # (start-up: torch)
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # a fairseq checkpoint pickles its cfg objects
        raise UserError(
            f"{path} is not a LASER BiLSTM checkpoint (a fairseq transformer, like most LASER3 students, needs "
            "fairseq; hbt wraps only the BiLSTM encoders)"
        ) from exc
    except Exception as exc:
        raise UserError(f"cannot read LASER checkpoint {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(loaded, dict) or not {"params", "model", "dictionary"} <= loaded.keys():
        keys = ", ".join(sorted(map(str, loaded))) if isinstance(loaded, dict) else type(loaded).__name__
        raise UserError(f"{path} is not a LASER BiLSTM checkpoint (expected params, model, dictionary; has {keys})")
    return loaded


def checkpoint_dictionary(checkpoint: dict[str, Any]) -> dict[str, int]:
    """The checkpoint's piece -> id dictionary with LASER's fixed special ids."""
    dictionary = {str(k): int(v) for k, v in dict(checkpoint["dictionary"]).items()}
    dictionary.update(SPECIAL_IDS)
    return dictionary


def _non_printing(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "C"


class LaserTextTokenizer:
    """LASER's text pipeline (see the module docstring): text -> SentencePiece pieces."""

    def __init__(self, spm_model: str | Path, lang: str = "en") -> None:
        try:
            # (extra: laser)
            import sentencepiece as spm
            from sacremoses import MosesPunctNormalizer
        except ImportError as exc:
            raise UserError(f"LASER's tokenizer needs {exc.name}: {LASER_INSTALL_HINT}") from exc
        self.spm_model = Path(spm_model)
        self.lang = lang
        self._normalizer = MosesPunctNormalizer(lang, perl_parity=True)
        self._normalizer.substitutions[21] = ("‘", r'"')
        self._normalizer.substitutions[22] = ("‚", r'"')
        self._spm = spm.SentencePieceProcessor(model_file=str(self.spm_model))
        self._memo: dict[str, list[str]] = {}  # text -> pieces: training meets the same texts every epoch

    def normalise(self, text: str) -> str:
        """Non-printing characters to spaces, Moses punctuation normalisation, lower case."""
        text = "".join(" " if _non_printing(c) else c for c in text)
        normalised: str = self._normalizer.normalize(text)
        return normalised.lower()

    def pieces(self, text: str) -> list[str]:
        found = self._memo.get(text)
        if found is None:
            found = list(self._spm.encode(self.normalise(text), out_type=str))
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[text] = found
        return found

    def ids(self, text: str, dictionary: dict[str, int], unk: int = SPECIAL_IDS["<unk>"]) -> list[int]:
        """Dictionary ids of the pieces (without `</s>`)."""
        return [dictionary.get(piece, unk) for piece in " ".join(self.pieces(text)).split()]


__all__ = [
    "LASER_BASE_URL",
    "LaserFiles",
    "LaserTextTokenizer",
    "cached",
    "checkpoint_dictionary",
    "download",
    "ensure_files",
    "file_names",
    "load_checkpoint",
]
