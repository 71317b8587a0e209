"""All three settings from one encoding of each unique text."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hbt.engine.data.registry import load_benchmark
from hbt.engine.encoding.encode import EmbeddingCache
from hbt.engine.evaluation.evaluate import evaluate_benchmark
from hbt.engine.evaluation.metrics import query_metrics
from hbt.engine.retrieval.search import relevant_ranks


def test_all_settings_encode_each_text_once(data_dir: Path, counting_encoder) -> None:
    langs = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
    bench = load_benchmark("xquad-r", data_dir, langs).subset(max_queries=40, seed=1)
    result = evaluate_benchmark(bench, counting_encoder)
    s = result.summary
    assert len(s.mono.per_language) == 11
    assert len(s.cross.per_pair) == 110
    assert len(s.multi.per_language) == 11
    assert len(s.to_json()["cross_lingual"]["per_pair"]["de"]) == 10  # nested on disk: query -> candidate language
    counts = Counter(counting_encoder.calls)
    assert max(counts.values()) == 1, "a text was encoded twice"
    unique_q = {q.text for q in bench.queries}
    unique_c = {c.sentence for c in bench.candidates}
    assert {t for r, t in counts if r == "query"} == unique_q
    assert {t for r, t in counts if r == "passage"} == unique_c
    assert s.encoded == {"queries": len(unique_q), "candidates": len(unique_c)}
    for m in s.multi.per_language.values():
        assert m["n_queries"] == 40 and 0.0 <= m["map"] <= 1.0


def test_settings_agree_with_a_direct_computation(data_dir: Path, counting_encoder) -> None:
    bench = load_benchmark("xquad-r", data_dir, ["de", "en"]).subset(max_queries=25, seed=0)
    result = evaluate_benchmark(bench, counting_encoder)
    enc = counting_encoder
    de_q = [q for q in bench.queries if q.lang == "de"]
    en_c = [c for c in bench.candidates if c.lang == "en"]
    qv = np.stack([enc._vec(q.text) for q in de_q])
    cv = np.stack([enc._vec(c.sentence) for c in en_c])
    rel = [np.array([i for i, c in enumerate(en_c) if c.id in bench.qrels[q.id]]) for q in de_q]
    expected = np.mean([query_metrics(r)["map"] for r in relevant_ranks(qv, cv, rel)])
    assert result.summary.cross.per_pair["de", "en"]["map"] == pytest.approx(expected, abs=1e-9)
    assert result.per_query_ap["cross/de-en"][de_q[0].id] == pytest.approx(
        query_metrics(relevant_ranks(qv[:1], cv, rel[:1])[0])["map"], abs=1e-6
    )
    # multilingual: 2 relevant per query (de + en answer), bias fields present and in range
    bias = result.summary.bias
    assert set(bias.per_language) == {"de", "en"}
    assert 0 <= bias.per_language["de"]["own_share@10"] <= 1
    assert bias.overall["map_spread"] >= 0


def test_partly_parallel_mlqa_counts_only_answerable_pairs(data_dir: Path, counting_encoder) -> None:
    bench = load_benchmark("mlqa-r", data_dir, ["de", "en"]).subset(max_queries=60, seed=0)
    s = evaluate_benchmark(bench, counting_encoder).summary
    n_de = len(bench.queries_in("de"))
    # every de question also exists in en, but not every en question exists in de
    assert s.cross.per_pair["de", "en"]["n_queries"] == n_de
    assert s.cross.per_pair["en", "de"]["n_queries"] <= len(bench.queries_in("en"))


def test_embedding_cache_skips_second_encoding(tmp_path: Path, data_dir: Path, counting_encoder) -> None:
    bench = load_benchmark("xquad-r", data_dir, ["en", "de"]).subset(max_queries=10)
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    first = evaluate_benchmark(bench, counting_encoder, cache=cache).summary
    n_calls = len(counting_encoder.calls)
    second = evaluate_benchmark(bench, counting_encoder, cache=cache).summary
    assert len(counting_encoder.calls) == n_calls, "cached texts were encoded again"
    assert second.multi.macro["map"] == pytest.approx(first.multi.macro["map"])
    counting_encoder.fingerprint = "changed-weights"
    evaluate_benchmark(bench, counting_encoder, cache=cache)
    assert len(counting_encoder.calls) == 2 * n_calls, "a new model fingerprint must not reuse old vectors"


def test_encoder_halves_its_batch_on_out_of_memory() -> None:
    """Encoding uses the largest batch that fits: a model that runs out of memory above 8 texts ends at 8."""
    from hbt.engine.encoding.encode import SentenceTransformerEncoder

    class SmallMemoryModel:
        def __init__(self) -> None:
            self.prompts: dict[str, str] = {}
            self.sizes: list[int] = []

        def encode(self, texts: list[str], batch_size: int, **kw: object) -> np.ndarray:
            self.sizes.append(batch_size)
            if batch_size > 8:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return np.ones((len(texts), 4), dtype=np.float32)

    model = SmallMemoryModel()
    encoder = SentenceTransformerEncoder(model, "fp", batch_size=64)
    assert encoder.encode(["a"] * 20, "query").shape == (20, 4)
    assert model.sizes == [64, 32, 16, 8] and encoder.batch_size == 8
    encoder.encode(["b"], "passage")
    assert model.sizes[-1] == 8  # stays at the size that fit


def test_encoder_does_not_swallow_other_errors() -> None:
    from hbt.engine.encoding.encode import SentenceTransformerEncoder

    class Broken:
        def __init__(self) -> None:
            self.prompts: dict[str, str] = {}

        def encode(self, texts: list[str], batch_size: int, **kw: object) -> np.ndarray:
            raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        SentenceTransformerEncoder(Broken(), "fp", batch_size=64).encode(["a"], "query")
