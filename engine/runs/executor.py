"""Where a grid's cells run (`--executor`, a preset's `[executor]` table; flags win), checked before anything starts.

local      every cell in the submitting process, one after another (the default; `--launcher` spreads one cell)
processes  N cells at once as worker processes on this machine (`--workers N`, torch threads split between them)
slurm      one Slurm job per cell (one job array per submission) through submitit; `--slurm-backend local` runs the
           same job machinery through submitit's LocalExecutor on this machine
ray        one Ray task per cell (`--ray-address`, CPUs/GPUs per cell); without an address a local Ray instance
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..common.errors import ConfigError, UserError
from ..common.vocabulary import EXECUTORS, SLURM_BACKENDS, bad_value, check_choice, check_positive

# the optional dependency of each executor: (import name, the extra that installs it)
EXTRAS = {"slurm": ("submitit", "slurm"), "ray": ("ray", "ray")}
RAY_CONNECT_TIMEOUT_S = 30.0  # a Ray address where no cluster answers within this is reported, not waited on
# joins the cluster in a child process (its retries and C++ log lines stay there; a hang is killed at the timeout)
_RAY_PROBE = (
    "import sys, ray\n"
    "ray.init(address=sys.argv[1], logging_level='error', log_to_driver=False, namespace='hbt')\n"
    "ray.shutdown()\n"
    "print('ray-ok')\n"
)


@dataclass(frozen=True)
class SlurmSettings:
    """One Slurm job per cell: what every job asks for (`[executor.slurm]`, `--slurm-*`)."""

    backend: str = "slurm"  # slurm | local (submitit's LocalExecutor)
    partition: str | None = None
    time_min: int = 60  # time limit per job, minutes (near it Slurm signals the job: checkpoint and requeue)
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    gpus: int = 0  # GPUs per cell; more than one runs the cell's training under torchrun inside its job
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch: list[str] = field(default_factory=list)  # extra sbatch options, e.g. "--exclusive", "--mail-type=END"
    setup: list[str] = field(default_factory=list)  # shell lines run before the job (module load, venv activate)
    array: bool = True  # the cells of one submission as one job array (else one job each)
    max_requeue: int = 3  # time-outs after which a job is not requeued again (preemptions always are)


@dataclass(frozen=True)
class RaySettings:
    """One Ray task per cell (`[executor.ray]`, `--ray-*`)."""

    address: str | None = None  # host:port of a running cluster's head (ray start --head); None: a local instance
    num_cpus: float = 1.0
    num_gpus: float = 0.0


@dataclass(frozen=True)
class ExecutorSpec:
    kind: str = "local"
    workers: int = 2  # processes: cells at once
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
    ray: RaySettings = field(default_factory=RaySettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def remote(self) -> bool:
        """Cells run outside the submitting process (followed through their folders)."""
        return self.kind != "local"

    def describe(self) -> str:
        """One line: 'slurm (partition gpu, 1 GPU, 240 min per cell)', 'processes (2 workers)'."""
        if self.kind == "processes":
            return f"processes ({self.workers} workers)"
        if self.kind == "slurm":
            s = self.slurm
            parts = [f"partition {s.partition}" if s.partition else "", f"{s.gpus} GPU" if s.gpus else "",
                     f"{s.time_min} min per cell"]  # fmt: skip
            backend = " through submitit's local executor" if s.backend == "local" else ""
            return f"slurm{backend} ({', '.join(p for p in parts if p)})"
        if self.kind == "ray":
            at = self.ray.address or "a local Ray instance"
            return f"ray ({at}, {self.ray.num_cpus:g} CPU / {self.ray.num_gpus:g} GPU per cell)"
        return "local (this process)"


def _accepted(tp: Any) -> tuple[type, ...]:
    """The runtime types a field annotation accepts (`int | None` -> (int, NoneType); a float also takes an int)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(tp) for t in _accepted(arg))
    if origin is not None:
        return (origin,)
    return (float, int) if tp is float else (tp,)


def _section(cls: type, section: str, table: dict[str, Any], source: str) -> dict[str, Any]:
    """The keys of one table, each checked against its dataclass field's type (one line naming the key)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in hints or key in ("slurm", "ray"):
            allowed = ", ".join(sorted(k for k in hints if k not in ("slurm", "ray")))
            raise ConfigError(f"{source}: unknown key [{section}] {key!r} (allowed: {allowed})", key=key)
        kinds = _accepted(hints[key])
        wrong = (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds)
        if wrong or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            names = " or ".join(sorted({k.__name__ for k in kinds if k is not type(None)}))
            raise ConfigError(f"{source}: [{section}] {key}: expected {names}, got {value!r}", key=key)
        out[key] = value
    return out


def parse_executor(table: dict[str, Any], source: str) -> ExecutorSpec:
    """A preset's `[executor]` table (with its `[executor.slurm]` / `[executor.ray]` sub-tables)."""
    head = {k: v for k, v in table.items() if k not in ("slurm", "ray")}
    for name in ("slurm", "ray"):
        if name in table and not isinstance(table[name], dict):
            raise ConfigError(f"{source}: executor.{name} should be an [executor.{name}] table", key=name)
    values = _section(ExecutorSpec, "executor", head, source)
    spec = ExecutorSpec(
        **values,
        slurm=SlurmSettings(**_section(SlurmSettings, "executor.slurm", table.get("slurm", {}), source)),
        ray=RaySettings(**_section(RaySettings, "executor.ray", table.get("ray", {}), source)),
    )
    try:
        return validate(spec)
    except ConfigError as exc:
        raise ConfigError(f"{source}: [executor] {exc}", key=exc.key, detail=exc.detail) from None


def spec_from_dict(data: Any) -> ExecutorSpec:
    """The executor a grid.json recorded (an older grid without one ran locally)."""
    if not isinstance(data, dict):
        return ExecutorSpec()
    names = {f.name for f in fields(ExecutorSpec)}
    slurm_names = {f.name for f in fields(SlurmSettings)}
    ray_names = {f.name for f in fields(RaySettings)}
    return ExecutorSpec(
        **{k: v for k, v in data.items() if k in names - {"slurm", "ray"}},
        slurm=SlurmSettings(**{k: v for k, v in (data.get("slurm") or {}).items() if k in slurm_names}),
        ray=RaySettings(**{k: v for k, v in (data.get("ray") or {}).items() if k in ray_names}),
    )


def with_flags(spec: ExecutorSpec, **flags: Any) -> ExecutorSpec:
    """Flags win over the preset: `executor`, `workers`, `slurm_<setting>`, `ray_<setting>` (None: not given)."""
    given = {k: v for k, v in flags.items() if v is not None and v != []}
    slurm = {k.removeprefix("slurm_"): v for k, v in given.items() if k.startswith("slurm_")}
    ray = {k.removeprefix("ray_"): v for k, v in given.items() if k.startswith("ray_")}
    spec = replace(spec, slurm=replace(spec.slurm, **slurm), ray=replace(spec.ray, **ray))
    if "executor" in given:
        spec = replace(spec, kind=given["executor"])
    if "workers" in given:
        spec = replace(spec, workers=given["workers"])
    return validate(spec)


def validate(spec: ExecutorSpec) -> ExecutorSpec:
    check_choice("executor", "executor", spec.kind, EXECUTORS)
    check_choice("slurm_backend", "slurm backend", spec.slurm.backend, SLURM_BACKENDS)
    for key, value in (("workers", spec.workers), ("time_min", spec.slurm.time_min), ("mem_gb", spec.slurm.mem_gb),
                       ("cpus_per_task", spec.slurm.cpus_per_task), ("num_cpus", spec.ray.num_cpus)):  # fmt: skip
        check_positive(key, value)
    for key, value in (("gpus", spec.slurm.gpus), ("max_requeue", spec.slurm.max_requeue),
                       ("num_gpus", spec.ray.num_gpus)):  # fmt: skip
        if not value >= 0:
            raise bad_value(key, f"must be 0 or more, got {value}")
    for line in spec.slurm.sbatch:
        if not line.startswith("--") or "\n" in line:
            raise bad_value("sbatch", f"expects sbatch options such as --exclusive or --mail-type=END, got {line!r}")
    if spec.ray.address is not None and not _split_address(spec.ray.address):
        raise bad_value("address", f"expects host:port of the Ray head (ray start --head), got {spec.ray.address!r}")
    return spec


def _split_address(address: str) -> tuple[str, int] | None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return (host, int(port)) if host and port.isdigit() and 0 < int(port) < 65536 else None


def check_installed(spec: ExecutorSpec) -> None:
    """What the executor needs on this machine, at no cost (the TUI checks it as the form changes): its extra
    installed (one line naming it), `sbatch`/`srun` on PATH for Slurm."""
    if spec.kind in EXTRAS:
        module, extra = EXTRAS[spec.kind]
        if importlib.util.find_spec(module) is None:
            raise UserError(
                f"--executor {spec.kind} needs {module}, which is not installed: pip install 'hbt[{extra}]'",
                key="executor",
            )
    if spec.kind == "slurm" and spec.slurm.backend == "slurm":
        missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
        if missing:
            raise UserError(
                f"--executor slurm: no `{missing[0]}` on PATH (run on a Slurm login node, or pass "
                "--slurm-backend local to run the same jobs on this machine)",
                key="slurm_backend",
            )


def check_available(spec: ExecutorSpec, connect_timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """`check_installed`, and a Ray address that answers within `connect_timeout_s`: met before anything is
    created."""
    check_installed(spec)
    if spec.kind == "ray" and spec.ray.address:
        probe_ray(spec.ray.address, connect_timeout_s)


def probe_ray(address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """A Ray cluster answers at `address` within `timeout_s` (a port that refuses is told at once; a server that is
    not a Ray head, or a head that does not accept this client, within the timeout), else one UserError line."""
    host, port = _split_address(address) or ("", 0)
    hint = "start it with `ray start --head` or fix --ray-address"
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise UserError(f"Ray at {address} does not answer ({why}; waited up to {timeout_s:g} s): {hint}") from None
    try:
        result = subprocess.run(
            [sys.executable, "-c", _RAY_PROBE, address], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"Ray at {address} does not answer (no Ray cluster joined within {timeout_s:g} s): {hint}"
        ) from None
    if "ray-ok" not in result.stdout:
        errors = [line for line in result.stderr.splitlines() if "Error" in line.split(":", 1)[0]]
        why = " ".join((errors[-1] if errors else "no Ray cluster there").split())[:240]
        if "InvalidAuthToken" in result.stderr:
            why = "it uses token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH to its token"
        raise UserError(f"Ray at {address} does not answer ({why}; waited up to {timeout_s:g} s): {hint}")
