"""The docs stay true where a program can tell: README.md and docs/*.md against the real parser, presets, results
model and CI script.

- every `hbt-bench` subcommand named exists, and every `--flag` named exists: after `hbt-bench <command>` (or
  `-m hbt.engine.cli <command>`) in that command's `--help`; anywhere else in some command's help, in the source of
  a repository script (benchmarks/, scripts/, .ci/, a module run with -m, hbt-tui) or, for other tools' flags, in
  EXTERNAL;
- every preset named (`run NAME`, `--preset NAME`, "the `NAME` preset") exists, and the "unknown preset" example in
  docs/errors.md lists exactly the presets there are;
- the results.json example in docs/results-schema.md validates against the results model and records quick's steps;
- README.md: at most 300 lines, the set-up commands (the same lines as .ci/run) in its first 40, a link to every
  docs page, as mkdocs.yml's navigation has.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from functools import cache
from pathlib import Path

import pytest
from hbt.engine.cli.main import build_parser
from hbt.engine.data.registry import DATASETS
from hbt.engine.evaluation.results import RESULTS_SCHEMA, read_datasets
from hbt.engine.runs.presets import builtin_dir, load_preset

from tests.conftest import REPO

README = REPO / "README.md"
DOC_FILES = [README, *sorted((REPO / "docs").glob("*.md"))]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
# flags of other tools named in the docs, with the tool (checked by hand, not by this test)
EXTERNAL = {
    "--nproc-per-node": "torchrun",
    "--strict": "mkdocs build",
    "--check": "ruff format",
    "--update-lock": ".ci/canary (README, Versions and reproducibility)",
    "--floor": ".ci/canary (README, Versions and reproducibility)",
    "--fields": "pyserini (MIRACL's mDPR baselines encode --fields title text)",
}
# a token that starts another program: flags after it are no longer hbt-bench's
OTHER_PROGRAM = {"&&", ";", "|", "$", "python", "python3", "torchrun", "accelerate", "pip", "bash", "mkdocs", "ruff",
                 "hbt-tui"}  # fmt: skip
# programs whose own options the docs quote (Slurm's, Ray's, pytest's): flags after them are theirs, not checked here
FOREIGN_PROGRAM = {"sbatch", "#SBATCH", "srun", "scancel", "squeue", "sacct", "ray", "pytest"}


def _help(*argv: str) -> str:
    """`hbt-bench ARGV --help` as printed, unwrapped (argparse wraps to $COLUMNS, also at hyphens)."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        mp.setenv("COLUMNS", "10000")
        build_parser().parse_args([*argv, "--help"])
    return out.getvalue()


@cache
def commands() -> dict[str, set[str]]:
    """Each hbt-bench subcommand and the option strings its --help lists."""
    choices = re.findall(r"\{([a-z,-]+)\}", _help())[0]  # usage: hbt-bench [-h] {eval,train,...} ...
    return {name: set(FLAG.findall(_help(name))) for name in choices.split(",")}


@cache
def script_flags() -> set[str]:
    """Option strings defined in the repository's scripts (quoted literals)."""
    files = [*(REPO / "benchmarks").glob("*.py"), *(REPO / "scripts").glob("*.py"), *(REPO / ".ci").iterdir()]
    files += [*(REPO / "engine").rglob("*.py"), REPO / "tui" / "app.py", REPO / "tests" / "miracl_release.py"]
    text = "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files if f.is_file())
    return set(re.findall(r"[\"'](--[a-z][a-z0-9-]*)[\"']", text))


def units(text: str) -> list[str]:
    """The places a command can be written whole: each line of a code block (a trailing backslash joins the next),
    each inline code span (a span may wrap across lines of a paragraph), and each prose line."""
    out: list[str] = []
    in_fence, pending, paragraph = False, "", []
    for line in [*text.splitlines(), ""]:
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            out.append(pending + line)
            pending = ""
            continue
        if line.strip() and not line.startswith("|"):
            paragraph.append(line)
            continue
        rows = [line] if line.startswith("|") else []
        for block in [" ".join(paragraph), *rows]:
            spans = re.findall(r"``(.+?)``|`([^`]+)`", block)
            out += [a or b for a, b in spans]
            out.append(re.sub(r"``.+?``|`[^`]+`", " ", block))
        paragraph = []
    return out


def flags_by_command(unit: str) -> list[tuple[str | None, str]]:
    """(hbt-bench subcommand or None, flag) for every flag in a unit."""
    found: list[tuple[str | None, str]] = []
    command: str | None = None
    foreign = False
    tokens = unit.replace("\\|", " ").split()
    for i, token in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in ("hbt-bench", "hbt.engine.cli") and nxt.rstrip(":") in commands():
            command, foreign = nxt.rstrip(":"), False
        elif token in OTHER_PROGRAM or token == "hbt-bench":
            command, foreign = None, False
        elif token.strip("`") in FOREIGN_PROGRAM:
            command, foreign = None, True
        if not foreign:
            found += [(command, flag) for flag in FLAG.findall(token)]
    return found


def test_every_subcommand_and_flag_named_in_the_docs_exists() -> None:
    everything = set().union(*commands().values())
    wrong = []
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for name in re.findall(r"hbt-bench ([a-z][a-z-]*)", text):
            if name not in commands():
                wrong.append(f"{path.name}: hbt-bench {name}: no such subcommand")
        for unit in units(text):
            for command, flag in flags_by_command(unit):
                if command is not None:
                    ok = flag in commands()[command]
                else:
                    ok = flag in everything or flag in script_flags() or flag in EXTERNAL
                if not ok:
                    wrong.append(f"{path.name}: {flag} ({'hbt-bench ' + command if command else 'no command'})")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_the_flag_check_catches_a_wrong_flag() -> None:
    """The check above can fail: a flag of another subcommand, and a made-up one, are caught."""
    assert ("show", "--steps") in flags_by_command("hbt-bench show runs/g --steps 3")
    assert "--steps" not in commands()["show"] and "--steps" in commands()["run"]
    assert "--no-such-flag" not in set().union(*commands().values()) | script_flags()
    assert flags_by_command("torchrun --nproc-per-node 2 -m hbt.engine.cli encode-corpus --yes") == [
        (None, "--nproc-per-node"),
        ("encode-corpus", "--yes"),
    ]


def preset_names() -> set[str]:
    return {p.stem for p in builtin_dir().glob("*.toml")}


def test_every_preset_named_in_the_docs_exists() -> None:
    patterns = [
        r"(?:hbt-bench |`)run ([a-z][a-z0-9-]*)(?![\w.-])",  # hbt-bench run NAME (not a FILE.toml), or `run NAME`
        r"--preset ([a-z][a-z0-9-]*)",
        r"`([a-z][a-z0-9-]*)` (?:preset\b|\(the main job)",
        r"\bpresets? `([a-z][a-z0-9-]*)`",
    ]
    named: dict[str, set[str]] = {}
    for path in DOC_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            for pattern in patterns:
                for name in re.findall(pattern, line):
                    if f"unknown preset '{name}'" not in line:  # the error table's deliberate wrong name
                        named.setdefault(name, set()).add(path.name)
    assert {"quick", "study", "smoke", "tydi-mbart-laser"} <= set(named), named
    missing = {name: files for name, files in named.items() if name not in preset_names()}
    assert not missing, missing


def test_the_unknown_preset_example_lists_the_presets_there_are() -> None:
    text = (REPO / "docs" / "errors.md").read_text(encoding="utf-8")
    (allowed,) = re.findall(r"unknown preset 'nosuchpreset' \(allowed: ([^)]*)\)", text)
    assert allowed.split(", ") == sorted(preset_names())


def results_example() -> dict[str, object]:
    text = (REPO / "docs" / "results-schema.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/results-schema.md has no ```json block"
    doc = json.loads(blocks[0])
    assert isinstance(doc, dict)
    return doc


def test_the_results_schema_example_validates_and_is_the_quick_preset() -> None:
    doc = results_example()
    assert doc["schema"] == RESULTS_SCHEMA
    datasets = read_datasets(doc)  # raises, naming the field, on anything the results model rejects
    quick = load_preset("quick").run
    config, training = doc["config"], doc["training"]
    assert isinstance(config, dict) and isinstance(training, dict)
    assert config["steps"] == training["steps"] == quick.steps
    assert sum(training["composition"].values()) == quick.steps
    assert (config["batch_size"], config["train_top_layers"]) == (quick.batch_size, quick.train_top_layers)
    xquad = datasets["xquad-r"]
    assert xquad.languages == list(quick.langs or [])
    assert xquad.n_queries == 5 * (quick.max_queries or 0)


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, len(lines)
    head = "\n".join(lines[:40])
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    steps = [line for line in ci if line.startswith(("pip install", "ruff check"))]
    assert len(steps) == 3, steps  # torch, hbt with the lock, the checks and the tests
    for step in steps:
        assert step in head, f"README's first 40 lines lack .ci/run's `{step}`"
    assert "-c requirements.lock" in head and "mkdocs build --strict" in head


def test_every_docs_page_is_linked_from_the_readme_and_the_site_navigation() -> None:
    """mkdocs --strict checks the links between docs pages; this checks the README's (pages and #anchors)."""
    from markdown.extensions.toc import slugify

    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    readme = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(docs/([\w-]+\.md)(?:#([\w-]*))?\)", readme)
    linked = {page for page, _ in links}
    assert linked <= pages, linked - pages
    for page, anchor in links:
        headings = re.findall(r"^#+ (.+)$", (REPO / "docs" / page).read_text(encoding="utf-8"), flags=re.M)
        assert not anchor or anchor in {slugify(h, "-") for h in headings}, f"docs/{page}#{anchor}"
    assert pages - {"index.md"} <= linked, (pages - {"index.md"}) - linked
    nav = set(re.findall(r":\s+([\w-]+\.md)\s*$", (REPO / "mkdocs.yml").read_text(encoding="utf-8"), flags=re.M))
    assert nav == pages, nav ^ pages


def test_eval_data_help_names_every_dataset() -> None:
    text = " ".join(_help("eval").split())
    (eval_data,) = re.findall(r"--eval-data EVAL_DATA (.*?) --", text)
    for name in DATASETS:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", eval_data), name


def test_cli_and_tui_name_a_grid_folder_alike() -> None:
    """One helper names runs/<date>-<time>-<kind> for `hbt-bench run` and the TUI's Launch."""
    import time

    from hbt.engine.cli import main
    from hbt.engine.runs import rundir
    from hbt.tui.screens import setup

    assert setup.default_out is rundir.default_out
    t = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))
    assert rundir.default_out("smoke", Path("runs"), t) == Path("runs/20260102-030405-smoke")
    assert re.fullmatch(r"runs/\d{8}-\d{6}-quick", main._default_out("quick").as_posix())
