"""`hbt-bench doctor`: each check's ok and fail (or warn) paths, the CLI's exit code and the TUI's dialog."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hbt.engine.cli.main import main
from hbt.engine.runs import doctor
from hbt.engine.runs.doctor import Check, exit_code


def test_python_tested_and_other() -> None:
    assert doctor.check_python((3, 11, 7))[0].status == "ok"
    other = doctor.check_python((3, 13, 1))[0]
    assert other.status == "warn" and "tested on Python 3.11" in other.detail


def test_packages_match_drift_and_missing_lock(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("# via pip-compile\ntransformers==5.25.0\n    # via hbt\nTextual==8.2.8\n", "utf-8")
    same = doctor.check_packages(lock, {"transformers": "5.25.0", "textual": "8.2.8", "pip-tools": "7.7.0"})
    assert [c.status for c in same] == ["ok"] and "all 2 packages" in same[0].detail
    drifted = doctor.check_packages(lock, {"transformers": "5.26.0"})
    assert [c.status for c in drifted] == ["warn", "warn", "warn"]
    assert drifted[1].detail == "transformers 5.26.0 installed, lock has 5.25.0"
    assert drifted[2].detail == "textual 8.2.8 in the lock is not installed"
    lock.write_bytes(b"\xff\xfe not utf-8")
    assert doctor.check_packages(lock, {})[0].status == "fail"


def test_the_repository_lock_matches_this_environment() -> None:
    """CI installs with -c requirements.lock: every locked package is installed at its version."""
    checks = doctor.check_packages()
    assert checks[0].status == "ok", [c.detail for c in checks]


def test_data_folder_missing_empty_and_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HBT_DATA_DIR", raising=False)
    assert doctor.check_data(None)[0].status == "warn"
    assert doctor.check_data(str(tmp_path / "nope"))[0].status == "fail"
    assert doctor.check_data(str(tmp_path))[0].status == "fail"
    (tmp_path / "xquad-r").mkdir()
    (tmp_path / "xquad-r" / "de.json").write_text("{}", "utf-8")
    (tmp_path / "xquad-r" / "en.json").write_text("{}", "utf-8")
    found = doctor.check_data(str(tmp_path))[0]
    assert found.status == "ok" and "xquad-r (de en)" in found.detail and "not there: mlqa-r" in found.detail


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_cache_read_only_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path.joinpath("ro").mkdir(mode=0o500)
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path / "ro"))
    assert doctor.check_cache()[0].status == "fail"


def test_cache_writable_unwritable_and_low_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path / "cache"))
    assert doctor.check_cache()[0].status == "ok"
    assert not [p for p in (tmp_path / "cache").iterdir()]  # the probe file is gone
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", "utf-8")
    monkeypatch.setenv("HBT_CACHE_DIR", str(blocker / "cache"))
    unwritable = doctor.check_cache()[0]
    assert unwritable.status == "fail" and "not writable" in unwritable.detail
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path / "cache"))
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda _: usage._replace(free=2**30))
    assert doctor.check_cache()[0].status == "warn"


def test_hub_and_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    assert doctor.check_hub(lambda: True)[0].status == "ok"
    assert doctor.check_hub(lambda: False)[0].status == "warn"
    assert {c.status for c in doctor.check_extras()} == {"ok"}  # the dev extra brings laser's and fast's packages
    real = doctor.importlib.util.find_spec
    monkeypatch.setattr(doctor.importlib.util, "find_spec", lambda name: None if name == "onnx" else real(name))
    fast = next(c for c in doctor.check_extras() if c.name == "extra fast")
    assert fast.status == "warn" and "pip install 'hbt[fast]'" in fast.detail


def test_bundled_model_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path))
    assert "not converted yet" in doctor.check_bundled()[0].detail


def test_exit_code_is_one_on_any_fail() -> None:
    assert exit_code([Check("a", "ok", ""), Check("b", "warn", "")]) == 0
    assert exit_code([Check("a", "ok", ""), Check("b", "fail", "")]) == 1


def test_cli_prints_one_line_per_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--data-dir", str(tmp_path / "missing")])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.strip().splitlines()
    assert lines[0].startswith("ok") and "python" in lines[0]
    assert any(ln.startswith("fail") and "data" in ln and "does not exist" in ln for ln in lines)


async def test_tui_shows_the_same_checks(tmp_path: Path) -> None:
    from hbt.tui.app import HbtApp
    from hbt.tui.screens.doctor import DoctorScreen

    app = HbtApp(runs_root=tmp_path / "runs", data_dir=str(tmp_path / "missing"))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.run_action("doctor")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DoctorScreen) and screen.checks is not None
        names = [c.name for c in screen.checks]
        assert names[:3] == ["python", "torch", "packages"] and "data" in names
        assert next(c for c in screen.checks if c.name == "data").status == "fail"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DoctorScreen)
