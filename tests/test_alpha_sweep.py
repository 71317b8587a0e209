"""The alpha sweep (hybrid_p as a list: one cell per alpha x seed), one evaluation length for every cell, and the
commands around them: `plot --kind alpha`, `plan`, `--margin`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hbt.engine.cli.main import main
from hbt.engine.common.errors import ConfigError
from hbt.engine.runs.grid_doc import GridCell, grid_document
from hbt.engine.runs.presets import apply_overrides, load_preset, parse_preset, preset_from_dict, preset_to_dict
from hbt.tui.screens.setup import parse_setting

from tests.claims_grids import Arm, write_grid


def _preset(run: dict[str, object], **head: object) -> dict[str, object]:
    base = {"name": "sweep", "backbones": ["tiny-random"], "strategies": ["hybrid"], "seeds": [0, 1]}
    run = {"train_langs": ["de", "en"], "langs": ["de", "en"], **run}
    return {"preset": {**base, **head}, "run": run}


def test_a_list_of_alphas_makes_one_cell_per_alpha_and_seed() -> None:
    preset = parse_preset(_preset({"hybrid_p": [0, 0.5, 1]}), "p.toml")
    assert preset.hybrid_ps == [0.0, 0.5, 1.0]
    ids = [c["id"] for c in grid_document(preset)["cells"]]
    assert ids == [
        "tiny-random__none__s0",
        *(f"tiny-random__hybrid-a{a}__s{s}" for a in ("0", "0.5", "1") for s in (0, 1)),
    ]
    cells = grid_document(preset)["cells"]
    assert [c.get("hybrid_p") for c in cells] == [None, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    assert all(c["strategy"] in ("none", "hybrid") for c in cells)
    alphas = [GridCell.from_dict(cells[i]).config(preset.run).hybrid_p for i in (5, 1)]
    assert alphas == [1.0, 0.0]
    assert parse_preset(_preset({"hybrid_p": [0.3]}), "p.toml").hybrid_ps is None  # one value: no sweep


def test_a_sweep_and_its_margin_reach_the_tui_s_submitting_process() -> None:
    """The TUI hands its preset to the submitting process as JSON: the sweep's arms and the margin survive."""
    preset = parse_preset(_preset({"hybrid_p": [0, 0.5, 1]}, noninferiority_margin=0.02), "p.toml")
    back = preset_from_dict(json.loads(json.dumps(preset_to_dict(preset))))
    assert back.hybrid_ps == [0.0, 0.5, 1.0] and back.noninferiority_margin == 0.02
    assert back.cells() == preset.cells() and len(back.cells()) == 7
    plain = preset_from_dict(json.loads(json.dumps(preset_to_dict(parse_preset(_preset({}), "p.toml")))))
    assert plain.hybrid_ps is None and plain.noninferiority_margin is None


@pytest.mark.parametrize(
    ("value", "message"),
    [([0, 1.5], "p.toml: [run] hybrid_p[1]: must be in [0, 1], got 1.5"), ([0.5, 0.5], "repeats a value"),
     (["a", 1], "[run] hybrid_p[0]: expected number, got string 'a'"), ([], "needs at least one value")],
)  # fmt: skip
def test_a_bad_alpha_list_is_one_line(value: list[object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_preset(_preset({"hybrid_p": value}), "p.toml")


def test_cli_and_tui_take_an_alpha_list() -> None:
    preset = apply_overrides(load_preset("smoke"), hybrid_p=[0.0, 0.25, 1.0], strategies=["hybrid"])
    assert [arm for _, arm, _ in preset.cells()] == ["none", "hybrid-a0", "hybrid-a0.25", "hybrid-a1"]
    assert apply_overrides(preset, hybrid_p=0.4).hybrid_ps is None  # a single value ends the sweep
    with pytest.raises(ConfigError, match=r"--hybrid-p\[0\]: must be in \[0, 1\]"):
        apply_overrides(load_preset("smoke"), hybrid_p=[2.0, 0.5])
    assert parse_setting("hybrid_p", "0, 0.5, 1") == [0.0, 0.5, 1.0] and parse_setting("hybrid_p", "0.3") == 0.3
    alpha = load_preset("alpha-cpu")
    assert alpha.hybrid_ps == [0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0] and len(alpha.cells()) == 1 + 7 * 4
    assert alpha.noninferiority_margin == 0.01 and alpha.run.eval_max_seq_length == 512


def test_sweep_grid_end_to_end_evaluates_every_cell_at_one_length(tmp_path: Path, data_dir: Path) -> None:
    """A tiny-model sweep (alpha 0 and 1, one seed) trained at 32 tokens and evaluated at 64: every cell, the
    untrained baseline included, records and uses 64; alpha 0 trains on X-Y batches only, alpha 1 on X-X-mono."""
    toml = tmp_path / "sweep.toml"
    toml.write_text(
        '[preset]\nname = "sweep"\nbackbones = ["tiny-random"]\nstrategies = ["hybrid"]\nseeds = [0]\n'
        '[run]\ntrain_data = "mlqa-r"\neval_data = ["xquad-r"]\nlangs = ["de", "en"]\ntrain_langs = ["de", "en"]\n'
        "max_queries = 8\nmax_train_pairs = 40\nsteps = 3\nbatch_size = 4\nlr = 1e-3\nsave_model = false\n"
        "max_seq_length = 32\neval_max_seq_length = 64\nhybrid_p = [0.0, 1.0]\n",
        encoding="utf-8",
    )
    out = tmp_path / "grid"
    assert main(["run", str(toml), "--data-dir", str(data_dir), "--out", str(out)]) == 0
    docs = {p.parent.name: json.loads(p.read_text()) for p in (out / "cells").glob("*/results.json")}
    assert set(docs) == {"tiny-random__none__s0", "tiny-random__hybrid-a0__s0", "tiny-random__hybrid-a1__s0"}
    assert {d["evaluation"]["max_seq_length"] for d in docs.values()} == {64}
    assert {d["config"]["eval_max_seq_length"] for d in docs.values()} == {64}
    assert docs["tiny-random__hybrid-a0__s0"]["config"]["hybrid_p"] == 0.0
    assert docs["tiny-random__hybrid-a0__s0"]["training"]["composition"]["xx"] == 0
    assert docs["tiny-random__hybrid-a1__s0"]["training"]["composition"]["xy"] == 0
    assert main(["plot", str(out), "--kind", "alpha"]) == 0
    (png,) = (out / "plots").glob("alpha_*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_alpha_needs_a_sweep_and_plan_needs_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = write_grid(tmp_path / "plain", {"xx": Arm(seeds=(0,)), "xy": Arm(seeds=(0,)), "hybrid": Arm(seeds=(0,))})
    assert main(["plot", str(plain), "--kind", "alpha"]) == 2
    assert main(["plan", str(plain)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("hbt: ") and "not an alpha sweep" in err[0]
    assert err[1].startswith("hbt: ") and "no trained arm with 2 or more seeds" in err[1]
    assert main(["plan", str(plain), "--effect", "0"]) == 2


def test_plan_says_how_many_seeds_a_difference_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hbt.engine.report.arms import Comparisons
    from hbt.engine.report.power_tables import plan_tables
    from hbt.engine.report.seed_test import seeds_needed

    grid = write_grid(tmp_path / "g", {"none": Arm(seeds=(0,)), "xx": Arm(run_sd=0.01), "xy": Arm(run_sd=0.01)})
    (table,) = plan_tables(grid, 0.02)
    from hbt.engine.report.source import load_source
    from hbt.engine.report.table_rows import groups

    (group,) = groups(load_source(grid))
    noise = Comparisons(group).noise("multi", ["xx", "xy"])
    assert noise is not None
    assert table.cell("multi mAP", "seeds needed") == seeds_needed(0.02, noise)
    assert table.cell("multi mAP", "seeds now") == 3
    assert main(["plan", str(grid), "--effect", "0.02"]) == 0
    assert "Seeds needed for a difference of 0.02" in capsys.readouterr().out


def test_show_and_export_take_a_margin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tie = Arm(seeds=(0, 1, 2, 3, 4), run_sd=0.001)
    grid = write_grid(tmp_path / "g", {"xx": tie, "xy": Arm(mono=0.63, seeds=tie.seeds, run_sd=0.001), "hybrid": tie})
    assert main(["export", str(grid), "--format", "json", "--margin", "0.05"]) == 0
    doc = json.loads(capsys.readouterr().out)
    claims = next(t for t in doc["tables"] if t["key"] == "claims")
    assert claims["meta"]["margin"] == 0.05
    assert main(["show", str(grid), "--margin", "2"]) == 2
