"""Short interest against the price, one panel per code, as a PNG.

Analysts read short interest as a trend next to the price, so each panel puts shares short (filled),
the short position as a percentage (dashed) and the close price on axes of their own over one time axis.
Drawn with matplotlib's object API on the Agg canvas: no display, no pyplot state shared between calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from PIL import Image

from pipelines.analysis.series import PERCENT_LABEL, CodeSeries

WIDTH_PX = 1200
MIN_HEIGHT_PX = 700
PANEL_HEIGHT_PX = 300
DPI = 100
# Enough for the chart's flat fills, lines and anti-aliased text.
PALETTE_COLORS = 64
_SHARES_COLOR = "#1f77b4"
_PERCENT_COLOR = "#ff7f0e"
_PRICE_COLOR = "#333333"


def _shares(value: float, _position: object = None) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}"


def draw(series: Sequence[CodeSeries], *, title: str | None = None, width_px: int = WIDTH_PX) -> Figure:
    """A figure with one panel per series, `width_px` wide (a 1200-pixel screen by default)."""
    if not series:
        raise ValueError("nothing to draw: no codes given")
    height = max(MIN_HEIGHT_PX, PANEL_HEIGHT_PX * len(series) + 100)
    figure = Figure(figsize=(width_px / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(series), 1, squeeze=False, sharex=False)[:, 0]
    for ax, one in zip(axes, series, strict=True):
        _panel(ax, one)
    if title:
        figure.suptitle(title, fontsize=14)
    return figure


def _panel(ax: Axes, series: CodeSeries) -> None:
    ax.set_title(series.label, loc="left", fontsize=12, fontweight="bold")
    if not series.dates:
        ax.text(0.5, 0.5, f"no stored rows for {series.code}", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    shares = [float("nan") if v is None else float(v) for v in series.short_shares]
    percent = [float("nan") if v is None else v for v in series.short_percent]
    price = [float("nan") if v is None else v for v in series.close_price]
    dates = np.array(series.dates, dtype="datetime64[D]")
    ax.fill_between(dates, shares, step="post", alpha=0.25, color=_SHARES_COLOR)
    ax.step(dates, shares, where="post", color=_SHARES_COLOR, label="shares short")
    ax.set_ylabel("shares short", color=_SHARES_COLOR)
    ax.yaxis.set_major_formatter(FuncFormatter(_shares))
    ax.tick_params(axis="y", colors=_SHARES_COLOR)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)

    price_ax = ax.twinx()
    price_ax.plot(dates, price, color=_PRICE_COLOR, linewidth=1.2, label="close price")
    price_ax.set_ylabel("close price", color=_PRICE_COLOR)

    percent_ax = ax.twinx()
    percent_ax.spines["right"].set_position(("outward", 60))
    percent_ax.plot(dates, percent, color=_PERCENT_COLOR, linestyle="--", linewidth=1.2)
    label = f"short {PERCENT_LABEL[series.market]}"
    percent_ax.set_ylabel(label, color=_PERCENT_COLOR)
    percent_ax.tick_params(axis="y", colors=_PERCENT_COLOR)
    percent_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}%"))

    handles = [*ax.get_legend_handles_labels()[0], *price_ax.get_legend_handles_labels()[0]]
    handles.append(percent_ax.get_lines()[0])
    ax.legend(handles, ["shares short", "close price", label], loc="upper left", fontsize=9, framealpha=0.8)


def png_bytes(figure: Figure) -> bytes:
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def compact_png(figure: Figure, colors: int = PALETTE_COLORS) -> bytes:
    """The figure as a palette PNG: a third the size of `png_bytes`, for a chart stored in every report."""
    with Image.open(BytesIO(png_bytes(figure))) as image:
        buffer = BytesIO()
        image.convert("RGB").quantize(colors=colors).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def save_png(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="png", dpi=DPI)
