"""The submitting process of a grid started by the TUI: `python -m hbt.engine.runs.submit --out DIR [--resume]`, with
the preset as JSON on stdin (`presets.preset_to_dict`).

It runs the grid exactly as `hbt-bench run` does (`grid.run_grid`: the cells in this process for `local`, as jobs
otherwise) and prints nothing but a failure's one line on stderr: progress is in the grid folder, where the TUI (or
`hbt-bench status`) follows it, so the TUI can quit or detach and the grid goes on. SIGINT (the TUI's stop key,
`hbt-bench cancel`) stops it like Ctrl-C stops `hbt-bench run`. Exit codes: 0 every cell complete, 1 a cell failed,
2 a user error, 130 cancelled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from ..common import faults
from ..common.errors import UserError
from ..common.events import EventBus
from ..common.hub import go_offline_if_unreachable
from ..common.interrupts import CancelFlag, sigint_cancels
from ..common.text import safe
from .environment import quiet_third_party_output
from .presets import preset_from_dict


def _say(line: str) -> None:
    with contextlib.suppress(OSError):  # (a broken pipe: the TUI that read it has quit; the grid folder says it all)
        print(line, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hbt.engine.runs.submit")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--keep-executor", action="store_true", help="resume with the grid's recorded executor")
    args = parser.parse_args(argv)
    try:
        preset = preset_from_dict(json.loads(sys.stdin.read()))
        go_offline_if_unreachable()
        quiet_third_party_output()
        # (start-up: sentence_transformers, transformers, datasets)
        from .grid import run_grid

        bus = EventBus()  # no display: every cell's events are in its events.jsonl
        faults.install(bus)
        executor = None if args.keep_executor else preset.executor
        with sigint_cancels(CancelFlag(), lambda m: None) as cancel:
            summary = run_grid(preset, args.out, bus, resume=args.resume, cancel=cancel, executor=executor)
    except UserError as exc:
        _say(f"hbt: {safe(exc)}")
        return exc.exit_code
    except (KeyboardInterrupt, json.JSONDecodeError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            _say(f"hbt: the preset on stdin is not JSON ({exc})")
            return 2
        return 130
    except Exception as exc:  # a bug: one line, the traceback kept in the grid folder when there is one
        where = args.out / "submit-traceback.txt" if (args.out / "grid.json").exists() else None
        if where is not None:
            where.write_text(traceback.format_exc(), encoding="utf-8")
        _say(f"hbt: internal error ({type(exc).__name__}: {safe(exc)})" + (f"; traceback: {where}" if where else ""))
        return 1
    if summary["cancelled"]:
        return 130
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
