"""`hbt-bench`: the headless front-end. User mistakes print one line `hbt: ...` and exit 2."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..backbones import list_backbones
from ..common import faults
from ..common.errors import ConfigError, UserError
from ..common.events import EventBus
from ..common.hub import go_offline_if_unreachable
from ..common.interrupts import CancelFlag, Cancelled, sigint_cancels
from ..common.io import ensure_dir, write_text
from ..common.paths import cache_root
from ..common.run_config import RunConfig
from ..common.setting import split_names
from ..common.text import safe, safe_text
from ..common.vocabulary import EXECUTORS, EXPORT_FORMATS, PLOT_KINDS, SLURM_BACKENDS
from ..data.registry import DATASETS
from ..evaluation.metrics import METRIC_HELP
from ..evaluation.results import HEADLINE_FIELD, SETTINGS
from ..report.provenance import warnings_for
from ..report.source import load_source, require_results
from ..runs.control import cancel_grid, grid_status, wait_until_settled
from ..runs.doctor import exit_code, run_checks
from ..runs.environment import quiet_third_party_output
from ..runs.executor import with_flags
from ..runs.grid_doc import cell_states
from ..runs.launch import LAUNCHERS, Launch, LaunchedRunner, wait_for_grid
from ..runs.presets import apply_overrides, list_presets, load_preset
from ..runs.rundir import default_out
from ..runs.store import ResultsStore
from .corpus import add_parser, cmd_encode_corpus
from .flags import add_setting_flags, given_settings
from .grid_status import print_status, status_json
from .plain import listener_for


def _csv(value: str) -> list[str]:
    try:
        return split_names(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ints(value: str) -> list[int]:
    try:
        return [int(v) for v in _csv(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def _margin(value: str) -> float:
    try:
        margin = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not 0 <= margin < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return margin


MARGIN_HELP = "the claims' non-inferiority margin in mAP (default: the grid's preset, else 0.01)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse's own convention too)
        raise ConfigError(f"{self.prog}: {message}")


def _out_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="run directory (default: runs/<time>-<kind>)")
    p.add_argument("--json", action="store_true", help="print the results document as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hbt-bench", description="Multilingual dense retrieval: batch strategies, zero-shot eval")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("eval", help="evaluate a backbone zero-shot (mono / cross / multilingual)")
    add_setting_flags(p, "eval")  # RunConfig's settings, from their declarations
    _out_flags(p)

    p = sub.add_parser("train", help="fine-tune with a batch strategy, then evaluate zero-shot")
    add_setting_flags(p, "train")
    _out_flags(p)

    p = sub.add_parser("run", help="run a preset's grid: backbones x strategies x seeds (+ zero-shot baselines)")
    p.add_argument("preset", help="preset name (see `hbt-bench list presets`) or path to a .toml file")
    p.add_argument("--out", type=Path, help="grid directory (default: runs/<time>-<preset>)")
    p.add_argument("--resume", type=Path, help="resume this grid directory: skip complete cells")
    p.add_argument("--seeds", type=_ints, help="the grid's seeds (default: the preset's)")
    p.add_argument("--backbones", type=_csv, help="the grid's backbones (default: the preset's)")
    p.add_argument("--strategies", type=_csv, help="the grid's strategies (default: the preset's)")
    p.add_argument("--margin", type=_margin, help=MARGIN_HELP)  # fmt: skip
    add_setting_flags(p, "run")  # any [run] key of the preset, from RunConfig's declarations
    p.add_argument("--launcher", choices=list(LAUNCHERS), default="none",
                   help="run each cell's training on several processes/GPUs/machines (DDP)")  # fmt: skip
    p.add_argument("--nproc", type=int, default=1, help="processes per node (one per GPU)")
    p.add_argument("--nnodes", type=int, default=1)
    p.add_argument("--node-rank", type=int, default=0)
    p.add_argument("--master-addr", default="127.0.0.1")
    p.add_argument("--master-port", type=int, default=29500)
    p.add_argument("--allow-stack-change", action="store_true",
                   help="--resume a grid made with other package versions (recorded in grid.json)")  # fmt: skip
    _executor_flags(p)
    for name, text in (("status", "every cell of a grid: queued / running / complete / failed / cancelled, job, node"),
                       ("cancel", "cancel a grid's jobs (its submitting process, scancel, Ray cancel)")):  # fmt: skip
        p = sub.add_parser(name, help=text)
        p.add_argument("grid", type=Path, help="grid directory")
        if name == "status":
            p.add_argument("--json", action="store_true", help="print the cells as JSON")
            p.add_argument("--no-scheduler", action="store_true", help="the folders only: do not ask the schedulers")
        else:
            p.add_argument("--wait", type=float, default=300.0, metavar="S", help="wait up to S s for the jobs to end")

    p = sub.add_parser("list", help="list datasets, metrics, backbones, presets or runs")
    p.add_argument("what", choices=["datasets", "metrics", "backbones", "presets", "runs"])
    p.add_argument("--root", type=Path, default=Path("runs"), help="runs root for `list runs`")

    for name, text in (("show", "print a run's or grid's tables"), ("plot", "write PNG plots")):
        p = sub.add_parser(name, help=text)
        p.add_argument("path", type=Path)
        if name == "plot":
            p.add_argument("--out", type=Path, help="folder for the PNGs (default: PATH/plots)")
            p.add_argument("--kind", choices=PLOT_KINDS, default="all",
                           help="which plots (alpha: an alpha sweep's metrics against hybrid_p)")  # fmt: skip
        else:
            p.add_argument("--margin", type=_margin, help=MARGIN_HELP)
    p = sub.add_parser("plan", help="seeds needed to detect a difference, from a grid's own variances")
    p.add_argument("path", type=Path)
    p.add_argument("--effect", type=float, default=0.01, help="the difference to detect (default 0.01 mAP)")
    p.add_argument("--power", type=float, default=0.8, help="probability of detecting it (default 0.8)")
    p.add_argument("--alpha", type=float, default=0.05, help="two-sided level (default 0.05)")
    p = sub.add_parser("compare", help="a grid's cells beside a paper's published numbers, with the differences")
    p.add_argument("path", type=Path)
    p.add_argument("--reference", default="2408.10536", help="published figures: 2408.10536 (default) or 2004.05484")
    p.add_argument("--format", choices=["rich", *EXPORT_FORMATS], default="rich")
    p.add_argument("--output", type=Path, help="file to write (default: print)")
    p = sub.add_parser("export", help="write a run's or grid's tables as md|csv|json|latex")
    p.add_argument("path", type=Path)
    p.add_argument("--margin", type=_margin, help=MARGIN_HELP)
    p.add_argument("--format", choices=list(EXPORT_FORMATS), default="md")
    p.add_argument("--output", type=Path, help="file to write (default: print)")

    add_parser(sub)
    p = sub.add_parser("doctor", help="check the install: python, torch, packages against the lock, data, cache, hub")
    p.add_argument("--data-dir", help="the data folder to check (default: $HBT_DATA_DIR)")
    p = sub.add_parser("reproduce", help="re-run finished cells from what they recorded and compare every metric")
    p.add_argument("path", type=Path, help="a grid or run directory")
    p.add_argument("--cell", type=_csv, help="only these cells (ids as `show` and grid.json name them)")
    p.add_argument("--out", type=Path, help="keep the re-made cells here (default: a temporary folder, removed)")
    p.add_argument("--data-dir", help="where the data is now (default: the path each cell recorded)")
    p.add_argument("--all", action="store_true", help="print every metric, not only headline and differing ones")
    p = sub.add_parser("reindex", help="rebuild the results index from the run directories")
    p.add_argument("root", type=Path, nargs="?", default=Path("runs"))
    return parser


def _executor_flags(p: argparse.ArgumentParser) -> None:
    """Where the cells run (flags win over the preset's [executor] table; see docs/executors.md)."""

    g = p.add_argument_group("executor (where the cells run; flags win over the preset's [executor] table)")
    g.add_argument("--executor", choices=EXECUTORS, help="local (default) | processes | slurm | ray")
    g.add_argument("--workers", type=int, help="processes: cells at once (torch threads split between them)")
    g.add_argument("--slurm-backend", choices=SLURM_BACKENDS, help="local: submitit's LocalExecutor on this machine")
    g.add_argument("--slurm-partition")
    g.add_argument("--slurm-time", type=int, dest="slurm_time_min", metavar="MIN", help="time limit per job")
    g.add_argument("--slurm-cpus", type=int, dest="slurm_cpus_per_task", help="CPUs per job")
    g.add_argument("--slurm-mem-gb", type=float)
    g.add_argument("--slurm-gpus", type=int, help="GPUs per cell (several: torchrun inside the job)")
    g.add_argument("--slurm-account")
    g.add_argument("--slurm-qos")
    g.add_argument("--slurm-constraint")
    g.add_argument("--slurm-sbatch", action="append", metavar="OPTION", help="extra sbatch option (repeatable)")
    g.add_argument("--slurm-setup", action="append", metavar="LINE", help="shell line run before each job")
    g.add_argument("--slurm-no-array", dest="slurm_array", action="store_const", const=False,
                   help="one job per cell instead of one job array")  # fmt: skip
    g.add_argument("--ray-address", metavar="HOST:PORT", help="a running Ray cluster's head (default: a local one)")
    g.add_argument("--ray-cpus", type=float, dest="ray_num_cpus", help="CPUs per cell")
    g.add_argument("--ray-gpus", type=float, dest="ray_num_gpus", help="GPUs per cell")


EXECUTOR_FLAGS = ("executor", "workers", "slurm_backend", "slurm_partition", "slurm_time_min", "slurm_cpus_per_task",
                  "slurm_mem_gb", "slurm_gpus", "slurm_account", "slurm_qos", "slurm_constraint", "slurm_sbatch",
                  "slurm_setup", "slurm_array", "ray_address", "ray_num_cpus", "ray_num_gpus")  # fmt: skip


def _executor(args: argparse.Namespace, preset: Any) -> Any:
    """The executor of `run`: the preset's with the flags applied; on --resume without executor flags, None (the grid
    keeps the executor it was started with)."""

    flags = {name: getattr(args, name) for name in EXECUTOR_FLAGS}
    if args.resume is not None and all(v is None for v in flags.values()):
        return None
    spec = with_flags(preset.executor, **flags)
    if spec.kind != "local" and args.launcher != "none":
        raise ConfigError(
            f"--launcher {args.launcher} spreads one cell in this process; with --executor {spec.kind} each cell is "
            "a job (for several GPUs per cell use --slurm-gpus N: torchrun runs inside the job)"
        )
    return spec


def _default_out(kind: str) -> Path:
    return default_out(kind)


def _run_config(args: argparse.Namespace) -> Any:
    """The RunConfig of `eval` / `train`: the flags given, RunConfig's defaults for the rest."""

    return RunConfig(**given_settings(args, args.command))


def cmd_single(args: argparse.Namespace, console: Any) -> int:
    quiet_third_party_output()
    # (start-up: faiss, scipy)
    from ..runs.run import execute
    from .display import print_results

    config = _run_config(args)  # (`execute` checks it first of all, before anything is written)
    out = args.out or _default_out(args.command if args.command == "eval" else f"train-{args.strategy}")
    bus = EventBus()
    faults.install(bus)
    with listener_for(console) as listener, sigint_cancels(CancelFlag(), listener.notice) as cancel:
        bus.subscribe(listener)
        results = execute(config, out, bus, cancel=cancel)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        print_results(console, results)
        console.print(f"results: {safe(out / 'results.json')}", markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_list(args: argparse.Namespace, console: Any) -> int:
    if args.what == "datasets":
        table = Table("name", "languages", "parallel", "files under --data-dir", "online source", "licence")
        for s in DATASETS.values():
            table.add_row(s.name, " ".join(s.languages), "yes" if s.parallel else "no", s.layout, s.source, s.licence)
    elif args.what == "metrics":
        table = Table("metric", "meaning")
        for name, text in METRIC_HELP.items():
            table.add_row(name, text)
    elif args.what == "backbones":
        rows = list_backbones()
        table = Table(*rows[0].keys()) if rows else Table("name")
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
    elif args.what == "presets":
        table = Table("preset", "description", "cells")
        for name, description, cells in list_presets():
            table.add_row(name, description, str(cells))
    else:
        # (start-up: statsmodels, scipy)
        from ..report.export import format_value

        store = ResultsStore(args.root)
        store.refresh()  # pick up runs written since the last listing
        runs = store.list_runs()
        table = Table("id", "backbone", "strategy", "seed", "status", "mono mAP", "cross mAP", "multi mAP", "path")
        for r in runs:  # every string comes from a file: escaped, never read as Rich markup
            table.add_row(
                *(Text(safe(r.get(k, ""))) for k in ("id", "backbone", "strategy", "seed", "status")),
                *(format_value(r.get(HEADLINE_FIELD[s])) for s in SETTINGS),
                Text(safe(r.get("path", ""))),
            )
    console.print(table)
    return 0


def cmd_run(args: argparse.Namespace, console: Any) -> int:
    quiet_third_party_output()

    # (start-up: sentence_transformers, transformers, datasets)
    from ..runs import grid

    preset = load_preset(args.preset)
    preset = apply_overrides(
        preset,
        seeds=args.seeds,
        backbones=args.backbones,
        strategies=args.strategies,
        margin=args.margin,
        **given_settings(args, "run"),
    )
    executor = _executor(args, preset)
    out = args.resume or args.out or _default_out(preset.name)
    runner = None
    if args.launcher != "none":
        launch = Launch(args.launcher, args.nproc, args.nnodes, args.node_rank, args.master_addr, args.master_port)
        runner = LaunchedRunner(launch)
        if args.node_rank > 0:  # follow node 0's grid (shared --out): never create or index it from here
            wait_for_grid(out)
            args.resume = out
    bus = EventBus()
    faults.install(bus)
    with listener_for(console) as listener, sigint_cancels(CancelFlag(), listener.notice) as cancel:
        bus.subscribe(listener)
        summary = grid.run_grid(
            preset, out, bus, resume=args.resume is not None, cancel=cancel, runner=runner, executor=executor,
            allow_stack_change=args.allow_stack_change, node_rank=args.node_rank if runner is not None else 0,
        )  # fmt: skip
    cells = cell_states(out)
    if summary["cancelled"]:
        done = f"{summary['complete']} of {len(cells) or len(preset.cells())} cells complete"
        stopped = next((c for c in cells if c.status == "cancelled" and c.error.startswith("stopped")), None)
        where = f"cell {stopped.id} {stopped.error.removeprefix('stopped ')} " if stopped else ""
        raise Cancelled(f"{where}({done}); continue with: hbt-bench run {args.preset} --resume {out}")
    # (start-up: statsmodels, scipy)
    from ..report.export import print_tables

    err = Console(stderr=True)
    for cell in cells:  # every failed cell with its one-line reason (escaped: it comes from a file)
        if cell.status == "failed":
            line = f"hbt: cell {safe(cell.id)} failed: {safe(cell.error)}"
            err.print(line, markup=False, highlight=False, soft_wrap=True)
    if summary["complete"]:
        print_tables(out, console, margin=preset.noninferiority_margin)
    console.print(
        f"grid: {safe(out)}  ({summary['complete']} complete, {summary['failed']} failed)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return 0 if summary["failed"] == 0 else 1


def _warn_provenance(path: Path) -> None:
    """Before a report: one stderr line per way its cells were not made alike (stack, data)."""

    err = Console(stderr=True)
    for line in warnings_for(path):
        err.print(f"hbt: warning: {safe(line)}", markup=False, highlight=False, soft_wrap=True)


def cmd_compare(args: argparse.Namespace, console: Any) -> int:
    # (start-up: statsmodels, scipy)
    from ..report.export import natural_width, render, rich_table
    from ..report.published import compare_tables

    tables = compare_tables(args.path, args.reference)
    _warn_provenance(args.path)
    if args.format == "rich" and args.output is None:
        for t in tables:
            console.print(rich_table(t, compact=natural_width(t) > console.width))
            console.print()
        return 0
    text = render(tables, "md" if args.format == "rich" else args.format)
    if args.output is None:
        sys.stdout.write(safe_text(text))  # names come from results and grid files
    else:
        write_text(args.output, text)
        console.print(f"wrote {safe(args.output)}", markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_report(args: argparse.Namespace, console: Any) -> int:
    if args.command == "show":
        # (start-up: statsmodels, scipy)
        from ..report.export import print_tables

        _warn_provenance(args.path)
        print_tables(args.path, console, margin=args.margin)
    elif args.command == "export":
        # (start-up: statsmodels, scipy)
        from ..report.export import export

        text = export(args.path, args.format, args.output, margin=args.margin)
        _warn_provenance(args.path)
        if args.output is None:
            sys.stdout.write(safe_text(text))  # names come from results and grid files
        else:
            console.print(f"wrote {safe(args.output)}", markup=False, highlight=False, soft_wrap=True)
    elif args.command == "plot":
        # (start-up: scipy, matplotlib)
        from ..report.plots import write_plots

        for path in write_plots(args.path, args.out, kind=args.kind):
            console.print(f"wrote {safe(path)}", markup=False, highlight=False, soft_wrap=True)
    elif args.command == "plan":
        # (start-up: statsmodels, scipy)
        from ..report.export import natural_width, rich_table
        from ..report.power_tables import plan_tables

        for t in plan_tables(args.path, args.effect, args.power, args.alpha):
            console.print(rich_table(t, compact=natural_width(t) > console.width))
            console.print()
    else:
        n = ResultsStore(args.root).reindex()
        console.print(f"indexed {n} runs under {safe(args.root)}", markup=False, highlight=False)
    return 0


def cmd_doctor(args: argparse.Namespace, console: Any) -> int:
    checks = run_checks(args.data_dir)
    width = max(len(c.name) for c in checks)
    styles = {"ok": "green", "warn": "yellow", "fail": "bold red"}
    for check in checks:  # the status word is the marker (not colour alone); details may come from files: escaped
        line = Text(f"{check.status:<4}  ", style=styles[check.status])
        line.append(f"{check.name:<{width}}  {safe(check.detail)}", style="default")
        console.print(line, soft_wrap=True)
    return exit_code(checks)


def cmd_reproduce(args: argparse.Namespace, console: Any) -> int:
    quiet_third_party_output()
    # (start-up: faiss, scipy)
    from ..runs.reproduce import reproduce_cell
    from .display import print_reproduction

    cells = require_results(load_source(args.path))
    if args.cell:
        unknown = [c for c in args.cell if c not in {cell.id for cell in cells}]
        if unknown:
            known = ", ".join(cell.id for cell in cells)
            raise UserError(f"no finished cell {unknown[0]!r} in {args.path} (finished: {known})")
        cells = [cell for cell in cells if cell.id in args.cell]
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        raise UserError(f"{args.out} is not empty: choose a new --out for the re-made cells")
    with contextlib.ExitStack() as stack:
        scratch = args.out if args.out is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        ensure_dir(scratch)
        bus = EventBus()
        faults.install(bus)
        with listener_for(console) as listener, sigint_cancels(CancelFlag(), listener.notice):
            bus.subscribe(listener)
            reports = []
            for cell in cells:
                assert cell.results is not None  # require_results keeps finished cells only
                bus.cell = cell.id
                reports.append(reproduce_cell(cell.id, cell.results, scratch / cell.id, bus, args.data_dir))
            bus.cell = ""
        identical = print_reproduction(console, reports, show_all=args.all)
        where = f"re-made cells kept in {args.out}" if args.out else "scratch folder removed (--out DIR keeps it)"
        console.print(where, markup=False)
    return 0 if identical else 1


def cmd_status(args: argparse.Namespace, console: Any) -> int:
    status = grid_status(args.grid, ask=not args.no_scheduler)
    if args.json:
        print(json.dumps(status_json(status), indent=2, ensure_ascii=False))
    else:
        print_status(console, status)
    return 0


def cmd_cancel(args: argparse.Namespace, console: Any) -> int:
    console.print(f"hbt: {safe(cancel_grid(args.grid))}", markup=False, highlight=False)
    if args.wait > 0:
        status = wait_until_settled(args.grid, args.wait)
        print_status(console, status)
        if status.live:
            left = len(status.live)
            console.print(f"hbt: {left} cell(s) still queued or running after {args.wait:g} s", markup=False)
            return 1
    return 0


HUB_COMMANDS = ("eval", "train", "run", "reproduce")
COMMANDS = {
    "encode-corpus": lambda args, console: _corpus_command(args, console),
    "eval": cmd_single,
    "train": cmd_single,
    "run": cmd_run,
    "list": cmd_list,
    "show": cmd_report,
    "compare": cmd_compare,
    "export": cmd_report,
    "plot": cmd_report,
    "plan": cmd_report,
    "reindex": cmd_report,
    "doctor": cmd_doctor,
    "reproduce": cmd_reproduce,
    "status": cmd_status,
    "cancel": cmd_cancel,
}


def _corpus_command(args: argparse.Namespace, console: Any) -> int:
    return cmd_encode_corpus(args, console)


def _escaped_warnings(err: Any) -> None:
    """Python warnings (matplotlib's missing glyph of a crafted label, say) carry text from files: print them with
    control characters escaped, like every other line."""

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        text = warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n")
        err.print(safe_text(text), markup=False, highlight=False, soft_wrap=True)

    warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")  # hbt shows its own Rich progress (see quiet_third_party_output)
    console = Console(stderr=False)
    err = Console(stderr=True)
    _escaped_warnings(err)
    try:
        args = build_parser().parse_args(argv)
        if args.command in HUB_COMMANDS:  # the others never load a model or a dataset: no network probe
            go_offline_if_unreachable()
        return COMMANDS[args.command](args, console)
    except UserError as exc:
        err.print(f"hbt: {safe(exc)}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except Cancelled as exc:
        err.print(f"hbt: {safe(exc)}", markup=False, highlight=False, soft_wrap=True)
        return 130
    except KeyboardInterrupt:
        err.print("hbt: interrupted; finished cells are kept (resume with --resume GRID_DIR)", markup=False)
        return 130
    except Exception as exc:  # a bug in hbt: one line on screen, the traceback in a file
        path = getattr(exc, "traceback_path", None) or _save_traceback()
        err.print(
            f"hbt: internal error ({type(exc).__name__}: {safe(exc)}); traceback: {safe(path)} — please report it",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return 1


def _save_traceback() -> str:
    """The traceback in <cache>/logs, else (a full or read-only cache) the system's temp folder."""

    name = f"traceback-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    for folder in (cache_root() / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(traceback.format_exc(), encoding="utf-8")
            return str(folder / name)
        except OSError:
            continue
    return "not saved (no writable folder)"


def entry() -> None:
    sys.exit(main())
