"""The movers report: the watchlist's largest changes since each code's previous report, the US
days-to-cover leaders, and one chart of the top movers, as one markdown document.

The chart is embedded as a PNG data URI so the report is a single metadata value the Dagster UI shows
as it is; one image per report, never one per code, and a palette PNG, keep the event log small.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from pipelines.analysis.movers import CoverLeader, Mover, days_to_cover_leaders, top_movers
from pipelines.analysis.series import read_series
from pipelines.tables import markdown_table

TOP_MOVERS = 10
CHARTED_MOVERS = 3
CHART_HISTORY = timedelta(days=730)
# Narrower than a full-screen chart: the Dagster UI shows markdown metadata in a dialog about 1000 px wide.
CHART_WIDTH_PX = 960


@dataclass(frozen=True, slots=True)
class Report:
    markdown: str
    movers: tuple[Mover, ...]
    cover_leaders: tuple[CoverLeader, ...]
    chart_png: bytes | None  # None when no code has two reports yet


def build_report(conn: sa.Connection, codes: Collection[str] | None = None) -> Report:
    """The report over `codes` (every stored code when None)."""
    movers = tuple(top_movers(conn, codes, limit=TOP_MOVERS))
    leaders = tuple(days_to_cover_leaders(conn, codes, limit=TOP_MOVERS))
    png = _chart(conn, movers[:CHARTED_MOVERS]) if movers else None
    sections = ["## Largest changes since the previous report", _movers_table(movers)]
    sections += ["## US days to cover", _leaders_table(leaders)]
    if png is not None:
        charted = ", ".join(m.code for m in movers[:CHARTED_MOVERS])
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        sections += [f"## Top movers: {charted}", f"![short interest and close price of {charted}]({uri})"]
    return Report("\n\n".join(sections), movers, leaders, png)


def _movers_table(movers: tuple[Mover, ...]) -> str:
    if not movers:
        return "No code has two reports yet."
    rows = [
        (
            m.code,
            m.name or "",
            m.trade_date,
            m.previous_trade_date,
            _count(m.short_shares),
            _signed(m.short_shares_change),
            "" if m.change_percent is None else f"{m.change_percent:+.1f} %",
            "" if m.short_percent is None else f"{m.short_percent:.2f} %",
        )
        for m in movers
    ]
    header = ["code", "name", "report", "previous", "shares short", "change", "change %", "short %"]
    return markdown_table(header, rows)


def _leaders_table(leaders: tuple[CoverLeader, ...]) -> str:
    if not leaders:
        return "No US code reports days to cover yet."
    rows = [
        (
            r.code,
            r.name or "",
            r.trade_date,
            f"{r.days_to_cover:.2f}",
            _count(r.shares_short),
            "" if r.short_percent is None else f"{r.short_percent:.2f} %",
        )
        for r in leaders
    ]
    return markdown_table(["code", "name", "report", "days to cover", "shares short", "short % of float"], rows)


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _signed(value: int | None) -> str:
    return "" if value is None else f"{value:+,}"


def _chart(conn: sa.Connection, movers: tuple[Mover, ...]) -> bytes:
    # matplotlib loads when a report is drawn, not in every process that loads the code location.
    from pipelines.analysis.chart import compact_png, draw

    series = [read_series(conn, m.code, since=m.trade_date - CHART_HISTORY) for m in movers]
    title = "Top movers: short interest and close price, last two years"
    return compact_png(draw(series, title=title, width_px=CHART_WIDTH_PX))
