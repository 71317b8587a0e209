"""Re-run issue 23's defect rows as a user meets them: `hbt-bench` in a subprocess, on the MIRACL and XOR-Retrieve
fixtures in their release layouts and the real LAReQA data, each case in its own folder under OUT.

    python scripts/probe_defects.py --data-dir ../shared/data --out /tmp/probe23

Prints one row per case (issue row, case, exit code, the line hbt printed, verdict) and a count; exit 1 when any
case is bad. Good means: a user error or fault is exit 2 with one `hbt: ` line and no traceback, or the numbers are
right. Cases 5 and 11 mount small tmpfs folders (root only; otherwise they are listed as not run). The tests of each
row are in tests/test_hardening_two.py; this script shows the same rows from the outside, on today's code.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the MIRACL release fixture lives with the tests

from tests.miracl_release import CORPUS, QRELS, write_gz_jsonl, write_release  # noqa: E402

XOR_FIXTURE = ROOT / "tests" / "fixtures" / "data" / "xor-retrieve"
XOR_TSV = "enwiki_20190201_w100.tsv"
TINY = ["--backbone", "tiny-random", "--device", "cpu"]


@dataclass
class Outcome:
    row: str
    case: str
    rc: int | None
    line: str
    good: bool | None  # None: not run here


def hbt(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600.0) -> tuple[int, str, str]:
    done = subprocess.run(["hbt-bench", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def one_line(rc: int, err: str, must: str) -> tuple[str, bool]:
    """exit 2, exactly one `hbt: ` line holding `must`, no traceback, no internal error."""
    lines = [x for x in err.splitlines() if x.startswith("hbt: ")]
    line = lines[0] if lines else (err.strip().splitlines() or [""])[-1]
    ok = rc == 2 and len(lines) == 1 and must in line and "Traceback" not in err and "internal error" not in err
    return line, ok


def miracl_map(out: Path) -> float:
    results = json.loads((out / "results.json").read_text())
    return float(results["datasets"]["miracl"]["monolingual"]["per_language"]["en"]["map"])


class Probe:
    def __init__(self, out: Path, data_dir: Path) -> None:
        self.out, self.data_dir = out, data_dir
        self.outcomes: list[Outcome] = []

    def case(self, row: str, name: str) -> tuple[Path, dict[str, str]]:
        folder = self.out / f"{row}-{name.replace(' ', '-')}"
        folder.mkdir(parents=True)
        env = {**os.environ, "HBT_CACHE_DIR": str(folder / "cache"), "HBT_DATA_DIR": str(self.data_dir)}
        return folder, env

    def record(self, row: str, name: str, rc: int | None, line: str, good: bool | None) -> None:
        self.outcomes.append(Outcome(row, name, rc, line, good))
        mark = {True: "good", False: "BAD", None: "not run"}[good]
        print(f"{row:>4}  {name:<44} rc={rc!s:<4} {mark:<7} {line[:160]}", flush=True)

    def expect_error(
        self, row: str, name: str, args: list[str], must: str, setup: Callable[[Path], None], before: bool = False
    ) -> None:
        """Exit 2 with one line holding `must`; no results written; with `before`, no run or grid folder at all
        (refused before anything is created: settings, an empty corpus file). A data error met while the run
        reads its inputs leaves the run folder with run.json `failed` and the reason (the record of the attempt)."""
        folder, env = self.case(row, name)
        setup(folder)
        rc, _, err = hbt(args, folder, env)
        line, ok = one_line(rc, err, must)
        made = [p for p in (folder / "run", folder / "grid") if p.exists()]
        results = [p for p in made if any(p.rglob("results.json"))]
        self.record(row, name, rc, line, ok and not results and not (before and made))

    # ---- the rows ------------------------------------------------------------------------------------------------

    def stale_shards(self) -> None:
        """1: a corpus rewritten in place keeps its names and sizes; hbt must encode it again."""
        folder, env = self.case("1", "corpus rewritten in place")
        write_release(folder / "data")
        run = [*TINY, "--data-dir", "data", "--eval-data", "miracl", "--langs", "en"]
        hbt(["eval", *run, "--out", "a"], folder, env)
        docs0 = folder / "data" / "miracl-corpus" / "miracl-corpus-v1.0-en" / "docs-0.jsonl.gz"
        size = docs0.stat().st_size
        first = CORPUS["en"][0]
        ids = [d[0] for d in first]
        swapped = [(ids[(i + 1) % len(ids)], title, text) for i, (_, title, text) in enumerate(first)]
        for level in range(0, 10):  # the same size as before if a compression level gives it
            write_gz_jsonl(docs0, swapped)
            docs0.write_bytes(gzip.compress(gzip.decompress(docs0.read_bytes()), compresslevel=level, mtime=0))
            if docs0.stat().st_size == size:
                break
        same = docs0.stat().st_size == size
        rc, _, _ = hbt(["eval", *run, "--out", "b"], folder, env)
        fresh_env = {**env, "HBT_CACHE_DIR": str(folder / "fresh-cache")}
        hbt(["eval", *run, "--out", "c"], folder, fresh_env)
        reused, fresh = miracl_map(folder / "b"), miracl_map(folder / "c")
        line = f"mAP {miracl_map(folder / 'a'):.4f} before; after the rewrite {reused:.4f}, fresh cache {fresh:.4f}"
        line += "" if same else " (sizes differ: the size part of the old key is not tested)"
        self.record("1", "corpus rewritten in place", rc, line, rc == 0 and reused == fresh)

    def input_counts(self) -> None:
        """2: an empty corpus file, a stray quote, qrels naming unknown passages, a gold passage missing."""

        def empty(folder: Path) -> None:
            write_release(folder / "data")
            (folder / "data" / "miracl-corpus" / "miracl-corpus-v1.0-en" / "docs-0.jsonl.gz").write_bytes(b"")

        miracl = ["eval", *TINY, "--data-dir", "data", "--eval-data", "miracl", "--langs", "en", "--out", "run"]
        self.expect_error("2", "empty docs-0.jsonl.gz", miracl, "no passages", empty, before=True)

        def unknown(folder: Path) -> None:
            qrels = {"en": [(q, f"9{d}", r) for q, d, r in QRELS["en"]], "de": QRELS["de"]}
            write_release(folder / "data", qrels=qrels)

        self.expect_error("2", "qrels naming only unknown docids", miracl, "are not in the corpus", unknown)

        def xor(edit: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
            def setup(folder: Path) -> None:
                shutil.copytree(XOR_FIXTURE, folder / "data" / "xor-retrieve")
                tsv = folder / "data" / "xor-retrieve" / XOR_TSV
                tsv.write_text("\n".join(edit(tsv.read_text(encoding="utf-8").split("\n"))), encoding="utf-8")

            return setup

        def stray_quote(lines: list[str]) -> list[str]:
            pid, text, title = lines[5].split("\t")
            lines[5] = f'{pid}\t"{text}\t{title}'
            return lines

        xor_run = ["eval", *TINY, "--data-dir", "data", "--eval-data", "xor-retrieve", "--out", "run"]
        quote = "a quoted field runs over"
        self.expect_error("2", "stray quote in the XOR collection", xor_run, quote, xor(stray_quote))
        gold = self.xor_gold()
        no_gold = xor(lambda lines: [x for x in lines if x.split("\t")[0] != gold])
        self.expect_error("2", "XOR gold passage missing (whole collection)", xor_run, "not in the collection", no_gold)

    def xor_gold(self) -> str:
        """One gold passage id of the XOR fixture (from its positive_ctxs)."""
        for line in (XOR_FIXTURE / "xor_dev_retrieve_eng_span_v1_1.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            for key in ("positive_ctxs", "ctxs"):
                for ctx in record.get(key) or []:
                    pid = ctx.get("passage_id") or ctx.get("id")
                    if pid:
                        return str(pid)
        return "5"

    def one_runner(self) -> None:
        """3: a second runner of a grid is refused; a dead runner's lock is taken over."""
        folder, env = self.case("3", "two runners of one grid")
        quiet = subprocess.DEVNULL
        command = ["hbt-bench", "run", "smoke", "--out", "g"]
        first = subprocess.Popen(command, cwd=folder, env=env, stdout=quiet, stderr=quiet, start_new_session=True)
        lock = folder / "g" / "grid.lock"
        for _ in range(3000):  # up to 5 min on a loaded machine: the lock names its holder once it is held
            if lock.exists() and "pid" in lock.read_text(encoding="utf-8", errors="replace"):
                break
            time.sleep(0.1)
        else:
            os.killpg(first.pid, signal.SIGKILL)
            self.record("3", "second runner while the first runs", None, "the first runner never took the lock", False)
            return
        rc, _, err = hbt(["run", "smoke", "--resume", "g"], folder, env)
        line, ok = one_line(rc, err, "one runner at a time")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        self.record("3", "second runner while the first runs", rc, line, ok)
        rc, out, err = hbt(["run", "smoke", "--resume", "g"], folder, env)
        took = next((x for x in err.splitlines() + out.splitlines() if "took over" in x), "")
        self.record("3", "resume after kill -9 of the runner", rc, took.strip(), rc == 0 and bool(took))

    def non_finite(self, finished: Path) -> None:
        """4: NaN in a results.json: JSON exports leave the cell out instead of crashing."""
        folder, env = self.case("4", "NaN in results.json")
        grid = folder / "g"
        shutil.copytree(finished, grid)
        cell = sorted((grid / "cells").iterdir())[-1] / "results.json"
        results = json.loads(cell.read_text())
        results["datasets"]["xquad-r"]["monolingual"]["macro"]["map"] = math.nan
        cell.write_text(json.dumps(results))  # writes NaN, as a float('nan') would be dumped
        for command in (["export", "g", "--format", "json"], ["compare", "g", "--format", "json"]):
            rc, out, err = hbt(command, folder, env)
            valid = rc == 0 and "Traceback" not in err
            try:
                json.loads(out, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
            except ValueError:
                valid = False
            first = (err.strip().splitlines() or [""])[0]
            said = f"{len(out):,} bytes of JSON without NaN/Infinity" if valid else first
            self.record("4", f"{command[0]} --format json", rc, said, valid)

    def disks(self) -> None:
        """5 and 11: a full --out disk; a read-only and a full cache folder (small tmpfs mounts)."""
        folder, env = self.case("5", "full and read-only disks")
        mnt = folder / "mnt"
        mnt.mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]
        if os.geteuid() != 0 or subprocess.run(mount).returncode:
            for row, name in (("5", "disk full under --out"), ("11", "read-only cache for encode-corpus")):
                self.record(row, name, None, "needs root to mount a tmpfs", None)
            return
        try:
            write_release(folder / "data")
            (mnt / "filler").write_bytes(b"\0" * (60 * 1024))
            args = ["eval", *TINY, "--data-dir", "data", "--eval-data", "miracl", "--langs", "en", "--out", "mnt/run"]
            rc, _, err = hbt(args, folder, env)
            line, ok = one_line(rc, err, "out of disk space writing")
            self.record("5", "disk full under --out", rc, line, ok)
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            ro_env = {**env, "HBT_CACHE_DIR": str(mnt / "cache")}
            enc = ["encode-corpus", *TINY, "--data-dir", "data", "--langs", "en", "--yes"]
            rc, _, err = hbt(enc, folder, ro_env)
            line, ok = one_line(rc, err, "HBT_CACHE_DIR")
            self.record("11", "read-only cache for encode-corpus", rc, line, ok)
        finally:
            subprocess.run(["umount", str(mnt)])

    def settings(self) -> None:
        """6, 7, 8, 12: settings refused before anything is created."""

        def data(folder: Path) -> None:
            write_release(folder / "data")

        def nothing(folder: Path) -> None:
            pass

        miracl = [*TINY[:2], "--data-dir", "data", "--eval-data", "miracl", "--langs", "en", "--out", "run"]
        grid = ["run", "smoke", "--out", "grid"]
        enc = ["encode-corpus", *TINY[:2], "--data-dir", "data", "--langs", "en", "--yes"]
        cases: list[tuple[str, str, list[str], str, Callable[[Path], None]]] = [
            *[("6", f"eval --device {d}", ["eval", *miracl, "--device", d], "not available", data)
              for d in ("cuda", "cuda:1", "mps")],
            ("6", "encode-corpus --device cuda", [*enc, "--device", "cuda"], "not available", data),
            ("6", "run smoke --device cuda", [*grid, "--device", "cuda"], "not available", nothing),
            *[("7", f"encode-corpus --eval-batch-size {n}", [*enc, "--eval-batch-size", n], "must be positive", data)
              for n in ("0", "-3")],
            ("8", "--seeds 99999999999999999999999", [*grid, "--seeds", "9" * 23], "--seeds", nothing),
            ("8", "--master-port 99999", [*grid, "--launcher", "torchrun", "--master-port", "99999"], "TCP port",
             nothing),
        ]  # fmt: skip
        for row, name, args, must, setup in cases:
            self.expect_error(row, name, args, must, setup, before=True)
        presets = (("seeds", "[-1]", "seeds"), ("lr", "inf", "lr"), ("batch_size", "1000000000", "epochs"))
        for key, value, must in presets:

            def preset(folder: Path, key: str = key, value: str = value) -> None:
                smoke = (ROOT / "presets" / "smoke.toml").read_text(encoding="utf-8")
                head, run = smoke.split("[run]", 1)
                if key == "seeds":
                    head = "\n".join(x for x in head.splitlines() if not x.startswith("seeds")) + f"\nseeds = {value}\n"
                else:
                    run = "\n".join(x for x in run.splitlines() if not x.startswith(f"{key} ")) + f"\n{key} = {value}\n"
                (folder / "p.toml").write_text(f"{head}[run]{run}", encoding="utf-8")

            row = "12" if key == "batch_size" else "8"
            self.expect_error(row, f"preset {key} = {value}", ["run", "p.toml", "--out", "grid"], must, preset, True)

    def repeats(self) -> None:
        """9 and 12: a repeated passage id (XOR), a repeated relevant docid (MIRACL) named by its file."""

        def xor_dup(folder: Path) -> None:
            shutil.copytree(XOR_FIXTURE, folder / "data" / "xor-retrieve")
            tsv = folder / "data" / "xor-retrieve" / XOR_TSV
            lines = tsv.read_text(encoding="utf-8").rstrip("\n").split("\n")
            gold = self.xor_gold()
            other = next(x for x in lines[1:] if x.split("\t")[0] != gold)
            tsv.write_text("\n".join([*lines, other]) + "\n", encoding="utf-8")

        xor_run = ["eval", *TINY, "--data-dir", "data", "--eval-data", "xor-retrieve", "--out", "run"]
        self.expect_error("9", "XOR repeated non-gold passage id", xor_run, "appears twice", xor_dup)

        def miracl_dup(folder: Path) -> None:
            corpus = {lang: [list(f) for f in files] for lang, files in CORPUS.items()}
            relevant = next(d for q, d, r in QRELS["en"] if r > 0)
            passage = next(p for f in corpus["en"] for p in f if p[0] == relevant)
            corpus["en"][1].append(passage)
            write_release(folder / "data", corpus=corpus)

        miracl = ["eval", *TINY, "--data-dir", "data", "--eval-data", "miracl", "--langs", "en", "--out", "run"]
        self.expect_error("12", "MIRACL repeated relevant docid", miracl, "docs-1.jsonl.gz", miracl_dup)

    def grid_json(self, finished: Path) -> None:
        """12: a string batch_size in grid.json is one line naming the key."""
        folder, env = self.case("12", "string batch_size in grid.json")
        shutil.copytree(finished, folder / "g")
        doc = json.loads((folder / "g" / "grid.json").read_text())
        doc["run"]["batch_size"] = str(doc["run"]["batch_size"])
        (folder / "g" / "grid.json").write_text(json.dumps(doc))
        rc, _, err = hbt(["run", "smoke", "--resume", "g"], folder, env)
        line, ok = one_line(rc, err, "batch_size")
        self.record("12", "string batch_size in grid.json", rc, line, ok)

    def escapes(self, finished: Path) -> None:
        """10: terminal escapes from a results.json reach stdout escaped."""
        folder, env = self.case("10", "escapes in results.json")
        shutil.copytree(finished, folder / "g")
        cell = sorted((folder / "g" / "cells").iterdir())[0] / "results.json"
        text = cell.read_text().replace('"de"', '"de\\u001b[2J\\u0007"')
        cell.write_text(text)
        bad = []
        for fmt in ("md", "csv", "latex"):
            rc, out, err = hbt(["export", "g", "--format", fmt], folder, env)
            if "\x1b" in out or "\x07" in out or "\x1b" in err or rc not in (0, 2):
                bad.append(fmt)
        self.record("10", "export md/csv/latex of an escape", rc, f"raw escapes in: {bad or 'none'}", not bad)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the LAReQA data (xquad-r/, mlqa-r/)")
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (must not exist)")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True)
    probe = Probe(out, args.data_dir.resolve())
    print(f"{'row':>4}  {'case':<44} {'exit':<8} {'verdict':<7} what hbt printed")
    folder, env = probe.case("0", "a finished smoke grid")
    rc, _, err = hbt(["run", "smoke", "--out", "g"], folder, env)
    if rc != 0:
        print(f"the smoke grid failed (exit {rc}): {err.strip().splitlines()[-1:]}")
        return 1
    finished = folder / "g"
    probe.stale_shards()
    probe.input_counts()
    probe.one_runner()
    probe.non_finite(finished)
    probe.disks()
    probe.settings()
    probe.repeats()
    probe.grid_json(finished)
    probe.escapes(finished)
    good = sum(o.good is True for o in probe.outcomes)
    bad = sum(o.good is False for o in probe.outcomes)
    skipped = sum(o.good is None for o in probe.outcomes)
    print(f"{good} good, {bad} bad, {skipped} not run, of {len(probe.outcomes)} cases")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
