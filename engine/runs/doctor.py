"""`hbt-bench doctor`: one line per thing that must hold for hbt to run and to re-make its numbers.

Each check is ok, warn (hbt runs, but something differs from the tested setup or is missing for some uses) or
fail (a default run cannot work). The CLI prints them and exits 1 on a fail; the TUI shows the same list.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ... import engine
from ..backbones.bundled import BUNDLED_NAME, bundled_model_dir, converted_model_dir
from ..common.errors import UserError
from ..common.hub import PROBE_TIMEOUT_S, hub_reachable
from ..common.paths import cache_root
from ..data.registry import DATASETS
from . import stack

STATUSES = ("ok", "warn", "fail")
TESTED_PYTHON = (3, 11)
LOW_DISK_BYTES = 5 * 2**30
EXTRAS = {"laser": ("sacremoses", "sentencepiece"), "fast": ("onnx", "onnxruntime")}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


def _mb(nbytes: float) -> str:
    return f"{nbytes / 2**20:,.0f} MB" if nbytes < 2**30 else f"{nbytes / 2**30:,.1f} GB"


def check_python(info: tuple[int, ...] = tuple(sys.version_info[:3])) -> list[Check]:
    version = ".".join(map(str, info[:3]))
    if tuple(info[:2]) == TESTED_PYTHON:
        return [Check("python", "ok", f"{version} ({sys.executable})")]
    tested = ".".join(map(str, TESTED_PYTHON))
    return [Check("python", "warn", f"{version}: hbt's stack is tested on Python {tested} (requirements.lock)")]


def check_torch() -> list[Check]:
    # (start-up: torch)
    import torch

    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(count))
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else f"ROCm {torch.version.hip}"
        return [Check("torch", "ok", f"{torch.__version__}, {build} build, {count} GPU(s): {names}")]
    if torch.backends.mps.is_available():
        return [Check("torch", "ok", f"{torch.__version__}, Apple MPS available")]
    build = "CPU build" if not torch.version.cuda else f"CUDA {torch.version.cuda} build, no GPU visible"
    return [Check("torch", "ok", f"{torch.__version__}, {build}, {torch.get_num_threads()} threads")]


def check_packages(lock: Path | None = None, packages: dict[str, str] | None = None) -> list[Check]:
    """The lock's packages against this environment: one summary line, then one line per drifted package."""
    lock = lock if lock is not None else stack.lock_path()
    if lock is None:
        return [Check("packages", "warn", "no requirements.lock beside this install (a wheel?): drift not checked")]
    try:
        pins = stack.read_lock(lock)
    except (OSError, UnicodeDecodeError) as exc:
        return [Check("packages", "fail", f"cannot read {lock}: {exc}")]
    found = packages if packages is not None else stack.installed()
    drifted = stack.drift(pins, found)
    if not drifted:
        return [Check("packages", "ok", f"all {len(pins)} packages of {lock.name} installed at their locked versions")]
    head = Check(
        "packages", "warn", f"{len(drifted)} of {len(pins)} packages differ from {lock} (numbers may not re-make)"
    )
    return [head, *(Check("package", "warn", d.describe()) for d in drifted)]


def check_install() -> list[Check]:
    where = Path(engine.__file__).resolve().parent.parent
    try:
        version = metadata.version("hbt")
    except metadata.PackageNotFoundError:
        return [Check("hbt", "warn", f"imported from {where} but not installed (pip install -e .)")]
    return [Check("hbt", "ok", f"{version} from {where}")]


def check_bundled() -> list[Check]:
    try:
        converted = converted_model_dir()
    except UserError as exc:
        return [Check("bundled model", "warn", f"{BUNDLED_NAME} unavailable offline: {exc}")]
    if converted is None:
        target = bundled_model_dir()
        return [Check("bundled model", "ok", f"{BUNDLED_NAME}: not converted yet (first use writes {target})")]
    size = sum(p.stat().st_size for p in converted.rglob("*") if p.is_file())
    return [Check("bundled model", "ok", f"{BUNDLED_NAME}: converted at {converted} ({_mb(size)})")]


def check_data(data_dir: str | None) -> list[Check]:
    value = data_dir if data_dir else os.environ.get("HBT_DATA_DIR")
    if not value:
        return [Check("data", "warn", "no data folder (--data-dir or HBT_DATA_DIR): datasets are downloaded")]
    root = Path(value).expanduser()
    if not root.is_dir():
        return [Check("data", "fail", f"{root} does not exist or is not a folder")]
    found: list[str] = []
    missing: list[str] = []
    for name, spec in DATASETS.items():
        folder = root / name.removesuffix("-judged")
        if spec.parallel:
            langs = [lang for lang in spec.languages if (folder / f"{lang}.json").is_file()]
            (found if langs else missing).append(f"{name} ({' '.join(langs)})" if langs else name)
        elif name.endswith("-judged"):
            continue
        elif folder.is_dir() and any(folder.iterdir()):
            found.append(f"{name} (folder present)")
        else:
            missing.append(name)
    if not found:
        return [Check("data", "fail", f"{root}: no dataset found (expected e.g. xquad-r/<lang>.json)")]
    absent = f"; not there: {', '.join(missing)}" if missing else ""
    return [Check("data", "ok", f"{root}: {'; '.join(found)}{absent}")]


def check_cache() -> list[Check]:
    root = cache_root()
    probe_dir = root if root.exists() else next((p for p in root.parents if p.exists()), Path("/"))
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".doctor-"):
            pass
    except OSError as exc:
        return [Check("cache", "fail", f"{root} is not writable ({exc.strerror or exc}): set HBT_CACHE_DIR")]
    free = shutil.disk_usage(probe_dir).free
    if free < LOW_DISK_BYTES:
        return [Check("cache", "warn", f"{root}: writable, only {_mb(free)} free (models and corpus shards)")]
    return [Check("cache", "ok", f"{root}: writable, {_mb(free)} free")]


def check_hub(reachable: Callable[[], bool] = hub_reachable) -> list[Check]:
    if reachable():
        return [Check("hub", "ok", f"Hugging Face Hub answers within {PROBE_TIMEOUT_S:g} s")]
    return [
        Check(
            "hub",
            "warn",
            f"Hugging Face Hub unreachable within {PROBE_TIMEOUT_S:g} s (or HF_HUB_OFFLINE=1): offline, "
            "the bundled model and --data-dir still work",
        )
    ]


def check_extras() -> list[Check]:
    checks = []
    for extra, modules in EXTRAS.items():
        absent = [m for m in modules if importlib.util.find_spec(m) is None]
        if absent:
            detail = f"not installed ({', '.join(absent)} missing): pip install 'hbt[{extra}]'"
            checks.append(Check(f"extra {extra}", "warn", detail))
        else:
            checks.append(Check(f"extra {extra}", "ok", f"installed ({', '.join(modules)})"))
    return checks


def run_checks(data_dir: str | None = None) -> list[Check]:
    return [
        *check_python(),
        *check_torch(),
        *check_packages(),
        *check_install(),
        *check_bundled(),
        *check_data(data_dir),
        *check_cache(),
        *check_hub(),
        *check_extras(),
    ]


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == "fail" for c in checks) else 0
