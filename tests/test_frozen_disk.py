"""The frozen bottom's outputs shared across processes through the cache folder (issue 25, item 3): a cell run as a
worker process or a job reads what another process computed instead of computing it again, with the same bits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hbt.engine.backbones import load_backbone
from hbt.engine.backbones.frozen_cache import FrozenCache
from hbt.engine.backbones.frozen_disk import SUFFIX, FrozenDisk, disk_tier_wanted
from hbt.engine.backbones.partial import enable_partial, partial_state, warm_frozen_cache

from tests.conftest import REPO
from tests.executors_common import exported, grid_doc, needs_data, run_smoke

TEXTS = [f"query: {w} number {i} of the long list" for i in range(40) for w in ("river", "Buch")]
PROMPTLESS = {None: TEXTS}


def _cache(root: Path | None, max_bytes: int | None = None) -> FrozenCache:
    cache = FrozenCache()
    cache.disk = FrozenDisk(root, max_bytes) if root is not None else None
    return cache


def _rows(cache: FrozenCache, model: object) -> dict[str, torch.Tensor]:
    """Every entry of the model's frozen part held in `cache` (key -> [tokens, hidden])."""
    assert partial_state(model) is not None
    rows: dict[str, torch.Tensor] = cache.rows(model[0].frozen_fingerprint())  # type: ignore[index]
    return rows


def _warm(root: Path | None, batch_size: int = 8, max_bytes: int | None = None) -> tuple[object, FrozenCache]:
    model = load_backbone("tiny-random")
    cache = _cache(root, max_bytes)
    enable_partial(model, 1, cache=cache)
    warm_frozen_cache(model, PROMPTLESS, batch_size=batch_size)
    return model, cache


def test_a_second_process_reads_every_row_the_first_computed_bit_for_bit(tmp_path: Path) -> None:
    _, alone = _warm(None)  # no disk tier: the reference
    model_a, first = _warm(tmp_path / "frozen")
    model_b, second = _warm(tmp_path / "frozen")  # a fresh store, as a new process has
    n = len(set(TEXTS))
    assert (first.stats.computed, first.stats.disk_hits) == (n, 0)
    assert (second.stats.computed, second.stats.disk_hits) == (0, n)
    want = _rows(alone, model_a)
    for rows in (_rows(first, model_a), _rows(second, model_b)):
        assert rows.keys() == want.keys() and len(rows) == n
        assert all(torch.equal(rows[k], want[k]) for k in want)
    shards = list((tmp_path / "frozen").rglob(f"*{SUFFIX}"))
    assert len(shards) == -(-n // 8)  # one shard per computed batch of 8
    assert not list((tmp_path / "frozen").rglob("*.lock"))  # claims are released and removed


def test_a_training_step_gives_the_same_loss_from_disk_rows(tmp_path: Path) -> None:
    """The model's forward (the path training and evaluation take) through disk rows equals the plain forward."""
    _warm(tmp_path / "frozen")
    model = load_backbone("tiny-random").eval()
    feats = dict(model.preprocess(TEXTS[:12]))
    with torch.no_grad():
        want = model[0](dict(feats))["token_embeddings"]
    cache = _cache(tmp_path / "frozen")
    enable_partial(model, 1, cache=cache)
    with torch.no_grad():
        got = model[0](dict(feats))["token_embeddings"]
    mask = feats["attention_mask"].bool()
    assert cache.stats.disk_hits == 12 and cache.stats.computed == 0
    torch.testing.assert_close(got[mask], want[mask], rtol=1e-5, atol=1e-5)


def test_a_removed_or_damaged_shard_is_computed_again(tmp_path: Path) -> None:
    root = tmp_path / "frozen"
    _, first = _warm(root)
    shards = sorted(root.rglob(f"*{SUFFIX}"))
    reader = _cache(root)
    model = load_backbone("tiny-random")
    enable_partial(model, 1, cache=reader)
    fp = model[0].frozen_fingerprint()
    reader.disk.read(fp, ["no such key"])  # indexes every shard
    lost = len(json.loads(_meta(shards[0])["keys"])) + len(json.loads(_meta(shards[1])["keys"]))
    shards[0].unlink()  # removed by another process's bound after this one indexed it
    shards[1].write_bytes(b"not a safetensors file")  # damaged
    warm_frozen_cache(model, PROMPTLESS, batch_size=8)
    assert reader.stats.computed == lost and reader.stats.disk_hits == len(set(TEXTS)) - lost
    assert _meta(shards[1])["format"] == "hbt-frozen-v1"  # rewritten whole by the process that computed it again
    want = _rows(first, model)
    got = _rows(reader, model)
    assert all(torch.equal(got[k], want[k]) for k in want)


def _meta(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as shard:
        return dict(shard.metadata() or {})


def test_the_folder_stays_within_its_bound_dropping_the_oldest_shards(tmp_path: Path) -> None:
    root = tmp_path / "frozen"
    _warm(root, batch_size=8)
    sizes = sorted(p.stat().st_size for p in root.rglob(f"*{SUFFIX}"))
    bound = sum(sizes) // 2
    _warm(tmp_path / "bounded", batch_size=8, max_bytes=bound)
    kept = list((tmp_path / "bounded").rglob(f"*{SUFFIX}"))
    assert 0 < len(kept) < len(sizes)
    assert FrozenDisk(tmp_path / "bounded").nbytes() <= bound


def test_an_unwritable_cache_folder_leaves_the_training_going(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    model, cache = _warm(blocker / "frozen")
    assert cache.stats.computed == len(set(TEXTS)) and cache.disk is not None
    assert "a-file" in cache.disk.error  # the tier stopped writing; the rows are in memory as without it
    _, alone = _warm(None)
    want = _rows(alone, model)
    assert all(torch.equal(_rows(cache, model)[k], want[k]) for k in want)


def test_another_frozen_part_never_reads_these_rows(tmp_path: Path) -> None:
    _warm(tmp_path / "frozen")
    model = load_backbone("tiny-random")
    with torch.no_grad():
        model[0].auto_model.embeddings.word_embeddings.weight[5] += 1.0  # another bottom
    cache = _cache(tmp_path / "frozen")
    enable_partial(model, 1, cache=cache)
    warm_frozen_cache(model, PROMPTLESS, batch_size=8)
    assert cache.stats.disk_hits == 0 and cache.stats.computed == len(set(TEXTS))
    assert len([p for p in (tmp_path / "frozen").iterdir() if p.is_dir()]) == 2  # one folder per frozen part


SWITCH = [("", True, True), ("", False, False), ("1", False, True), ("on", False, True), ("0", True, False),
          ("off", True, False)]  # fmt: skip


@pytest.mark.parametrize(("value", "default", "want"), SWITCH)
def test_the_environment_switch(monkeypatch: pytest.MonkeyPatch, value: str, default: bool, want: bool) -> None:
    monkeypatch.setenv("HBT_FROZEN_CACHE_DISK", value)
    assert disk_tier_wanted(default) is want


WARMER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from hbt.engine.backbones import load_backbone
    from hbt.engine.backbones.frozen_cache import FrozenCache
    from hbt.engine.backbones.frozen_disk import FrozenDisk
    from hbt.engine.backbones.partial import enable_partial, warm_frozen_cache
    root, me, texts = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    model = load_backbone("tiny-random")
    cache = FrozenCache()
    cache.disk = FrozenDisk(root / "frozen")
    enable_partial(model, 1, cache=cache)
    (root / f"ready-{me}").touch()
    while len(list(root.glob("ready-*"))) < 2:  # both start warming together
        time.sleep(0.01)
    warm_frozen_cache(model, {None: texts}, batch_size=4)
    fp = model[0].frozen_fingerprint()
    rows = {k: v.numpy().tobytes().hex() for k, v in cache.rows(fp).items()}
    print(json.dumps({"computed": cache.stats.computed, "read": cache.stats.disk_hits, "rows": rows}))
    """
)


@pytest.mark.slow  # two interpreters importing torch (~10 s)
def test_two_processes_warming_the_same_texts_split_them_and_agree(tmp_path: Path) -> None:
    texts = [f"passage: sentence {i} " + "word " * (i % 17) for i in range(400)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", WARMER, str(tmp_path)]
    procs = [subprocess.Popen([*args, me, json.dumps(texts)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
             for me in ("a", "b")]  # fmt: skip
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    n = len(texts)
    print("split:", [(o["computed"], o["read"]) for o in outs])
    assert sum(o["computed"] for o in outs) == n  # every text computed by exactly one of the two
    assert all(o["computed"] + o["read"] == n for o in outs)
    assert outs[0]["rows"] == outs[1]["rows"] and len(outs[0]["rows"]) == n  # the same bits in both


@pytest.mark.slow  # two smoke grids (~40 s)
def test_worker_processes_share_the_bottom_and_give_the_local_numbers(tmp_path: Path) -> None:
    """smoke training its top layer: `processes` (each cell a worker process, the bottom shared through the cache
    folder) exports the numbers a local grid (the bottom shared in memory) does; later cells read, never compute."""
    needs_data()
    cache = {"HBT_CACHE_DIR": str(tmp_path / "cache")}
    run_smoke(tmp_path / "local", "--train-top-layers", "1", **cache)
    assert not (tmp_path / "cache" / "frozen").exists()  # the local grid keeps it in memory
    run_smoke(tmp_path / "procs", "--train-top-layers", "1", "--executor", "processes", "--workers", "2", **cache)
    assert exported(tmp_path / "procs") == exported(tmp_path / "local")
    warmed = {}
    for cell in grid_doc(tmp_path / "procs")["cells"]:
        events = (tmp_path / "procs" / cell["dir"] / "events.jsonl").read_text()
        lines = [json.loads(x)["message"] for x in events.splitlines() if "frozen cache:" in x]
        warmed[cell["strategy"]] = lines
        assert cell["strategy"] == "none" or "shared with other processes through" in events
    assert warmed["none"] == []
    read = [line for s in ("xx", "xy", "hybrid") for line in warmed[s] if "read from the cache folder" in line]
    assert len(read) >= 1  # at least the cells started after the first trained one read its rows
    assert any(line.startswith("frozen cache: 0 of") for line in read)


def test_the_folder_is_hbt_frozen_dir_or_the_cache_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hbt.engine.backbones.frozen_cache import SHARED, share_through_disk

    monkeypatch.setattr(SHARED, "disk", None)
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HBT_FROZEN_CACHE_DISK", raising=False)
    monkeypatch.delenv("HBT_FROZEN_DIR", raising=False)
    assert share_through_disk(default=False) is None  # the local grid: memory only
    tier = share_through_disk(default=True)  # a worker process
    assert tier is not None and tier.root == tmp_path / "cache" / "frozen"
    monkeypatch.setattr(SHARED, "disk", None)
    monkeypatch.setenv("HBT_FROZEN_DIR", str(tmp_path / "shared"))
    tier = share_through_disk(default=True)
    assert tier is not None and tier.root == tmp_path / "shared"
