"""Render report tables as Markdown, CSV, JSON or LaTeX, write them atomically, or print them with Rich.

Numbers: 4 decimals in md, latex and Rich; full precision in csv and json. A mean over several seeds reads
"0.4123 ± 0.0101" (95% CI half-width); in csv such a column is split into "<column>" and "<column> ci95", in json
it is {"mean": .., "ci95": .., "n": ..}. A missing value is "–" (md, latex, Rich), empty (csv) or null (json).
CSV holds one block per table: a "# title" line, the header, the rows, then a blank line.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from ..common.errors import ConfigError, UserError
from ..common.io import write_text
from ..common.text import safe
from ..common.vocabulary import EXPORT_FORMATS
from ..evaluation.results import MISSING
from .source import load_source
from .stats import MeanCI
from .table_rows import Table, Value
from .tables import build_tables

REPORT_SCHEMA = "hbt.report/1"
DECIMALS = 4


def format_value(value: Value, decimals: int | None = DECIMALS, missing: str = MISSING) -> str:
    """Text of one cell: rounded to `decimals` (None: full precision)."""
    if value is None:
        return missing
    if isinstance(value, MeanCI):
        return value.format(decimals)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return repr(value) if decimals is None else f"{value:.{decimals}f}"
    return str(value)


# ---- markdown ------------------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_md(tables: Sequence[Table]) -> str:
    parts = []
    for t in tables:
        lines = [f"### {_md_cell(t.title)}", ""]
        lines.append("| " + " | ".join(_md_cell(c) for c in t.columns) + " |")
        lines.append("|" + "|".join(":---" if i == 0 else "---:" for i in range(len(t.columns))) + "|")
        for row in t.rows:
            lines.append("| " + " | ".join(_md_cell(format_value(v)) for v in row) + " |")
        if t.notes:
            lines.append("")
            lines += [f"- {_md_cell(n)}" for n in t.notes]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# ---- csv -----------------------------------------------------------------------------------------------------


def _has_ci(t: Table, i: int) -> bool:
    return any(isinstance(row[i], MeanCI) and row[i].ci is not None for row in t.rows)  # type: ignore[union-attr]


def render_csv(tables: Sequence[Table]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for k, t in enumerate(tables):
        if k:
            buf.write("\n")
        buf.write(f"# {t.title}\n")
        split = [_has_ci(t, i) for i in range(len(t.columns))]
        header: list[str] = []
        for name, two in zip(t.columns, split, strict=True):
            header += [name, f"{name} ci95"] if two else [name]
        writer.writerow(header)
        for row in t.rows:
            out: list[str] = []
            for v, two in zip(row, split, strict=True):
                if isinstance(v, MeanCI):
                    out.append(repr(v.mean))
                    if two:
                        out.append("" if v.ci is None else repr(v.ci))
                else:
                    out.append(format_value(v, None, ""))
                    if two:
                        out.append("")
            writer.writerow(out)
    return buf.getvalue()


# ---- json ----------------------------------------------------------------------------------------------------


def _json_value(value: Value) -> Any:
    if isinstance(value, MeanCI):
        return value.to_dict()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinite float (anywhere in lists and dicts) as None: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def tables_to_dict(tables: Sequence[Table]) -> dict[str, Any]:
    return {
        "schema": REPORT_SCHEMA,
        "tables": [
            {
                "key": t.key,
                "title": t.title,
                "meta": t.meta,
                "columns": t.columns,
                "rows": [[_json_value(v) for v in row] for row in t.rows],
                "notes": t.notes,
            }
            for t in tables
        ],
    }


def render_json(tables: Sequence[Table]) -> str:
    return json.dumps(_finite(tables_to_dict(tables)), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ---- latex ---------------------------------------------------------------------------------------------------

_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "–": "--",
    "—": "---",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def render_latex(tables: Sequence[Table]) -> str:
    parts = ["% generated by hbt; needs \\usepackage{booktabs}"]
    for t in tables:
        spec = "l" + "r" * (len(t.columns) - 1)
        lines = [
            r"\begin{table}[htbp]",
            r"\centering",
            rf"\caption{{{latex_escape(t.title)}}}",
            rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            " & ".join(latex_escape(c) for c in t.columns) + r" \\",
            r"\midrule",
        ]
        lines += [" & ".join(latex_escape(format_value(v)) for v in row) + r" \\" for row in t.rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        if t.notes:
            lines.append(r"\par\smallskip{\footnotesize " + r" \\ ".join(latex_escape(n) for n in t.notes) + "}")
        lines.append(r"\end{table}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# ---- public API ----------------------------------------------------------------------------------------------

_RENDERERS = {"md": render_md, "csv": render_csv, "json": render_json, "latex": render_latex}


def render(tables: Sequence[Table], fmt: str) -> str:
    """The tables as text in `fmt` (md | csv | json | latex)."""
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ConfigError(f"unknown format {fmt!r} (allowed: {', '.join(EXPORT_FORMATS)})") from None
    return renderer(tables)


def report_tables(path: str | Path, margin: float | None = None) -> list[Table]:
    """Every table of a run or grid directory, then the comparison with 2408.10536's published numbers (when the
    paper has numbers for its datasets): what show, export and the TUI's export write."""
    # (start-up: scipy)
    from .published import compare_tables

    source = load_source(path)
    tables = build_tables(source, margin=margin)
    with contextlib.suppress(UserError):  # the paper publishes nothing for these datasets
        tables += compare_tables(source)
    return tables


def export(path: str | Path, fmt: str, output: str | Path | None = None, margin: float | None = None) -> str:
    """Render the tables of a run or grid directory (with the comparison with the paper); when `output` is given,
    also write it there atomically."""
    if fmt not in _RENDERERS:
        raise ConfigError(f"unknown format {fmt!r} (allowed: {', '.join(EXPORT_FORMATS)})")
    text = render(report_tables(path, margin), fmt)
    if output is not None:
        write_text(output, text)
    return text


def _rich_text(value: Value, compact: bool) -> str:
    if compact and isinstance(value, MeanCI) and value.ci is not None:
        return f"{value.mean:.{DECIMALS}f}\n±{value.ci:.{DECIMALS}f}"
    return format_value(value)


def natural_width(t: Table) -> int:
    """Characters a Rich table needs to show every value on one line (headers may wrap at spaces)."""
    width = 1
    for i, name in enumerate(t.columns):
        longest_word = max((len(w) for w in name.split()), default=0)
        width += max([longest_word, *(len(format_value(row[i])) for row in t.rows)]) + 3
    return width


def rich_table(t: Table, compact: bool = False) -> Any:
    """A rich.table.Table of one table model (values at 4 decimals; notes as the caption).

    compact: a mean ± CI takes two lines ("0.4123" over "±0.0101") so that wide tables fit narrow terminals.
    """

    # names and notes come from results and grid files: control characters escaped (compact values keep their \n)
    caption = Text("\n".join(safe(note) for note in t.notes)) if t.notes else None
    out = RichTable(title=Text(safe(t.title), style="bold"), caption=caption, caption_justify="left")
    cells = [["\n".join(safe(part) for part in _rich_text(v, compact).split("\n")) for v in row] for row in t.rows]
    for i, name in enumerate(t.columns):
        # labels and headers may wrap at spaces; no word and no value is ever cut
        words = [len(w) for w in name.split()]
        if i == 0:
            words += [len(w) for row in cells for w in row[0].split()]
        else:
            words += [len(line) for row in cells for line in row[i].split("\n")]
        out.add_column(Text(safe(name)), justify="left" if i == 0 else "right", min_width=max(words, default=1))
    first_total = len(cells) - t.totals if t.totals else None
    for i, row in enumerate(cells):
        if i == first_total:
            out.add_section()
        out.add_row(
            *(Text(text) for text in row), style="bold" if first_total is not None and i >= first_total else None
        )
    return out


def print_tables(path: str | Path, console: Any = None, margin: float | None = None) -> None:
    """Print every table of a run or grid directory with Rich (to `console`, or a new Console).

    A table too wide for the console shows each mean ± CI on two lines instead of one.
    """
    if console is None:
        console = Console()
    for t in build_tables(path, margin=margin):
        console.print(rich_table(t, compact=natural_width(t) > console.width))
        console.print()
