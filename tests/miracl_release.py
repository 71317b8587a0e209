"""A tiny MIRACL v1.0 dev release in the exact shipped formats, for tests and the fixture run in docs/miracl.md.

Layout (as `git clone` of the hub datasets miracl/miracl and miracl/miracl-corpus puts it, both under DATA/):
    DATA/miracl/miracl-v1.0-<lang>/topics/topics.miracl-v1.0-<lang>-dev.tsv     qid<TAB>query
    DATA/miracl/miracl-v1.0-<lang>/qrels/qrels.miracl-v1.0-<lang>-dev.tsv       qid<TAB>Q0<TAB>docid<TAB>relevance
    DATA/miracl-corpus/miracl-corpus-v1.0-<lang>/docs-<n>.jsonl.gz               {"docid", "title", "text"} lines
docids follow MIRACL's `<article>#<passage>` schema. The texts are written for this fixture (not MIRACL's).

    python -m tests.miracl_release DATA     # writes the tree under DATA
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

# lang -> corpus files -> passages (docid, title, text), in file order
CORPUS: dict[str, list[list[tuple[str, str, str]]]] = {
    "en": [
        [
            (
                "12#0",
                "Anarchism",
                "Anarchism is a political philosophy that is skeptical of all justifications for authority.",
            ),
            (
                "39#0",
                "Albedo",
                "Albedo is the measure of the diffuse reflection of solar radiation by a body.",
            ),
            (
                "39#1",
                "Albedo",
                "Fresh snow has a high albedo, while the dark surface of the ocean reflects little sunlight.",
            ),
            ("290#0", "A", "A is the first letter of the Latin alphabet, used in English and many other languages."),
            ("303#0", "Alabama", "Alabama is a state in the southeastern United States; its capital is Montgomery."),
            ("303#1", "Alabama", "The largest city in Alabama by population is Huntsville, ahead of Birmingham."),
            (
                "305#0",
                "Achilles",
                "In Greek mythology Achilles was a hero of the Trojan War and the greatest of the Greek warriors.",
            ),
        ],
        [
            (
                "305#1",
                "Achilles",
                "Achilles was killed by Paris, whose arrow struck his heel, the only vulnerable part of his body.",
            ),
            (
                "307#0",
                "Abraham Lincoln",
                "Abraham Lincoln was the 16th president of the United States, from 1861 until 1865.",
            ),
            (
                "307#1",
                "Abraham Lincoln",
                "Lincoln was assassinated by John Wilkes Booth at Ford's Theatre in Washington.",
            ),
            (
                "308#0",
                "Aristotle",
                "Aristotle was a Greek philosopher, a student of Plato and the teacher of Alexander the Great.",
            ),
            (
                "309#0",
                "An American in Paris",
                "An American in Paris is a jazz-influenced orchestral piece by George Gershwin (1928).",
            ),
            (
                "324#0",
                "Academy Awards",
                "The Academy Awards, or Oscars, are awards for artistic and technical merit in the film industry.",
            ),
            ("330#0", "Actrius", "Actrius is a 1997 Catalan film directed by Ventura Pons."),
            # unjudged passages close to the topics (some would be relevant: MIRACL's judgements are incomplete);
            # a judged-pool run never sees them, a full-corpus run ranks them and counts them as not relevant
            ("305#2", "Achilles", "Who killed Achilles, and how, is told in later poems rather than in the Iliad."),
            ("2001#0", "Montgomery, Alabama", "Montgomery is the capital city of the U.S. state of Alabama."),
            ("308#1", "Aristotle", "As a boy, Alexander the Great was taught by Leonidas and by Lysimachus."),
        ],
    ],
    "de": [
        [
            (
                "1#0",
                "Alan Smithee",
                "Alan Smithee steht als Pseudonym für einen fiktiven Regisseur, der Filme verantwortet.",
            ),
            (
                "3#0",
                "Actinium",
                "Actinium ist ein chemisches Element mit dem Elementsymbol Ac und der Ordnungszahl 89.",
            ),
            ("3#1", "Actinium", "Actinium wurde 1899 von André-Louis Debierne in Pechblende entdeckt."),
            (
                "7#0",
                "Ang Lee",
                "Ang Lee ist ein taiwanischer Filmregisseur, der zweimal den Oscar für die beste Regie gewann.",
            ),
            ("9#0", "Anschluss", "Der Anschluss Österreichs an das Deutsche Reich erfolgte im März 1938."),
            (
                "10#0",
                "Aussagenlogik",
                "Die Aussagenlogik ist ein Teilgebiet der Logik, das sich mit Aussagen und ihrer Verknüpfung befasst.",
            ),
            (
                "13#0",
                "Abraham Lincoln",
                "Abraham Lincoln war von 1861 bis 1865 der 16. Präsident der Vereinigten Staaten.",
            ),
            ("3#2", "Actinium", "Friedrich Oskar Giesel entdeckte das Actinium 1902 unabhängig ein zweites Mal."),
        ],
    ],
}
TOPICS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("0", "Who killed Achilles?"),
        ("1", "What is the capital of Alabama?"),
        ("2", "Who was the teacher of Alexander the Great?"),
        ("3", "Which surfaces reflect the most sunlight?"),
    ],
    "de": [
        ("0", "Wann wurde Actinium entdeckt?"),
        ("1", "Wer war der 16. Präsident der USA?"),
        ("2", "Wann war der Anschluss Österreichs?"),
    ],
}
# (qid, docid, relevance): MIRACL judges about ten passages per query, most of them 0
QRELS: dict[str, list[tuple[str, str, int]]] = {
    "en": [
        ("0", "305#1", 1), ("0", "305#0", 0), ("0", "307#1", 0),
        ("1", "303#0", 1), ("1", "303#1", 0),
        ("2", "308#0", 1), ("2", "12#0", 0),
        ("3", "39#1", 1), ("3", "39#0", 1), ("3", "290#0", 0),
    ],
    "de": [
        ("0", "3#1", 1), ("0", "3#0", 0),
        ("1", "13#0", 1), ("1", "7#0", 0),
        ("2", "9#0", 1), ("2", "1#0", 0),
    ],
}  # fmt: skip


def write_gz_jsonl(path: Path, docs: list[tuple[str, str, str]]) -> None:
    """A corpus shard as MIRACL ships it: gzip-compressed JSON lines {docid, title, text} (mtime 0: same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"docid": d, "title": t, "text": x}, ensure_ascii=False) + "\n" for d, t, x in docs)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(lines.encode("utf-8"))


def write_release(
    data: Path,
    corpus: dict[str, list[list[tuple[str, str, str]]]] | None = None,
    topics: dict[str, list[tuple[str, str]]] | None = None,
    qrels: dict[str, list[tuple[str, str, int]]] | None = None,
) -> Path:
    """Write the release tree under `data` (default: this module's fixture); returns data / 'miracl'."""
    corpus, topics, qrels = corpus or CORPUS, topics or TOPICS, qrels or QRELS
    for lang, files in corpus.items():
        base = data / "miracl" / f"miracl-v1.0-{lang}"
        (base / "topics").mkdir(parents=True, exist_ok=True)
        (base / "qrels").mkdir(parents=True, exist_ok=True)
        (base / "topics" / f"topics.miracl-v1.0-{lang}-dev.tsv").write_text(
            "".join(f"{q}\t{text}\n" for q, text in topics[lang]), encoding="utf-8"
        )
        (base / "qrels" / f"qrels.miracl-v1.0-{lang}-dev.tsv").write_text(
            "".join(f"{q}\tQ0\t{d}\t{r}\n" for q, d, r in qrels[lang]), encoding="utf-8"
        )
        for i, docs in enumerate(files):
            write_gz_jsonl(data / "miracl-corpus" / f"miracl-corpus-v1.0-{lang}" / f"docs-{i}.jsonl.gz", docs)
    return data / "miracl"


if __name__ == "__main__":
    print(write_release(Path(sys.argv[1])))
