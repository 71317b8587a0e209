"""XOR-Retrieve's official metric, R@kt: does a short answer occur within the first k thousand tokens retrieved?

As defined by XOR QA's evaluation script (github.com/AkariAsai/XORQA, evals/eval_xor_retrieve.py, and the paper):
for each question, the retrieved passages are word-tokenised with NLTK's `word_tokenize` in rank order, tokens are
accumulated passage by passage and cut at exactly k tokens (k = 2,000 and 5,000); the question counts as a hit when
any of its answers is a substring (case-sensitive) of those tokens joined by single spaces. Questions whose only
answers are "yes"/"no" (or have none) do not count. Per language the hit rate; the headline is the unweighted mean
over languages. The script prints percentages; hbt reports fractions (x 100 for the paper's numbers).

Tokenisation note: `word_tokenize` first splits sentences with NLTK's punkt model, a data package downloaded
separately (`python -m nltk.downloader punkt_tab`). Without it hbt tokenises each passage as one line
(`preserve_line=True`): the only difference is that sentence-final periods inside a passage stay attached to their
word, so a few passages count fewer tokens; the summary names the tokeniser used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from statistics import mean

from hbt.engine.evaluation.results import N_QUERIES

BUDGETS = (2000, 5000)
DEPTH = 100  # passages retrieved per question for R@kt (100-word passages: about 130 tokens each)
YES_NO = ("yes", "no")


def metric_name(budget: int) -> str:
    return f"r@{budget // 1000}kt"


@functools.cache
def tokenizer() -> tuple[str, Callable[[str], list[str]]]:
    """(name, tokenise function): NLTK word_tokenize with punkt when its data is installed, else per line."""
    try:
        import nltk
        from nltk.tokenize import word_tokenize
    except ImportError as exc:
        from hbt.engine.common.errors import UserError

        raise UserError("XOR-Retrieve's R@kt needs nltk: pip install nltk") from exc
    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
        return "nltk word_tokenize (punkt)", word_tokenize
    except LookupError:
        return "nltk word_tokenize (preserve_line: no punkt data)", functools.partial(word_tokenize, preserve_line=True)


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
