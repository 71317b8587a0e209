"""LASER without fairseq: real-format checkpoints, LASER's tokenizer rules, the resumable download, the registry."""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hbt.engine.backbones import laser_files, list_backbones, load_backbone
from hbt.engine.backbones.laser import LaserBiLSTM, laser_sentence_model
from hbt.engine.backbones.laser_files import LaserTextTokenizer, download, ensure_files, load_checkpoint
from hbt.engine.backbones.tiny_real import write_laser_files
from hbt.engine.common.errors import ConfigError, OfflineError, UserError
from torch import nn

TEXTS = [
    "Hello, World!",
    "Столица Финляндии — Хельсинки.",
    "東京大学はいつ設立されましたか？",
    "a",
    "The river flows through the city and into the sea, past the old harbour.",
]


@pytest.fixture(scope="module")
def laser_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("laser")
    write_laser_files(folder, "laser2")
    return folder


# ---- tokenisation ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello,  World!", "hello, world!"),  # Moses: runs of spaces collapse; LASER lower-cases
        ("“Quoted” text", '"quoted" text'),  # curly double quotes -> "
        ("‘single’", '"single"'),  # LASER's MOSES-4.0 parity: ‘ -> " (sacremoses alone gives ')
        ("a\u200bb\tc", "a b c"),  # zero-width space (Cf) and tab (Cc): Unicode category C -> space
        ("wait…", "wait..."),
        ("A – B", "a - b"),
        ("ÉCOLE «Été»", 'école "été"'),
        ("  padded  ", "padded"),
    ],
)
def test_normalisation_follows_laser(laser_dir: Path, text: str, expected: str) -> None:
    assert LaserTextTokenizer(laser_dir / "laser2.spm").normalise(text) == expected


def test_ids_are_dictionary_pieces_then_eos(laser_dir: Path) -> None:
    import sentencepiece as spm

    module = LaserBiLSTM.from_checkpoint(laser_dir / "laser2.pt", laser_dir / "laser2.spm")
    checkpoint = torch.load(laser_dir / "laser2.pt", weights_only=True)
    processor = spm.SentencePieceProcessor(model_file=str(laser_dir / "laser2.spm"))
    # by hand: normalised + lower-cased text through the SentencePiece model, then the checkpoint's dictionary
    pieces = processor.encode('"hello" world', out_type=str)
    expected = [checkpoint["dictionary"][p] for p in pieces] + [2]
    features = module.preprocess(["„Hello“ WORLD", "x"])
    assert features["input_ids"][0].tolist() == expected
    assert features["input_ids"][1, -1].item() == 1  # right padding with <pad> = 1
    unknown = module.preprocess(["qqqq"])["input_ids"][0].tolist()  # pieces missing from the dictionary -> <unk>
    assert unknown[-1] == 2 and set(unknown[:-1]) <= set(checkpoint["dictionary"].values()) | {3}


# ---- checkpoint format and equivalence ---------------------------------------------------------------------------
class ReferenceLaser(nn.Module):
    """LASER's encoder written directly in torch from the checkpoint (laser_encoders/models.py LaserLstmEncoder,
    SentenceEncoder): batch sorted by length, right padding, T x B LSTM over packed sequences, outputs at padding
    positions set to -inf, max over time."""

    def __init__(self, checkpoint: dict[str, Any]) -> None:
        super().__init__()
        p = checkpoint["params"]
        self.dictionary = dict(checkpoint["dictionary"]) | {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
        self.pad = p["padding_idx"]
        self.embed_tokens = nn.Embedding(p["num_embeddings"], p["embed_dim"], padding_idx=self.pad)
        self.lstm = nn.LSTM(p["embed_dim"], p["hidden_size"], p["num_layers"], bidirectional=p["bidirectional"])
        self.load_state_dict(checkpoint["model"])

    def ids(self, piece_line: str) -> list[int]:
        return [self.dictionary.get(t, 3) for t in piece_line.split()] + [2]

    @torch.no_grad()
    def forward(self, piece_lines: list[str]) -> np.ndarray:
        rows = [self.ids(line) for line in piece_lines]
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        tokens = torch.full((len(rows), len(rows[order[0]])), self.pad, dtype=torch.long)
        for j, i in enumerate(order):
            tokens[j, : len(rows[i])] = torch.tensor(rows[i])
        x = self.embed_tokens(tokens).transpose(0, 1)
        packed = nn.utils.rnn.pack_padded_sequence(x, [len(rows[i]) for i in order])
        out, _ = self.lstm(packed)
        x, _ = nn.utils.rnn.pad_packed_sequence(out)
        x = x.masked_fill(tokens.eq(self.pad).t().unsqueeze(-1), float("-inf"))
        sentemb = x.max(dim=0)[0].numpy()
        result = np.empty_like(sentemb)
        result[order] = sentemb
        return result


def test_checkpoint_keys_and_shapes_are_laser_format(laser_dir: Path) -> None:
    checkpoint = load_checkpoint(laser_dir / "laser2.pt")
    assert set(checkpoint) == {"params", "model", "dictionary"}
    p = checkpoint["params"]
    assert {"num_embeddings", "padding_idx", "embed_dim", "hidden_size", "num_layers", "bidirectional"} <= set(p)
    keys = set(checkpoint["model"])
    assert "embed_tokens.weight" in keys and "lstm.weight_ih_l0" in keys and "lstm.weight_hh_l1_reverse" in keys
    assert checkpoint["model"]["embed_tokens.weight"].shape == (p["num_embeddings"], p["embed_dim"])
    assert checkpoint["model"]["lstm.weight_ih_l0"].shape == (4 * p["hidden_size"], p["embed_dim"])
    assert checkpoint["dictionary"]["<pad>"] == 1 and min(v for k, v in checkpoint["dictionary"].items()
                                                           if not k.startswith("<")) >= 4  # fmt: skip
    first = (laser_dir / "laser2.cvocab").read_text("utf-8").splitlines()[0].split(" ")
    assert len(first) == 2 and first[1].isdigit()  # fairseq dictionary lines: "<piece> <count>"


def test_loaded_checkpoint_encodes_like_lasers_encoder(laser_dir: Path) -> None:
    checkpoint = torch.load(laser_dir / "laser2.pt", weights_only=True)
    reference = ReferenceLaser(checkpoint).eval()
    tokenizer = LaserTextTokenizer(laser_dir / "laser2.spm")
    expected = reference([" ".join(tokenizer.pieces(t)) for t in TEXTS])
    module = LaserBiLSTM.from_checkpoint(laser_dir / "laser2.pt", laser_dir / "laser2.spm")
    model = laser_sentence_model(module, device="cpu")
    got = model.encode(TEXTS, batch_size=8, convert_to_numpy=True)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    alone = model.encode(TEXTS[3:4], convert_to_numpy=True)  # padding in a batch never changes a sentence
    np.testing.assert_allclose(alone[0], expected[3], rtol=0, atol=1e-6)
    assert model.get_embedding_dimension() == 2 * checkpoint["params"]["hidden_size"]


def test_saved_module_round_trips(laser_dir: Path, tmp_path: Path) -> None:
    model = laser_sentence_model(LaserBiLSTM.from_checkpoint(laser_dir / "laser2.pt", laser_dir / "laser2.spm"))
    before = model.encode(TEXTS)
    model.save(str(tmp_path / "saved"))
    again = load_backbone(str(tmp_path / "saved"), device="cpu")
    np.testing.assert_allclose(again.encode(TEXTS), before, atol=1e-6)


def test_transformer_checkpoint_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "laser3-zul_Latn.v1.pt"
    torch.save({"cfg": {"model": argparse.Namespace(arch="transformer")}, "model": {}}, path)
    with pytest.raises(UserError, match="not a LASER BiLSTM checkpoint") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    torch.save({"model": {}}, path)
    with pytest.raises(UserError, match="expected params, model, dictionary"):
        load_checkpoint(path)


def test_file_names_follow_lasers_download_script() -> None:
    assert laser_files.file_names("laser2") == ("laser2.pt", "laser2.spm", "laser2.cvocab")
    assert laser_files.file_names("laser3-zul_Latn") == ("laser3-zul_Latn.v1.pt", "laser2.spm", "laser2.cvocab")
    assert laser_files.file_names("laser3-amh_Ethi")[1:] == ("laser3-amh_Ethi.v1.spm", "laser3-amh_Ethi.v1.cvocab")
    with pytest.raises(ConfigError, match="unknown LASER model"):
        laser_files.file_names("laser3-zulu")


# ---- download -----------------------------------------------------------------------------------------------------
class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder with HTTP Range support (206 + Content-Range), as dl.fbaipublicfiles.com does."""

    ranges: list[str] = []  # noqa: RUF012 - the requests seen, shared with the test

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        header = self.headers.get("Range")
        self.ranges.append(header or "")
        start = int(header.split("=")[1].split("-")[0]) if header else 0
        self.send_response(206 if header else 200)
        if header:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server(laser_dir: Path) -> Iterator[str]:
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(laser_dir), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _RangeHandler.ranges = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_resumes_a_partial_file_and_records_its_checksum(laser_dir: Path, server: str, tmp_path: Path) -> None:
    import hashlib

    original = (laser_dir / "laser2.pt").read_bytes()
    (tmp_path / "laser2.pt.part").write_bytes(original[:1000])
    download(f"{server}/laser2.pt", tmp_path / "laser2.pt")
    assert _RangeHandler.ranges == ["bytes=1000-"]
    assert (tmp_path / "laser2.pt").read_bytes() == original and not (tmp_path / "laser2.pt.part").exists()
    record = json.loads((tmp_path / "laser2.pt.json").read_text())
    assert record["size"] == len(original) and record["sha256"] == hashlib.sha256(original).hexdigest()


def test_ensure_files_fetches_only_what_is_missing_or_truncated(laser_dir: Path, server: str, tmp_path: Path) -> None:
    files = ensure_files("laser2", tmp_path, base_url=server)
    assert len(_RangeHandler.ranges) == 3 and laser_files.cached("laser2", tmp_path)
    ensure_files("laser2", tmp_path, base_url=server)
    assert len(_RangeHandler.ranges) == 3  # all cached: no request
    files.checkpoint.write_bytes(files.checkpoint.read_bytes()[:-10])  # truncated on disk: size no longer matches
    assert not laser_files.cached("laser2", tmp_path)
    ensure_files("laser2", tmp_path, base_url=server)
    assert len(_RangeHandler.ranges) == 4 and files.checkpoint.read_bytes() == (laser_dir / "laser2.pt").read_bytes()


def test_offline_download_is_one_line_and_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(OfflineError) as info:
        ensure_files("laser2", tmp_path, base_url="http://127.0.0.1:9")  # nothing listens on the discard port
    assert time.perf_counter() - start < 5 and "\n" not in str(info.value) and "laser2.pt" in str(info.value)


# ---- registry and CLI ---------------------------------------------------------------------------------------------
def test_list_backbones_shows_laser2_downloadable_then_ready(laser_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path))
    row = next(r for r in list_backbones() if r["name"] == "laser2")
    assert row["status"] == "downloadable" and row["available_offline_now"] is False
    assert row["source"] == "laser:laser2"
    write_laser_files(tmp_path / "laser", "laser2")
    row = next(r for r in list_backbones() if r["name"] == "laser2")
    assert row["status"] == "ready" and row["available_offline_now"] is True


def test_eval_backbone_laser2_offline_from_a_prefilled_cache(tmp_path: Path) -> None:
    """`hbt-bench eval --backbone laser2` with no network: the cache holds a real-format (tiny) checkpoint."""
    cache = tmp_path / "cache"
    write_laser_files(cache / "laser", "laser2")
    data = Path(__file__).parent / "fixtures" / "data"
    env = {**os.environ, "HBT_OFFLINE": "1", "HBT_CACHE_DIR": str(cache), "HBT_LASER_URL": "http://127.0.0.1:9"}
    proc = subprocess.run(
        [sys.executable, "-m", "hbt.engine.cli", "eval", "--backbone", "laser2", "--eval-data", "xor-retrieve",
         "--data-dir", str(data), "--out", str(tmp_path / "run"), "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["backbone"] == "laser2"
    xor = results["datasets"]["xor-retrieve"]
    per_pair = xor["cross_lingual"]["per_pair"]  # nested on disk: {query language: {candidate language: metrics}}
    assert per_pair and set(per_pair) <= {"ar", "bn", "fi", "ja", "ko", "ru", "te"}
    assert all(set(row) == {"en"} for row in per_pair.values())
    assert "r@2kt" in xor["answer_recall"]["macro"]


def test_missing_cache_offline_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from hbt.engine.cli.main import main

    monkeypatch.setenv("HBT_OFFLINE", "1")
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path / "empty"))
    data = str(Path(__file__).parent / "fixtures" / "data")
    code = main(["eval", "--backbone", "laser2", "--eval-data", "xor-retrieve", "--corpus-limit", "3",
                 "--data-dir", data, "--out", str(tmp_path / "run")])  # fmt: skip
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "laser2.pt" in lines[0] and lines[0].startswith("hbt: "), lines
    assert not (tmp_path / "run").exists()


def test_a_2000_piece_sentence_is_encoded_whole_as_laser_does(laser_dir: Path) -> None:
    """LASER's SentenceEncoder never truncates (laser_encoders/models.py: every piece + </s>); neither does hbt: a
    2,000+ piece input equals the reference encoder on all of its pieces, and differs from its first 511."""
    checkpoint = torch.load(laser_dir / "laser2.pt", weights_only=True)
    reference = ReferenceLaser(checkpoint).eval()
    tokenizer = LaserTextTokenizer(laser_dir / "laser2.spm")
    long_text = " ".join(f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(260))
    pieces = tokenizer.pieces(long_text)
    assert len(pieces) >= 2000
    module = LaserBiLSTM.from_checkpoint(laser_dir / "laser2.pt", laser_dir / "laser2.spm")
    assert module.max_seq_length is None
    model = laser_sentence_model(module, device="cpu")
    got = model.encode([long_text, TEXTS[0]], convert_to_numpy=True)
    expected = reference([" ".join(pieces), " ".join(tokenizer.pieces(TEXTS[0]))])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    truncated = reference([" ".join(pieces[:511])])
    assert np.abs(truncated[0] - expected[0]).max() > 1e-3  # what the old 511-piece cut encoded instead
    assert load_backbone_spec_max_length() is None


def load_backbone_spec_max_length() -> int | None:
    from hbt.engine.backbones.registry import resolve_backbone

    return resolve_backbone("laser2").max_seq_length
