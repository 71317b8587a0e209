"""Fault injection for crash-recovery tests: with HBT_FAULT_KILL_AT set, the process SIGKILLs itself at an event.

Forms: `[SIGNAL@]stage:NAME[#N]` (the N-th stage event NAME, e.g. `stage:write#2`) and `[SIGNAL@]train_step:S[#N]`
(training step S, N-th time). SIGNAL defaults to SIGKILL; `SIGINT@train_step:2` presses Ctrl-C there.
Unset, nothing is installed. Never set it outside tests.
"""

from __future__ import annotations

import os
import signal

from .events import Event, EventBus, Stage, TrainStep

ENV = "HBT_FAULT_KILL_AT"


class KillAt:
    def __init__(self, spec: str) -> None:
        sig, _, rest = spec.rpartition("@")
        self.signal = signal.Signals[sig] if sig else signal.SIGKILL
        target, _, nth = rest.partition("#")
        self.kind, _, self.name = target.partition(":")
        self.nth = int(nth or 1)
        self.seen = 0

    def __call__(self, event: Event) -> None:
        stage = isinstance(event, Stage) and self.kind == "stage" and event.name == self.name
        step = isinstance(event, TrainStep) and self.kind == "train_step" and str(event.step) == self.name
        if not (stage or step):
            return
        self.seen += 1
        if self.seen == self.nth:
            os.kill(os.getpid(), self.signal)


def install(bus: EventBus) -> None:
    spec = os.environ.get(ENV)
    if spec:
        bus.subscribe(KillAt(spec))
