"""What a person reads in the UI about a table and about one code's load: schema, then per code one line of figures.

The column schema and descriptions are the table's, so they live on the asset definition only. Each code's
materialization is written for every code every week, so it carries its figures as one line, its description,
rather than as metadata entries: Dagster wraps every entry in about 130 bytes of envelope, and eight of them
would more than double what a code adds to the event log (bench/event_log_footprint.py). The line is written
by `load_summary` and read back by `read_summary` (the demo's table, the benchmarks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pipelines.crawl.crawler import CodeResult

INCREMENTAL = "incremental"


class SummaryFormatError(ValueError):
    """A materialization's description is not a load summary this version writes."""


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """The figures a person compares between one code's loads."""

    inserted: int
    updated: int
    unchanged: int
    rows: int | None  # None when the row count could not be read after the load
    newest_trade_date: str  # ISO date, or "none"
    requests: int
    waited_seconds: float
    mode: str
    gateway: str

    def line(self) -> str:
        """E.g. `new 12 rev 1 same 49; 327 rows to 2026-04-15; 2 req 0.4 s wait; 10.0.0.5:11111`.

        Terse on purpose: Dagster stores a description three times in the event (description, message, user
        message), so every character here costs three bytes per code per week. The mode is named only when it is
        not the weekly refresh's "incremental": `...; full 10.0.0.5:11111`.
        """
        mode = "" if self.mode == INCREMENTAL else f"{self.mode} "
        rows = "?" if self.rows is None else str(self.rows)
        return (
            f"new {self.inserted} rev {self.updated} same {self.unchanged}; {rows} rows to "
            f"{self.newest_trade_date}; {self.requests} req {self.waited_seconds:.1f} s wait; "
            f"{mode}{self.gateway or '-'}"
        )


_LINE = re.compile(
    r"new (?P<inserted>\d+) rev (?P<updated>\d+) same (?P<unchanged>\d+); (?P<rows>\d+|\?) rows to "
    r"(?P<newest>\S+); (?P<requests>\d+) req (?P<waited>[\d.]+) s wait; (?:(?P<mode>\S+) )?(?P<gateway>\S+)"
)


def load_summary(result: CodeResult, rows: int | None) -> LoadSummary:
    return LoadSummary(
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
        rows=rows,
        newest_trade_date=str(result.newest_trade_date) if result.newest_trade_date else "none",
        requests=result.requests,
        waited_seconds=round(result.waited_seconds, 1),
        mode=result.mode,
        gateway=result.gateway,
    )


def read_summary(description: str | None) -> LoadSummary:
    """The figures of a materialization written by `load_summary(...).line()`."""
    found = _LINE.fullmatch(description or "")
    if found is None:
        raise SummaryFormatError(f"not a load summary: {description!r}")
    rows = found["rows"]
    return LoadSummary(
        inserted=int(found["inserted"]),
        updated=int(found["updated"]),
        unchanged=int(found["unchanged"]),
        rows=None if rows == "?" else int(rows),
        newest_trade_date=found["newest"],
        requests=int(found["requests"]),
        waited_seconds=float(found["waited"]),
        mode=found["mode"] or INCREMENTAL,
        gateway="" if found["gateway"] == "-" else found["gateway"],
    )


def column_schema(table: sa.Table) -> dg.TableSchema:
    """The table's columns as Dagster shows them (`dagster/column_schema`), comments included."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=str(column.type.compile(dialect=postgresql.dialect())).lower(),
                description=column.comment,
                constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)),
            )
            for column in table.columns
        ]
    )


def table_metadata(table: sa.Table) -> dict[str, Any]:
    """Definition-level metadata of an asset backed by `table`."""
    return {"dagster/column_schema": column_schema(table), "dagster/table_name": table.name}


def row_count(conn: sa.Connection, table: sa.Table, code: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(table.c.code == code)).scalar_one())
