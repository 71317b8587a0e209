"""Progress without a terminal (CI logs, nohup, a pipe): plain stage lines and periodic N/M, rate, ETA lines."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from hbt.engine.cli.plain import PlainListener, eta, listener_for
from hbt.engine.common.events import Log, Progress, Stage, TrainStep
from rich.console import Console

LINE = re.compile(r"^\d\d:\d\d:\d\d ")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _step(step: int, total: int, loss: float) -> TrainStep:
    return TrainStep(step=step, total_steps=total, epoch=0.0, loss=loss, lr=1e-5, batches={}, samples_per_s=0.0,
                     strategy="xx", cell="m__xx__s0")  # fmt: skip


def test_periodic_lines_with_rate_and_eta() -> None:
    out, clock = io.StringIO(), Clock()
    listener = PlainListener(out, interval=10, clock=clock)
    listener(Stage(name="encode", detail="xquad-r: 10 queries"))
    listener(Progress(task="encode passages", done=0, total=1000))
    for done in range(100, 1001, 100):  # 100 items every 2 s: a line at most every 10 s, and the last one
        clock.now += 2
        listener(Progress(task="encode passages", done=done, total=1000))
    lines = out.getvalue().splitlines()
    assert all(LINE.match(line) for line in lines)
    body = [line[9:] for line in lines]
    assert body[0] == "encode xquad-r: 10 queries"
    assert body[1:] == [
        "encode passages 500/1000 (50%), 50.00 items/s, ETA 0:00:10",
        "encode passages 1000/1000 (100%), 50.00 items/s, took 0:00:20",
    ]


def test_training_lines_and_restarted_tasks() -> None:
    out, clock = io.StringIO(), Clock()
    listener = PlainListener(out, interval=0, clock=clock)
    for step in (1, 2, 3, 4):
        clock.now += 0.5
        listener(_step(step, 4, 2.0 - step / 10))
    listener(Log(level="warning", message="loss went up", cell="m__xx__s0"))
    listener(Progress(task="search", done=0, total=2))
    clock.now += 1
    listener(Progress(task="search", done=2, total=2))
    listener(Progress(task="search", done=0, total=3))  # the same task name again (next dataset): starts over
    clock.now += 3
    listener(Progress(task="search", done=3, total=3))
    body = [line[9:] for line in out.getvalue().splitlines()]
    assert body == [
        "[m__xx__s0] train xx 2/4 (50%), 2.00 steps/s, ETA 0:00:01, loss 1.8000",
        "[m__xx__s0] train xx 3/4 (75%), 2.00 steps/s, ETA 0:00:00, loss 1.7000",
        "[m__xx__s0] train xx 4/4 (100%), 2.00 steps/s, took 0:00:02, loss 1.6000",
        "[m__xx__s0] warning: loss went up",
        "search 2/2 (100%), 2.00 items/s, took 0:00:01",
        "search 3/3 (100%), 1.00 items/s, took 0:00:03",
    ]
    assert eta(3725.4) == "1:02:05"


def test_listener_for_picks_plain_lines_without_a_terminal() -> None:
    piped = Console(file=io.StringIO(), force_terminal=False)
    assert isinstance(listener_for(piped), PlainListener)
    assert not isinstance(listener_for(Console(file=io.StringIO(), force_terminal=True)), PlainListener)


def test_cli_through_a_pipe_prints_plain_progress(tmp_path: Path, data_dir: Path) -> None:
    """`hbt-bench train` with stdout a pipe: stage lines and N/M lines, no bars or Rich file:line decorations."""
    proc = subprocess.run(
        [sys.executable, "-m", "hbt.engine.cli", "train", "--backbone", "tiny-random", "--strategy", "xx",
         "--data-dir", str(data_dir), "--train-langs", "de,en", "--langs", "de,en", "--max-queries", "5",
         "--max-train-pairs", "30", "--steps", "3", "--batch-size", "4", "--out", str(tmp_path / "t")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "HBT_OFFLINE": "1", "HBT_PROGRESS_INTERVAL": "0"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.split("xquad-r: mAP")[0]  # progress, before the results tables
    lines = head.splitlines()[:-1]  # the last holds the centred table title's indent
    progress = [line for line in lines if LINE.match(line)]
    assert any(line[9:].startswith("train xx ") for line in progress)
    assert any(re.search(r"train xx 3/3 \(100%\), [\d.]+ steps/s, took", line) for line in progress)
    assert any(line[9:].startswith("encode ") for line in progress)
    assert lines and all(LINE.match(line) for line in lines)  # every progress line is a plain stamped line
    assert not re.search(r"\w+\.py:\d+", head)  # no Rich log_path decorations
    assert "━" not in head and "\r" not in proc.stdout and "\x1b[" not in proc.stdout
