"""A language-pair matrix drawn as coloured cells (query language rows x candidate language columns)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import RenderResult
from textual.color import Color, Gradient
from textual.widget import Widget

from ...engine.evaluation.results import MISSING

# a perceptually ordered scale (dark = low, bright = high) that reads on light and dark themes alike
SCALE = Gradient.from_colors("#3b0f70", "#33638d", "#21918c", "#5ec962", "#fde725", quality=64)


def cell_colour(value: float, low: float, high: float) -> Color:
    t = 0.5 if high <= low else (value - low) / (high - low)
    return SCALE.get_color(min(max(t, 0.0), 1.0))


class Heatmap(Widget):
    """Rows x columns of numbers, each cell's background coloured on a low..high scale of the matrix.

    The diagonal (query language == candidate language: the monolingual setting) is shown bold and underlined.
    """

    DEFAULT_CSS = """
    Heatmap {
        width: auto;
        height: auto;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        self.values: list[list[float | None]] = []
        self.caption = ""
        self.scale: tuple[float, float] | None = None

    def set_matrix(
        self,
        rows: Sequence[str],
        cols: Sequence[str],
        values: Sequence[Sequence[float | None]],
        caption: str = "",
        scale: tuple[float, float] | None = None,
    ) -> None:
        """scale: the (low, high) of the colour scale (default: this matrix's range); pass one range for several
        matrices (e.g. every strategy of a grid) so that equal colours mean equal values across them."""
        self.scale = scale
        self.row_labels = list(rows)
        self.col_labels = list(cols)
        self.values = [list(r) for r in values]
        self.caption = caption
        self.refresh(layout=True)

    @property
    def bounds(self) -> tuple[float, float] | None:
        if self.scale is not None:
            return self.scale
        xs = [v for row in self.values for v in row if v is not None]
        return (min(xs), max(xs)) if xs else None

    def colour_at(self, row: int, col: int) -> Color | None:
        """The background colour of one cell (None for a missing value)."""
        value = self.values[row][col]
        bounds = self.bounds
        if value is None or bounds is None:
            return None
        return cell_colour(value, *bounds)

    def render(self) -> RenderResult:
        if not self.values:
            return Text("no language pairs", style="dim")
        label_w = max([len(r) for r in self.row_labels] + [5]) + 1
        cell_w = max([len(c) for c in self.col_labels] + [4]) + 2
        low, high = self.bounds or (0.0, 0.0)
        out = Text(no_wrap=True)
        out.append("q \\ c".ljust(label_w), style="dim")
        for c in self.col_labels:
            out.append(c.center(cell_w), style="bold")
        out.append("\n")
        for label, row in zip(self.row_labels, self.values, strict=False):
            out.append(label.ljust(label_w), style="bold")
            for j, value in enumerate(row):
                if value is None:
                    out.append(MISSING.center(cell_w), style="dim")
                    continue
                bg = cell_colour(value, low, high)
                fg = bg.get_contrast_text(1.0)
                style = f"{fg.hex} on {bg.hex}"
                if self.col_labels[j] == label:
                    style += " bold underline"
                out.append(f"{value:.2f}".center(cell_w), style=style)
            out.append("\n")
        out.append("\n")
        out.append(f"{low:.2f} ", style="dim")
        for k in range(12):
            out.append(" ", style=f"on {SCALE.get_color(k / 11).hex}")
        out.append(f" {high:.2f}", style="dim")
        if self.caption:
            out.append(f"   {self.caption}", style="dim")
        return out
