"""Named evaluation/training datasets: where their files live locally and how to fetch them when online."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import ConfigError, DataError, OfflineError, one_of
from ..common.hub import hub_reachable
from ..common.vocabulary import DATASET_NAMES
from . import lareqa, miracl, tydi, xor
from .benchmark import Benchmark

LAREQA_URL = "https://raw.githubusercontent.com/google-research-datasets/lareqa/{rev}/{name}/{lang}.json"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    languages: tuple[str, ...]
    parallel: bool  # the same question exists in several languages (X-Y pairs possible)
    layout: str  # where the files live under --data-dir
    source: str  # where they come from online
    licence: str
    pool: str = ""  # for retrieval over a corpus: which passages are ranked (shown in every table)


MIRACL_LANGS = ("ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "yo",
                "zh")  # fmt: skip
DATASETS: dict[str, DatasetSpec] = {
    "xquad-r": DatasetSpec(
        "xquad-r", ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"), True,
        "xquad-r/<lang>.json", "google-research-datasets/lareqa (GitHub) via datasets' downloader", "CC BY-SA 4.0",
    ),
    "mlqa-r": DatasetSpec(
        "mlqa-r", ("ar", "de", "en", "es", "hi", "vi", "zh"), True,
        "mlqa-r/<lang>.json", "google-research-datasets/lareqa@354d67d (GitHub) via datasets", "CC BY-SA 3.0",
    ),
    "tydi": DatasetSpec(
        "tydi", tuple(sorted(tydi.TYDI_LANGS.values())), False,
        "tydi/tydiqa-goldp-v1.1-dev.json or tydiqa-goldp-v1.1-dev.tgz (its per-language files)",
        "hub: google-research-datasets/tydiqa, secondary_task; pool: the gold passages", "Apache-2.0",
    ),
    "tydi-sentence": DatasetSpec(
        "tydi-sentence", tuple(sorted(tydi.TYDI_LANGS.values())), False,
        "as tydi (the passages split into sentences by sentencex: the tydi extra)",
        "hub: google-research-datasets/tydiqa, secondary_task; pool: the passages' sentences (LAReQA-style)",
        "Apache-2.0",
    ),
    "miracl": DatasetSpec(
        "miracl", MIRACL_LANGS, False,
        "miracl/miracl-v1.0-<lang>/{topics,qrels}/*-dev.tsv + miracl[-corpus]/miracl-corpus-v1.0-<lang>/docs-*.jsonl.gz"
        " (or miracl/<lang>/{topics.tsv,qrels.tsv,corpus.jsonl})",
        "hub: miracl/miracl (dev topics, qrels) + miracl/miracl-corpus; pool: the full corpus", "Apache-2.0",
        pool="full corpus",
    ),
    "miracl-judged": DatasetSpec(
        "miracl-judged", MIRACL_LANGS, False, "as miracl (only the judged passages are kept)",
        "hub: miracl/miracl (dev, with its judged passages); pool: judged passages only", "Apache-2.0",
        pool="judged passages only",
    ),
    "xor-retrieve": DatasetSpec(
        "xor-retrieve", xor.XOR_LANGS, False,
        "xor-retrieve/{xor_dev_retrieve_eng_span_v1_1.jsonl, enwiki_20190201_w100.tsv (id, text, title)}",
        "nlp.cs.washington.edu/xorqa (XOR-TyDi v1.1 dev + English Wikipedia passages); questions -> English",
        "CC BY-SA 4.0",
    ),
}  # fmt: skip
if tuple(DATASETS) != DATASET_NAMES:  # (the names the settings' help and checks offer: common/vocabulary.py)
    raise ImportError(f"data/registry.py describes {tuple(DATASETS)}, vocabulary names {DATASET_NAMES}")

LAREQA_REV = {"xquad-r": "master", "mlqa-r": "354d67d"}


def spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise one_of("dataset", name, list(DATASETS))
    return DATASETS[name]


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """--data-dir, else $HBT_DATA_DIR, else None (fetch online)."""
    value = data_dir if data_dir not in (None, "") else os.environ.get("HBT_DATA_DIR")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"data dir {path} does not exist or is not a directory")
    return path


def check_langs(name: str, langs: list[str] | None) -> list[str]:
    allowed = spec(name).languages
    if not langs:
        return list(allowed)
    for lang in langs:
        if lang not in allowed:
            raise one_of(f"language for {name}", lang, list(allowed))
    return list(dict.fromkeys(langs))


def check_eval_langs(names: list[str], langs: list[str] | None) -> None:
    """Every evaluation language must belong to at least one of the evaluation datasets `names`."""
    known = {lang for name in names for lang in spec(name).languages}
    for lang in langs or []:
        if lang not in known:
            raise ConfigError(
                f"unknown language {lang!r} for {', '.join(names)} (allowed: {', '.join(sorted(known))})", key="langs"
            )


def _need_network(name: str) -> None:
    if not hub_reachable():
        raise OfflineError(
            f"{name}: no --data-dir given and the network is unreachable; "
            f"pass --data-dir DIR (or set HBT_DATA_DIR) holding {spec(name).layout}"
        )


def _lareqa_path(name: str, root: Path | None, lang: str) -> Path:
    if root is not None:
        path = root / name / f"{lang}.json"
        if not path.exists():
            raise DataError(f"{path}: file not found (the data dir has no {name} file for language {lang!r})")
        return path
    _need_network(name)
    # (start-up: datasets)
    import datasets

    url = LAREQA_URL.format(rev=LAREQA_REV[name], name=name, lang=lang)
    return Path(datasets.DownloadManager().download(url))


def load_lareqa_parts(name: str, data_dir: Path | None, langs: list[str]) -> list[lareqa.LareqaLanguage]:
    """Per-language parses of a LAReQA dataset (used by evaluation and by training-pair building)."""
    return [lareqa.read_language_file(_lareqa_path(name, data_dir, lang), lang) for lang in langs]


def _load_tydi(data_dir: Path | None, langs: list[str], pool: str) -> Benchmark:
    """TyDi QA GoldP dev with the passage or sentence pool (tydi.POOL_RULES): every release file under tydi/."""
    if data_dir is not None:
        if not (data_dir / "tydi").is_dir():
            raise DataError(f"{data_dir / 'tydi'}: no such folder (TyDi GoldP wants tydi/tydiqa-goldp-v1.1-dev.json)")
        bench = tydi.load_folder(data_dir / "tydi", pool)
    else:
        _need_network("tydi")
        # (start-up: datasets)
        import datasets

        rows = datasets.load_dataset("google-research-datasets/tydiqa", "secondary_task", split="validation")
        bench = tydi.from_rows(rows, "hub:google-research-datasets/tydiqa", pool)
    missing = [lang for lang in langs if not bench.queries_in(lang)]
    if missing and len(missing) == len(langs):
        raise DataError(f"tydi: no questions for language(s) {', '.join(missing)}")
    return bench.subset(langs)


def _load_miracl(data_dir: Path | None, langs: list[str], empty_topics: str) -> miracl.CorpusTask:
    """The full-corpus pool: topics and qrels read now, each corpus located (streamed at evaluation)."""
    if data_dir is not None:
        return miracl.load_task(data_dir / "miracl", langs, empty_topics)
    _need_network("miracl")
    return miracl.load_hub_task(langs, empty_topics)


def _load_miracl_judged(data_dir: Path | None, langs: list[str], empty_topics: str) -> Benchmark:
    if data_dir is not None:
        return miracl.load_dir(data_dir / "miracl", langs, pool="judged", empty_topics=empty_topics)
    _need_network("miracl-judged")
    return miracl.load_hub(langs, empty_topics)


LOADERS: dict[str, Callable[[Path | None, list[str]], Benchmark | miracl.CorpusTask]] = {
    "xquad-r": lambda root, langs: lareqa.build_benchmark("xquad-r", load_lareqa_parts("xquad-r", root, langs)),
    "mlqa-r": lambda root, langs: lareqa.build_benchmark("mlqa-r", load_lareqa_parts("mlqa-r", root, langs)),
    "tydi": lambda root, langs: _load_tydi(root, langs, "passage"),
    "tydi-sentence": lambda root, langs: _load_tydi(root, langs, "sentence"),
}
MIRACL_LOADERS: dict[str, Callable[[Path | None, list[str], str], Benchmark | miracl.CorpusTask]] = {
    "miracl": _load_miracl,
    "miracl-judged": _load_miracl_judged,
}


def load_eval(
    name: str,
    data_dir: str | Path | None = None,
    langs: list[str] | None = None,
    corpus_limit: int | None = None,
    empty_topics: str = "keep",
) -> Benchmark | miracl.CorpusTask | xor.XorTask:
    """Load a named evaluation dataset restricted to `langs` (default: all of the dataset's languages): an in-memory
    Benchmark, or for `miracl` (whole corpora) a CorpusTask whose corpora are streamed at evaluation. empty_topics:
    MIRACL's topics without a relevant judgement, keep (scored 0, as trec_eval) or drop."""
    chosen = check_langs(name, langs)
    if name == "xor-retrieve":  # corpus_limit N: gold passages + N sampled, in memory; None: the whole collection
        bench: Benchmark | miracl.CorpusTask | xor.XorTask = xor.load(resolve_data_dir(data_dir), chosen, corpus_limit)
    elif name in MIRACL_LOADERS:
        bench = MIRACL_LOADERS[name](resolve_data_dir(data_dir), chosen, empty_topics)
    else:
        bench = LOADERS[name](resolve_data_dir(data_dir), chosen)
    if not bench.queries:
        raise ConfigError(f"{name}: no queries in languages {', '.join(chosen)}")
    return bench


def load_benchmark(name: str, data_dir: str | Path | None = None, langs: list[str] | None = None) -> Benchmark:
    """An in-memory benchmark (every dataset but `miracl`, whose corpora are streamed: see load_eval)."""
    bench = load_eval(name, data_dir, langs)
    if not isinstance(bench, Benchmark):
        raise ConfigError(f"{name} ranks whole corpora and has no in-memory form (use load_eval)")
    return bench
