"""The SQuAD v1.1 JSON structure shared by LAReQA (XQuAD-R, MLQA-R) and TyDi QA GoldP: one field validator and one
walk over `data[].paragraphs[]`, so both loaders check the same fields with the same one-line DataError, each naming
the file and the place (`<file>: data[0].paragraphs[2].qas[1]: missing field 'id'`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..common.errors import DataError


def type_name(value: Any) -> str:
    """JSON's name for a decoded value's type (object, list, str, ..., null)."""
    return {dict: "object", list: "list", str: "str", bool: "bool", int: "int", float: "float"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def field(obj: Any, key: str, kind: type, where: str) -> Any:
    """obj[key], checked to be of `kind` (bool is not an int here); DataError naming the place otherwise."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected an object with field {key!r}, got {type_name(obj)}")
    if key not in obj:
        raise DataError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise DataError(f"{where}: field {key!r} should be {kind.__name__}, got {type_name(value)}")
    return value


@dataclass(frozen=True)
class Paragraph:
    """One checked paragraph: its place, article, context and (still unchecked) question entries."""

    article_index: int
    paragraph_index: int
    place: str  # "data[a].paragraphs[p]", without the file name
    article: dict[str, Any]  # the article object (its title, when it has one)
    context: str
    qas: list[Any]
    raw: dict[str, Any]  # the paragraph object, for format-specific fields (LAReQA's sentence_breaks)


def paragraphs(doc: Any, source: str) -> Iterator[Paragraph]:
    """Every paragraph of a SQuAD v1.1 document, with `data` a list, each article an object with a `paragraphs`
    list, each paragraph an object with a str `context` and a `qas` list; DataError at the first that is not."""
    if isinstance(doc, dict) and "data" not in doc:
        raise DataError(f"{source}: missing field 'data' (expected SQuAD v1.1 JSON)")
    for a_i, article in enumerate(field(doc, "data", list, source)):
        for p_i, para in enumerate(field(article, "paragraphs", list, f"{source}: data[{a_i}]")):
            place = f"data[{a_i}].paragraphs[{p_i}]"
            context = field(para, "context", str, f"{source}: {place}")
            qas = field(para, "qas", list, f"{source}: {place}")
            yield Paragraph(a_i, p_i, place, article, context, qas, para)
