"""The software stack a run used, named so that its numbers can be made again and compared with others.

`requirements.lock` (repository root) pins the tested environment; `describe()` records, in every results.json,
the lock's sha256, every installed distribution's version, a sha256 over those versions (two runs with the same
`packages_sha256` ran on the same stack) and the drift of this environment from the lock. hbt itself is left out of
the packages (its version does not move with its code).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

LOCK_NAME = "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)==([^\s;#]+)")


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (`Sentence_Transformers` == `sentence-transformers`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path() -> Path | None:
    """The lock beside an editable or source install (the repository root), else None (installed from a wheel)."""
    path = Path(__file__).resolve().parents[2] / LOCK_NAME
    return path if path.is_file() else None


def read_lock(path: Path) -> dict[str, str]:
    """{normalized name: version} of every `name==version` line."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[normalize(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    """{normalized name: version} of every distribution in this environment but hbt itself."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and normalize(name) != "hbt":
            out[normalize(name)] = dist.version
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Drift:
    name: str
    locked: str | None  # None: installed but not in the lock
    found: str | None  # None: in the lock but not installed

    def describe(self) -> str:
        if self.found is None:
            return f"{self.name} {self.locked} in the lock is not installed"
        if self.locked is None:
            return f"{self.name} {self.found} is installed but not in the lock"
        return f"{self.name} {self.found} installed, lock has {self.locked}"


def drift(lock: dict[str, str], packages: dict[str, str]) -> list[Drift]:
    """Packages of the lock missing or at another version here (extra packages beyond the lock are not drift:
    tools a user added do not change hbt's numbers)."""
    return [Drift(name, version, packages.get(name)) for name, version in lock.items() if packages.get(name) != version]


def packages_sha256(packages: dict[str, str]) -> str:
    text = "\n".join(f"{name}=={version}" for name, version in sorted(packages.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def describe() -> dict[str, Any]:
    """What results.json records under environment.stack."""
    packages = installed()
    path = lock_path()
    lock = read_lock(path) if path else None
    return {
        "lock_sha256": hashlib.sha256(path.read_bytes()).hexdigest() if path else None,
        "packages_sha256": packages_sha256(packages),
        "drift": {d.name: [d.locked, d.found] for d in drift(lock, packages)} if lock is not None else None,
        "packages": packages,
    }


def differences(a: dict[str, str], b: dict[str, str]) -> list[str]:
    """`name x -> y` for every package whose version differs between two recorded stacks (added / removed too)."""
    return [
        f"{name} {a.get(name, '-')} -> {b.get(name, '-')}"
        for name in sorted(a.keys() | b.keys())
        if a.get(name) != b.get(name)
    ]


def recorded(doc: Any) -> dict[str, Any] | None:
    """environment.stack of a results document (None for results made before hbt recorded it)."""
    env = doc.get("environment") if isinstance(doc, dict) else None
    value = env.get("stack") if isinstance(env, dict) else None
    return value if isinstance(value, dict) and isinstance(value.get("packages"), dict) else None


def summary(stack: dict[str, Any]) -> dict[str, Any]:
    """What grid.json keeps of the stack it was created with."""
    return {k: stack.get(k) for k in ("lock_sha256", "packages_sha256", "packages")}


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a.get("packages_sha256")) and a.get("packages_sha256") == b.get("packages_sha256")


def change_line(before: dict[str, Any], after: dict[str, Any], limit: int = 4) -> str:
    """`transformers 5.24.0 -> 5.25.0, ... (+N more)` between two recorded stacks."""
    diffs = differences(before.get("packages") or {}, after.get("packages") or {})
    more = f" (+{len(diffs) - limit} more)" if len(diffs) > limit else ""
    return ", ".join(diffs[:limit]) + more if diffs else "same package versions, another lock"
