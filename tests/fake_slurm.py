"""A fake Slurm for the executor tests: `sbatch`, `srun`, `squeue`, `sacct`, `scancel` and `scontrol` that record their
arguments and answer like Slurm, running the submitted batch scripts on this machine.

`install(bin_dir, state_dir)` writes one small script per command into `bin_dir` (put it first on PATH, with
FAKE_SLURM_DIR=state_dir). Each job (or array task) has a folder `state_dir/jobs/<id>` holding its `state` (PENDING,
RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, REQUEUED), `node`, and `step.pid` (the process `srun` started, which
is what `scancel --signal` signals). With FAKE_SLURM_HOLD=1 jobs wait PENDING until `state_dir/release` exists.
Every call is appended to `state_dir/calls.jsonl`; each batch script is kept as `state_dir/scripts/<id>.sh`.
`python fake_slurm.py _timeout <job>` ends a running job as Slurm does at its time limit (killed, TIMEOUT);
`_preempt <job>` preempts it as Slurm does with preempt_send_user_signal (SIGTERM, then USR2, to the job step).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ("sbatch", "srun", "squeue", "sacct", "scancel", "scontrol")
NODES = ("fake-node1", "fake-node2")


def install(bin_dir: Path, state_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" {name} "$@"\n')
        script.chmod(0o755)


def state_dir() -> Path:
    return Path(os.environ["FAKE_SLURM_DIR"])


def job_dir(key: str) -> Path:
    return state_dir() / "jobs" / key


def read(key: str, name: str, default: str = "") -> str:
    try:
        return (job_dir(key) / name).read_text().strip()
    except OSError:
        return default


def write(key: str, name: str, value: str) -> None:
    folder = job_dir(key)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.tmp"
    tmp.write_text(value)
    os.replace(tmp, folder / name)


def record(command: str, args: list[str]) -> None:
    with open(state_dir() / "calls.jsonl", "a") as fh:
        fh.write(json.dumps({"command": command, "args": args, "t": time.time()}) + "\n")


def keys_for(job_id: str) -> list[str]:
    """The job keys an id names: '12_3' itself, '12' every task of array 12 (or job 12)."""
    jobs = state_dir() / "jobs"
    if not jobs.is_dir():
        return []
    return sorted(p.name for p in jobs.iterdir() if p.name == job_id or p.name.split("_")[0] == job_id)


# ---- the commands ----------------------------------------------------------------------------------------------


def sbatch(args: list[str]) -> int:
    record("sbatch", args)
    script = Path(args[-1])
    text = script.read_text()
    counter = state_dir() / "counter"
    job_id = int(counter.read_text()) + 1 if counter.exists() else 1000
    counter.write_text(str(job_id))
    (state_dir() / "scripts").mkdir(exist_ok=True)
    (state_dir() / "scripts" / f"{job_id}.sh").write_text(text)
    match = re.search(r"^#SBATCH --array=(\d+)-(\d+)", text, flags=re.M)
    tasks = [f"{job_id}_{t}" for t in range(int(match[1]), int(match[2]) + 1)] if match else [str(job_id)]
    for i, key in enumerate(tasks):
        write(key, "state", "PENDING")
        write(key, "node", NODES[i % len(NODES)])
        subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "_run", key, str(script.resolve())],
            start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    print(f"Submitted batch job {job_id}")
    return 0


def run_job(key: str, script: str) -> int:
    """The job's life: wait while held, run the batch script, rerun it after `scontrol requeue`."""
    while True:
        while read(key, "state") in ("PENDING", "REQUEUED") and (
            os.environ.get("FAKE_SLURM_HOLD") and not (state_dir() / "release").exists()
        ):
            time.sleep(0.2)
        if read(key, "state") not in ("PENDING", "REQUEUED"):
            return 0  # cancelled while queued
        write(key, "state", "RUNNING")
        main, _, task = key.partition("_")
        job_id = str(int(main) * 100 + int(task)) if task else main  # (an array task has a job id of its own)
        env = {**os.environ, "SLURM_JOB_ID": job_id, "SLURM_NTASKS": "1",
               "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_JOB_NUM_NODES": "1",
               "SLURM_JOB_NODELIST": read(key, "node"), "FAKE_SLURM_KEY": key}  # fmt: skip
        if task:
            env.update(SLURM_ARRAY_JOB_ID=main, SLURM_ARRAY_TASK_ID=task)
        with open(job_dir(key) / "log", "ab") as log:
            proc = subprocess.Popen(["bash", script], env=env, stdout=log, stderr=log, start_new_session=True)
            write(key, "batch.pid", str(proc.pid))
            code = proc.wait()
        if (job_dir(key) / "requeue").exists():
            (job_dir(key) / "requeue").unlink()
            write(key, "state", "PENDING")
            continue
        if read(key, "state") == "RUNNING":
            write(key, "state", "COMPLETED" if code == 0 else "FAILED")
        return 0


def srun(args: list[str]) -> int:
    """Drop srun's own options, record this step's pid, become the command."""
    record("srun", args)
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in ("--output", "--error", "-o", "-e") and rest:
            rest.pop(0)
    key = os.environ.get("FAKE_SLURM_KEY", "")
    if key:
        write(key, "step.pid", str(os.getpid()))
    os.execvp(rest[0], rest)
    return 1


def sacct(args: list[str]) -> int:
    record("sacct", args)
    ids = [args[i + 1] for i, a in enumerate(args) if a == "-j" and i + 1 < len(args)]
    print("JobID|State|NodeList")
    for job_id in ids:
        for key in keys_for(job_id):
            state = read(key, "state", "PENDING")
            node = read(key, "node") if (job_dir(key) / "batch.pid").exists() else "None assigned"  # (once it ran)
            print(f"{key}|{state}|{node}")
            if (job_dir(key) / "batch.pid").exists():
                print(f"{key}.batch|{state}|{node}")
    return 0


def squeue(args: list[str]) -> int:
    record("squeue", args)
    ids = next((a.split("=", 1)[1] for a in args if a.startswith("--jobs=")), None)
    if ids is None and "--jobs" in args:
        ids = args[args.index("--jobs") + 1]
    for job_id in (ids or "").split(","):
        for key in keys_for(job_id):
            state = read(key, "state")
            if state in ("PENDING", "REQUEUED"):
                print(f"{key}|Resources")
            elif state == "RUNNING":
                print(f"{key}|None")
    return 0


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants (the job's processes, as Slurm's cgroup holds them), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def signal_job(key: str, sig: signal.Signals, whole_job: bool = False) -> None:
    """Signal the job step's processes (the step srun started and its descendants), or every process of the job."""
    pid = read(key, "batch.pid" if whole_job else "step.pid")
    if not pid:
        return
    for target in _tree(int(pid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, sig)


def scancel(args: list[str]) -> int:
    record("scancel", args)
    sig = next((a.split("=", 1)[1] for a in args if a.startswith("--signal=")), None)
    for job_id in [a for a in args if not a.startswith("-")]:
        for key in keys_for(job_id):
            state = read(key, "state")
            if sig is not None:  # every process of the job step, as slurmstepd signals its container
                if state == "RUNNING":
                    signal_job(key, signal.Signals[sig if sig.startswith("SIG") else f"SIG{sig}"])
            elif state in ("PENDING", "REQUEUED"):
                write(key, "state", "CANCELLED")
            elif state == "RUNNING":
                write(key, "state", "CANCELLED by 0")
                signal_job(key, signal.SIGTERM, whole_job=True)
                time.sleep(1.0)
                signal_job(key, signal.SIGKILL, whole_job=True)
    return 0


def scontrol(args: list[str]) -> int:
    record("scontrol", args)
    if args[:1] == ["requeue"]:
        for job_id in args[1:]:
            for key in keys_for(job_id):
                (job_dir(key) / "requeue").write_text("")
                write(key, "state", "REQUEUED")
    return 0


def timeout(key: str) -> int:
    """The time limit passed: Slurm kills the job (its signal came too late, or was not acted on)."""
    write(key, "state", "TIMEOUT")
    signal_job(key, signal.SIGKILL, whole_job=True)
    return 0


def preempt(key: str) -> int:
    """Slurm preempting a job with preempt_send_user_signal: SIGTERM, then the --signal (USR2) to the job step."""
    signal_job(key, signal.SIGTERM)
    signal_job(key, signal.SIGUSR2)
    return 0


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    handlers = {"sbatch": sbatch, "srun": srun, "squeue": squeue, "sacct": sacct, "scancel": scancel,
                "scontrol": scontrol}  # fmt: skip
    if command == "_run":
        return run_job(args[0], args[1])
    if command == "_timeout":
        return timeout(args[0])
    if command == "_preempt":
        return preempt(args[0])
    return handlers[command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
