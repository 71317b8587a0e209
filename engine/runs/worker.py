"""One grid cell as a (possibly distributed) worker process: `python -m hbt.engine.runs.worker --config C --out DIR`.

Started by `runs.launch` under torchrun / `accelerate launch` (every rank runs this; rank 0 alone writes).
Exit codes: 0 complete, 2 user error, 130 cancelled, 1 failed (the run dir says why).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..backbones.frozen_cache import share_through_disk
from ..common import faults
from ..common.errors import UserError
from ..common.events import EventBus
from ..common.hub import go_offline_if_unreachable
from ..common.interrupts import CancelFlag, Cancelled, sigint_cancels
from ..common.io import read_json
from ..common.run_config import RunConfig
from ..training import distributed
from .environment import quiet_third_party_output
from .rundir import RunDir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hbt.engine.runs.worker")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    # (start-up: faiss)
    from .run import execute

    go_offline_if_unreachable()
    quiet_third_party_output()
    share_through_disk(default=True)  # a cell in its own process: the frozen bottom shared through the cache folder
    bus = EventBus()
    faults.install(bus)
    try:
        with sigint_cancels(CancelFlag(), lambda m: None) as cancel:
            execute(RunConfig.from_dict(read_json(args.config)), args.out, bus, cancel=cancel, resume=args.resume)
    except UserError as exc:
        print(f"hbt: {exc}", file=sys.stderr)
        if distributed.is_main():  # (also when met while preparing, before execute() marked anything)
            RunDir(args.out).mark("failed", error=str(exc), user_error=True)
        return exc.exit_code
    except (Cancelled, KeyboardInterrupt):
        return 130
    except Exception:
        return 1  # execute() marked the run failed and wrote traceback.txt
    finally:
        distributed.abandon_group()  # (a no-op after a normal end: training already destroyed the group in order)
    return 0


if __name__ == "__main__":
    sys.exit(main())
