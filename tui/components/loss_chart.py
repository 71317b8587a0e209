"""Training loss, one line per strategy. The project's own widget: it wraps textual-plot's PlotWidget so that the
plotting library can be swapped without touching the screens (they only call `set_curves`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static
from textual_plot import HiResMode, PlotWidget
from textual_plot.plot_widget import LegendLocation

from ...engine.common.vocabulary import BASELINE

COLOURS = {BASELINE: "#9e9e9e", "xx": "#4ea1d3", "xy": "#e8a33d", "hybrid": "#8bc34a"}
EXTRA_COLOURS = ("#d66ba0", "#b39ddb", "#4dd0e1", "#ff8a65", "#aed581")

Curves = Mapping[str, Sequence[tuple[float, float]]]


def colour_of(name: str, index: int = 0) -> str:
    return COLOURS.get(name, EXTRA_COLOURS[index % len(EXTRA_COLOURS)])


class _Plot(PlotWidget, can_focus=False):
    """The plot itself: not focusable, so arrow keys stay with the screen's tables."""


class LossChart(Widget):
    """A loss chart: `set_curves({"xx": [(step, loss), ...], ...})` redraws it (coalesced to one redraw a frame)."""

    DEFAULT_CSS = """
    LossChart {
        height: 1fr;
        layers: base overlay;
    }
    LossChart > _Plot {
        layer: base;
        height: 1fr;
    }
    LossChart > #empty {
        layer: overlay;
        width: 100%;
        height: 100%;
        content-align: center middle;
        color: $text-muted;
    }
    """

    def __init__(
        self, title: str = "loss", *, x_label: str = "step", empty: str = "no training steps yet",
        id: str | None = None, classes: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(id=id, classes=classes)
        self.title = title
        self.x_label = x_label
        self.empty = empty
        self._curves: dict[str, list[tuple[float, float]]] = {}
        self._pending = False
        self._limits: tuple[float, float, float, float] | None = None
        self._drawn = False  # the curves held have been drawn

    def compose(self) -> ComposeResult:
        yield _Plot(allow_pan_and_zoom=False)
        yield Static(self.empty, id="empty")

    def on_mount(self) -> None:
        plot = self.query_one(_Plot)
        plot.margin_top, plot.margin_bottom, plot.margin_left = 1, 2, 7
        self._redraw()

    @property
    def curves(self) -> dict[str, list[tuple[float, float]]]:
        return {k: list(v) for k, v in self._curves.items()}

    @property
    def point_count(self) -> int:
        return sum(len(v) for v in self._curves.values())

    def set_curves(self, curves: Curves) -> None:
        new = {name: [(float(x), float(y)) for x, y in points] for name, points in curves.items() if points}
        if new == self._curves and self._drawn:
            return  # unchanged: no redraw (the Run screen refreshes its other numbers more often than the curves move)
        self._curves = new
        if self.is_mounted and not self._pending:
            self._pending = True
            self.call_after_refresh(self._redraw)

    def _set_limits(self, plot: PlotWidget) -> None:
        """The data's span on each axis, except a span of zero (one step, or a flat loss), where the plot would draw
        an axis of width 2e-6 with unreadable ticks: then one step on each side, and 10% of the value above and
        below. Set explicitly (and kept: `limits`), so what is drawn is known without reading the plot's state."""
        xs = [x for points in self._curves.values() for x, _ in points]
        ys = [y for points in self._curves.values() for _, y in points]
        if not xs:
            plot.set_xlimits(None, None)
            plot.set_ylimits(None, None)
            self._limits = None
            return
        x0, x1 = min(xs), max(xs)
        if x0 == x1:
            x0, x1 = x0 - 1.0, x1 + 1.0
        y0, y1 = min(ys), max(ys)
        if y0 == y1:
            pad = abs(y0) * 0.1 or 0.5
            y0, y1 = y0 - pad, y1 + pad
        plot.set_xlimits(x0, x1)
        plot.set_ylimits(y0, y1)
        self._limits = (x0, x1, y0, y1)

    def limits(self) -> tuple[float, float, float, float] | None:
        """The axes' (x min, x max, y min, y max) as drawn; None while there is nothing to draw."""
        return self._limits

    def _redraw(self) -> None:
        self._pending = False
        if not self.is_mounted:
            return
        self._drawn = True
        plot = self.query_one(_Plot)
        plot.clear()
        self.query_one("#empty", Static).display = not self._curves
        for i, (name, points) in enumerate(self._curves.items()):
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            colour = colour_of(name, i)
            if len(points) == 1:
                plot.scatter(xs, ys, marker="●", marker_style=colour, label=name)
            else:
                plot.plot(xs, ys, line_style=colour, hires_mode=HiResMode.BRAILLE, label=name)
        self._set_limits(plot)
        plot.set_xlabel(self.x_label)
        plot.set_ylabel(self.title)
        plot.show_legend(LegendLocation.TOPRIGHT, is_visible=bool(self._curves))
