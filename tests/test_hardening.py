"""Issue 16 (engine and CLI): a failure keeps its reason, grid.json is input, caches rebuild, budgets are bounded."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import hbt.engine.backbones.registry  # noqa: F401 - bound to the real hub probe before any test patches it
import pytest
from hbt.engine.cli.main import main
from hbt.engine.common.errors import ConfigError, DataError, OfflineError, UserError
from hbt.engine.common.events import EventBus, RunFinished, read_events
from hbt.engine.evaluation.results import MISSING
from hbt.engine.runs.grid import run_grid
from hbt.engine.runs.presets import load_preset
from hbt.engine.runs.rundir import RunDir

CELL_NONE = "tiny-random__none__s0"
CELL_XX = "tiny-random__xx__s0"


def _preset(data_dir: Path, **run: Any) -> Any:
    preset = load_preset("smoke")
    return replace(preset, strategies=["xx"], run=replace(preset.run, data_dir=str(data_dir), **run))


def _lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip()]


# ---- 1. a cell that fails before its main block keeps its reason ---------------------------------------------------


def test_failure_while_loading_the_model_is_recorded_in_the_cell(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hbt.engine.runs.run as run_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("weights exploded")

    monkeypatch.setattr(run_module, "load_backbone", broken)  # (patched where the cell looks it up)
    events: list[Any] = []
    bus = EventBus()
    bus.subscribe(events.append)
    summary = run_grid(_preset(data_dir), tmp_path / "g", bus)
    assert summary["failed"] == 2 and summary["complete"] == 0
    for cell in (CELL_NONE, CELL_XX):
        run = RunDir(tmp_path / "g" / "cells" / cell)
        status = run.status()
        assert status["status"] == "failed" and status["error"] == "RuntimeError: weights exploded"
        assert "weights exploded" in Path(status["traceback"]).read_text()
        finished = [e for e in read_events(run.events_file) if isinstance(e, RunFinished)]
        assert finished[-1].status == "failed" and finished[-1].error == "RuntimeError: weights exploded"
    shown = [e for e in events if isinstance(e, RunFinished)]
    assert [(e.cell, e.error) for e in shown] == [(c, "RuntimeError: weights exploded") for c in (CELL_NONE, CELL_XX)]
    from hbt.engine.runs.store import ResultsStore

    rows = ResultsStore(tmp_path).list_runs()  # listed (History, `list runs`) with the reason
    assert [(r["id"], r["status"], r["error"]) for r in rows] == [
        (c, "failed", "RuntimeError: weights exploded") for c in (CELL_NONE, CELL_XX)
    ]


def test_cli_names_each_failed_cell_and_its_reason(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text('{"model_type": "no-such-architecture"}', encoding="utf-8")
    (tmp_path / "p.toml").write_text(
        f'[preset]\nname = "p"\nbackbones = ["{junk}"]\nstrategies = []\nbaseline = true\n'
        '[run]\neval_data = ["xquad-r"]\nlangs = ["de", "en"]\nmax_queries = 4\n',
        encoding="utf-8",
    )
    rc = main(["run", str(tmp_path / "p.toml"), "--data-dir", str(data_dir), "--out", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert rc == 2
    assert _lines(err)[-1].startswith(f"hbt: cannot load backbone '{junk}': ")
    assert "no-such-architecture" in err and "Traceback" not in err


# ---- 2. disk full while saving the model ---------------------------------------------------------------------------


def test_disk_full_while_saving_the_model_stops_the_grid_with_one_line(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import safetensors.torch

    def full(*args: Any, **kwargs: Any) -> None:  # the real message, seen on a full tmpfs
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    import transformers.modeling_utils

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", full)
    preset = tmp_path / "p.toml"
    preset.write_text(
        (Path(__file__).parents[1] / "presets" / "smoke.toml").read_text().replace('"xy", "hybrid"', ""),
        encoding="utf-8",
    )
    rc = main(["run", str(preset), "--data-dir", str(data_dir), "--out", str(tmp_path / "g"), "--strategies", "xx,xy"])
    err = capsys.readouterr().err
    assert rc == 2
    model = tmp_path / "g" / "cells" / CELL_XX / "model"
    assert _lines(err)[-1] == f"hbt: out of disk space writing {model} — free space or choose another --out"
    assert "Traceback" not in err and "SafetensorError" not in err
    cell = tmp_path / "g" / "cells" / CELL_XX
    assert not (cell / "model.partial").exists() and not (cell / "model").exists()
    assert RunDir(cell).status()["status"] == "failed"
    assert not (tmp_path / "g" / "cells" / "tiny-random__xy__s0").exists()  # the grid stopped


# ---- 3. a hub that never answers -----------------------------------------------------------------------------------


@pytest.fixture
def silent_server() -> Any:
    """A TCP server that accepts connections and never sends a byte (a hung hub)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def probe(monkeypatch: pytest.MonkeyPatch, timeout: float) -> tuple[bool, float]:
    """hub_reachable with the offline switches unset, from an empty cache (left empty): its answer and seconds."""
    from hbt.engine.common import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HBT_OFFLINE", raising=False)
    hub.hub_reachable.cache_clear()
    t0 = time.monotonic()
    try:
        return hub.hub_reachable(timeout=timeout), time.monotonic() - t0
    finally:
        hub.hub_reachable.cache_clear()


def test_a_hub_that_accepts_but_never_answers_is_offline_within_the_limit(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)  # the real https://huggingface.co ...
    real = socket.create_connection
    # ... whose every connection lands on a server that accepts and never says a word
    monkeypatch.setattr(
        socket, "create_connection", lambda address, *a, **k: real(("127.0.0.1", silent_server), *a, **k)
    )
    reachable, seconds = probe(monkeypatch, timeout=1.0)
    assert reachable is False
    assert seconds < 3.0


def test_a_dns_lookup_that_hangs_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_dns(*args: Any, **kwargs: Any) -> Any:
        time.sleep(6)
        raise socket.gaierror("no answer")

    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.invalid")
    monkeypatch.setattr(socket, "getaddrinfo", slow_dns)
    reachable, seconds = probe(monkeypatch, timeout=1.0)
    assert reachable is False
    assert seconds < 3.0


def test_the_probe_uses_the_endpoints_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    class Answer(threading.Thread):
        def __init__(self) -> None:
            super().__init__(daemon=True)
            self.server = socket.socket()
            self.server.bind(("127.0.0.1", 0))
            self.server.listen(1)

        def run(self) -> None:
            conn, _ = self.server.accept()
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()

    answer = Answer()
    answer.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{answer.server.getsockname()[1]}")
    assert probe(monkeypatch, timeout=2.0)[0] is True
    answer.join(2)
    answer.server.close()


@pytest.mark.parametrize("argv", [["list", "presets"], ["list", "datasets"], ["show", "/no/such/grid"]])
def test_commands_that_never_touch_the_hub_do_not_probe_it(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from hbt.engine.common import hub

    def probe(*args: Any, **kwargs: Any) -> bool:
        raise AssertionError("the hub was probed")

    monkeypatch.setattr(hub, "hub_reachable", probe)
    assert main(argv) in (0, 2)


def test_a_bare_hub_id_is_a_hub_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from hbt.engine.backbones import load_backbone, registry, resolve_backbone

    spec = resolve_backbone("xlm-roberta-base")  # a registered model by its bare hub id
    assert (spec.source, spec.kind, spec.hub_id) == ("xlm-roberta-base", "hf-raw", "xlm-roberta-base")
    monkeypatch.setattr(registry, "hub_reachable", lambda *a, **k: False)
    with pytest.raises(OfflineError, match="'xlm-roberta-base' needs the Hugging Face Hub"):
        load_backbone("xlm-roberta-base")
    with pytest.raises(ConfigError, match=r"unknown backbone 'bert-base-uncased'.*as a hub id it needs the Hugging"):
        resolve_backbone("bert-base-uncased")  # offline and not cached: most likely a typo
    monkeypatch.setattr(registry, "hub_reachable", lambda *a, **k: True)
    spec = resolve_backbone("bert-base-uncased")  # any bare id once the hub can answer
    assert spec.source == "bert-base-uncased" and spec.hub_id == "bert-base-uncased"


# ---- 4. grid.json is input -----------------------------------------------------------------------------------------


def _grid(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    from hbt.engine.common.io import write_json
    from hbt.engine.runs.grid_doc import grid_document

    grid = tmp_path / "g"
    doc = grid_document(load_preset("smoke"))
    write_json(grid / "grid.json", doc)
    return grid, doc


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "grid.json is empty or not JSON"),
        (b"{not json", "grid.json is empty or not JSON"),
        (b"[1, 2]", "grid.json: not a grid"),
        (
            b'{"schema": "hbt.grid/1", "preset": "smoke", "run": {}, "cells": "x"}',
            "grid.json: 'cells' should be a list",
        ),
        (b'{"schema": "hbt.grid/1", "preset": "smoke", "run": {}, "cells": [{"id": 1}]}', "grid.json: cells[0].id"),
        (b'{"schema": "hbt.grid/1", "preset": "smoke", "run": {"steps": "x"}, "cells": []}', "grid.json: [run]"),
    ],
)
def test_a_bad_grid_json_is_one_line_exit_2(
    tmp_path: Path, content: bytes, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    grid, _ = _grid(tmp_path)
    (grid / "grid.json").write_bytes(content)
    assert main(["run", "smoke", "--resume", str(grid)]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("hbt: ") and needle in err[0], err


@pytest.mark.parametrize("escape", ["../../x", "/tmp/x", "cells/../../x", ""])
def test_a_cell_dir_outside_the_grid_is_refused(
    tmp_path: Path, escape: str, capsys: pytest.CaptureFixture[str]
) -> None:
    grid, doc = _grid(tmp_path)
    doc["cells"][0]["dir"] = escape
    (grid / "grid.json").write_text(json.dumps(doc))
    assert main(["run", "smoke", "--resume", str(grid)]) == 2
    err = _lines(capsys.readouterr().err)
    assert (len(err) == 1 and "leaves the grid folder" in err[0]) or "should be" in err[0], err
    assert not (tmp_path / "x").exists()


def test_resuming_with_another_preset_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid, _ = _grid(tmp_path)
    assert main(["run", "quick", "--resume", str(grid)]) == 2
    err = _lines(capsys.readouterr().err)
    assert err == [
        f"hbt: {grid} is a grid of preset 'smoke', not 'quick': resume it with hbt-bench run smoke --resume {grid}"
    ]


# ---- 5. completeness means a valid results.json ----------------------------------------------------------------------


def test_an_unreadable_results_file_is_not_complete_for_resume_or_listing(tmp_path: Path, data_dir: Path) -> None:
    from hbt.engine.runs.store import ResultsStore

    grid = tmp_path / "runs" / "g"
    preset = replace(_preset(data_dir), strategies=[])
    assert run_grid(preset, grid, EventBus())["complete"] == 1
    run = RunDir(grid / "cells" / CELL_NONE)
    good = run.results_file.read_text()
    run.results_file.write_text(good[: len(good) // 2])  # torn
    assert not run.is_complete()
    row = ResultsStore(tmp_path / "runs").list_runs()[0]
    assert row["status"] == "interrupted"
    summary = run_grid(preset, grid, EventBus(), resume=True)
    assert summary == {"complete": 1, "failed": 0, "skipped": 0, "cancelled": 0}  # re-evaluated, not skipped
    assert run.is_complete() and json.loads(run.results_file.read_text())["datasets"]


@pytest.mark.slow  # ~25 s: trains 8 steps twice (still run in CI)
def test_resume_clears_old_failure_keys_and_counts_the_whole_run(tmp_path: Path, data_dir: Path) -> None:
    from hbt.engine.common.events import TrainStep
    from hbt.engine.common.interrupts import CancelFlag

    preset = replace(_preset(data_dir, steps=8, max_train_pairs=6), baseline=False)  # 3 batches an epoch
    grid = tmp_path / "g"
    flag = CancelFlag()
    bus = EventBus()
    bus.subscribe(lambda e: flag.set() if isinstance(e, TrainStep) and e.step == 5 else None)  # in epoch 2
    assert run_grid(preset, grid, bus, cancel=flag)["cancelled"] == 1
    run = RunDir(grid / "cells" / CELL_XX)
    stopped = run.status()["step"]
    assert run.status()["status"] == "cancelled" and stopped > 3  # in the second epoch
    steps: list[TrainStep] = []
    bus = EventBus()
    bus.subscribe(lambda e: steps.append(e) if isinstance(e, TrainStep) else None)
    run_grid(preset, grid, bus, resume=True)
    status = run.status()
    assert status["status"] == "complete"
    assert not {"error", "step", "checkpoint", "traceback", "note"} & set(status), status
    training = json.loads(run.results_file.read_text())["training"]
    assert sum(training["composition"].values()) == 8
    assert [sum(e.batches.values()) for e in steps] == list(range(stopped + 1, 9))
    assert not run.checkpoints_dir.exists() or not any(run.checkpoints_dir.iterdir())  # item 10: stop's checkpoints


# ---- 6. silent emptiness -------------------------------------------------------------------------------------------


def test_a_language_file_with_no_questions_is_an_error(tmp_path: Path) -> None:
    from hbt.engine.data.lareqa import read_language_file

    path = tmp_path / "de.json"
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": []}]}))
    with pytest.raises(DataError, match=f"{path}: no questions"):
        read_language_file(path, "de")


@pytest.mark.parametrize(
    ("flag", "value"), [("--langs", ","), ("--langs", ""), ("--langs", "en,,de"), ("--langs", " ")]
)
def test_empty_language_values_are_errors(flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", flag, value, "--data-dir", "."]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and flag in err[0] and "empty" in err[0], err


def test_a_preset_with_an_empty_language_is_an_error(tmp_path: Path) -> None:
    from hbt.engine.common.run_config import RunConfig

    with pytest.raises(ConfigError, match="langs"):
        RunConfig(langs=[""]).validate()
    with pytest.raises(ConfigError, match="langs"):
        RunConfig(langs=[]).validate()


def test_a_setting_with_no_queries_prints_a_dash(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["eval", "--backbone", "tiny-random", "--langs", "en", "--max-queries", "4", "--data-dir", str(data_dir),
               "--out", str(tmp_path / "r")])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    macro = next(line for line in out.splitlines() if "macro" in line)
    assert macro.split("│")[3].strip() == MISSING, macro  # the cross-lingual column: no X->Y pair with one language


# ---- 7. caches are rebuildable -------------------------------------------------------------------------------------


def test_a_corrupt_embedding_cache_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    import numpy as np
    from hbt.engine.encoding.encode import EmbeddingCache

    path = tmp_path / "embeddings.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    warnings: list[str] = []
    cache = EmbeddingCache(path, warn=warnings.append)
    cache.put("m", "sentence", {"k": np.ones(3, np.float32)})
    assert list(cache.get("m", "sentence", ["k"])) == ["k"]
    cache.close()
    aside = list(tmp_path.glob("embeddings.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert len(warnings) == 1 and "corrupt" in warnings[0] and str(aside[0]) in warnings[0]


def test_a_local_model_with_corrupt_weights_is_a_user_error(tmp_path: Path) -> None:
    import shutil

    from hbt.engine.backbones import load_backbone
    from hbt.engine.backbones.tiny import ensure_tiny_model

    folder = tmp_path / "m"
    shutil.copytree(ensure_tiny_model(), folder)
    weights = next(folder.rglob("*.safetensors"))
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(UserError, match=f"cannot load backbone '{folder}': "):
        load_backbone(str(folder))


# ---- 8. absurd budgets ---------------------------------------------------------------------------------------------


def test_a_budget_far_beyond_the_training_data_is_refused(tmp_path: Path, data_dir: Path) -> None:
    from hbt.engine.common.run_config import RunConfig
    from hbt.engine.runs.run import execute

    config = RunConfig(backbone="tiny-random", strategy="xx", train_langs=["de", "en"], langs=["en"],
                       max_train_pairs=40, steps=2 * 10**9, batch_size=4, data_dir=str(data_dir))  # fmt: skip
    with pytest.raises(ConfigError, match=r"epochs") as err:
        execute(config, tmp_path / "r")
    assert "epochs over" in str(err.value)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match=r"steps must be at most 2147483647"):  # beyond any counter: refused first
        execute(replace(config, steps=10**12), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_warmup_is_capped() -> None:
    from hbt.engine.common.run_config import RunConfig
    from hbt.engine.training.train import warmup_steps

    assert warmup_steps(RunConfig(steps=100), 100) == 10
    assert warmup_steps(RunConfig(steps=10**9), 10**9) <= 10_000


# ---- 9. terminal safety --------------------------------------------------------------------------------------------


def test_strings_from_files_are_printed_with_control_characters_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hbt.engine.common.io import write_json

    monkeypatch.setenv("COLUMNS", "400")
    run = tmp_path / "runs" / "r"
    write_json(run / "config.json", {"backbone": "evil\x1b[2J\x1b]0;pwned\x07[red]x[/red]", "strategy": "xx"})
    write_json(run / "run.json", {"status": "failed", "error": "bad\x1b[31m\r\nline"})
    assert main(["list", "runs", "--root", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "\\x1b" in out


# ---- 10. Ctrl-C as documented --------------------------------------------------------------------------------------


def test_the_first_press_notice_goes_to_stderr() -> None:
    import io

    from hbt.engine.cli.display import RichListener
    from rich.console import Console

    out, err = io.StringIO(), io.StringIO()
    listener = RichListener(Console(file=out), Console(file=err))
    listener.notice("stopping after the current step")
    assert out.getvalue() == "" and "hbt: stopping after the current step" in err.getvalue()


def test_the_first_press_notice_goes_to_stderr_without_a_terminal_too(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from hbt.engine.cli.plain import PlainListener

    out = io.StringIO()
    PlainListener(out).notice("stopping after the current step")
    assert out.getvalue() == "" and "hbt: stopping after the current step" in capsys.readouterr().err


def test_the_stop_message_names_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import hbt.engine.runs.grid as grid_module
    from hbt.engine.runs.grid_doc import grid_document

    def stopped(preset: Any, out: Path, bus: Any, **kwargs: Any) -> dict[str, int]:
        from hbt.engine.common.io import write_json

        write_json(out / "grid.json", grid_document(preset))
        RunDir(out / "cells" / CELL_NONE).mark("complete")
        RunDir(out / "cells" / CELL_XX).mark("cancelled", error="stopped during training at step 2", step=2)
        return {"complete": 1, "failed": 0, "skipped": 0, "cancelled": 1}

    monkeypatch.setattr(grid_module, "run_grid", stopped)
    assert main(["run", "smoke", "--out", str(tmp_path / "g")]) == 130
    err = _lines(capsys.readouterr().err)
    assert err == [
        f"hbt: stopped cell {CELL_XX} during training at step 2 (1 of 4 cells complete); "
        f"continue with: hbt-bench run smoke --resume {tmp_path / 'g'}"
    ]


# ---- 11. no trust_remote_code -------------------------------------------------------------------------------------


def _saved_mbart(tmp_path: Path) -> Path:
    from hbt.engine.backbones import load_backbone
    from hbt.engine.backbones.tiny_real import write_mbart_dir

    folder = tmp_path / "saved"
    load_backbone(str(write_mbart_dir(tmp_path / "tiny-mbart")), device="cpu").save(str(folder))
    return folder


def test_a_model_folder_runs_no_code_of_its_own(tmp_path: Path) -> None:
    """hbt's own module classes load (sentence-transformers needs trust_remote_code for them); a folder that names
    any other class, or carries Python code or an auto_map, is refused in one line before anything is imported."""
    from hbt.engine.backbones.mbart import MBartEncoderModule
    from hbt.engine.backbones.registry import load_sentence_transformer

    folder = _saved_mbart(tmp_path)
    assert isinstance(load_sentence_transformer(folder)[0], MBartEncoderModule)
    modules = json.loads((folder / "modules.json").read_text("utf-8"))
    hostile = tmp_path / "hostile"
    shutil.copytree(folder, hostile)
    (hostile / "modules.json").write_text(json.dumps([*modules, {"idx": 9, "name": "9", "path": "", "type":
                                                                  "evil.Module"}]), "utf-8")  # fmt: skip
    with pytest.raises(UserError, match=r"evil\.Module is neither sentence-transformers' nor hbt's"):
        load_sentence_transformer(hostile)
    with_code = tmp_path / "with-code"
    shutil.copytree(folder, with_code)
    (with_code / "modeling_evil.py").write_text("raise SystemExit('ran')\n", "utf-8")
    with pytest.raises(UserError, match="must not carry Python code"):
        load_sentence_transformer(with_code)
    mapped = tmp_path / "mapped"
    shutil.copytree(folder, mapped)
    config = next(mapped.rglob("config.json"))
    config.write_text(json.dumps({**json.loads(config.read_text("utf-8")), "auto_map": {"AutoModel": "x--m.C"}}))
    with pytest.raises(UserError, match="auto_map names remote code"):
        load_sentence_transformer(mapped)


# ---- 12. a dead rank is recorded in the cell -----------------------------------------------------------------------


def test_a_worker_group_that_dies_marks_the_cell_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rank aborts after rank 0 marked the cell running (as torchrun's SIGABRT/SIGTERM did): the cell must not stay
    'running'; it is failed with the exit code, in run.json, events.jsonl and on the bus."""
    import sys

    from hbt.engine.common.run_config import RunConfig
    from hbt.engine.runs.launch import Launch, LaunchedRunner

    script = (
        "import os, sys; from pathlib import Path; from hbt.engine.runs.rundir import RunDir; "
        "RunDir(Path(sys.argv[sys.argv.index('--out') + 1])).mark('running', pid=os.getpid()); os.abort()"
    )
    monkeypatch.setattr(Launch, "command", lambda self, args: [sys.executable, "-c", script, *args])
    events: list[Any] = []
    bus = EventBus()
    bus.subscribe(events.append)
    out = tmp_path / "cell"
    with pytest.raises(RuntimeError, match="worker group exited with code"):
        LaunchedRunner(Launch("torchrun", nproc=2), poll_s=0.05)(RunConfig(), out, bus)
    status = RunDir(out).status()
    assert status["status"] == "failed" and "exited with code" in status["error"] and "a rank died" in status["error"]
    assert [e.status for e in read_events(RunDir(out).events_file) if isinstance(e, RunFinished)] == ["failed"]
    assert [e.status for e in events if isinstance(e, RunFinished)] == ["failed"]


def test_grid_tables_show_a_dash_for_a_setting_without_queries(tmp_path: Path) -> None:
    from hbt.engine.report.export import render
    from hbt.engine.report.tables import build_tables

    from tests.test_report_fixtures import DATASET, write_run

    run = tmp_path / "run"
    write_run(run, "hybrid", 0)
    doc = json.loads((run / "results.json").read_text())
    doc["datasets"][DATASET]["cross_lingual"]["macro"].update(map=0.0, n_queries=0)  # e.g. one evaluation language
    (run / "results.json").write_text(json.dumps(doc))
    summary = next(t for t in build_tables(run) if t.key == "summary")
    assert summary.cell("hybrid", "cross mAP") is None and summary.cell("hybrid", "mono mAP") is not None
    row = next(line for line in render([summary], "md").splitlines() if line.startswith("| hybrid"))
    assert "0.0000" not in row


def test_show_escapes_control_characters_from_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from hbt.engine.report.export import print_tables
    from rich.console import Console

    from tests.test_report_fixtures import write_run

    run = tmp_path / "run"
    write_run(run, "hybrid", 0)
    doc = json.loads((run / "results.json").read_text())
    doc["config"]["backbone"] = "evil\x1b]0;pwned\x07\x1b[2J"
    (run / "results.json").write_text(json.dumps(doc))
    (run / "config.json").write_text(json.dumps(doc["config"]))
    out = io.StringIO()
    print_tables(run, Console(file=out, width=400))
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
