"""What a person reads in the UI about a table and about one code's load: schema, counts, newest rows."""

from __future__ import annotations

from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pipelines.crawl.crawler import CodeResult
from pipelines.tables import markdown_table

# One code's materialization metadata, written by the assets and read back by `runner`.
ROWS_INSERTED = "rows_inserted"
ROWS_UPDATED = "rows_updated"
ROWS_UNCHANGED = "rows_unchanged"
REQUESTS = "requests"
PAGES = "pages"
RATE_LIMIT_WAIT_SECONDS = "rate_limit_wait_seconds"
ELAPSED_SECONDS = "elapsed_seconds"
MODE = "mode"
GATEWAY = "gateway"  # host:port of the gateway that served the code
NEWEST_TRADE_DATE = "newest_trade_date"
NEWEST_ROWS = "newest_rows"

PREVIEW_ROWS = 5
# The preview leaves out the audit stamps: they say when we loaded, not what was published.
_PREVIEW_SKIP = frozenset({"code", "first_loaded_at", "updated_at"})


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


def code_metadata(result: CodeResult, schema: dg.TableSchema) -> dict[str, Any]:
    """One code's materialization metadata from its load, as read in the UI; `stored_metadata` adds the rest."""
    return {
        ROWS_INSERTED: result.inserted,
        ROWS_UPDATED: result.updated,
        ROWS_UNCHANGED: result.unchanged,
        REQUESTS: result.requests,
        PAGES: result.pages,
        RATE_LIMIT_WAIT_SECONDS: round(result.waited_seconds, 3),
        ELAPSED_SECONDS: round(result.elapsed_seconds, 3),
        MODE: result.mode,
        GATEWAY: result.gateway,
        NEWEST_TRADE_DATE: str(result.newest_trade_date) if result.newest_trade_date else "none",
        "dagster/column_schema": schema,
    }


def stored_metadata(conn: sa.Connection, table: sa.Table, code: str) -> dict[str, Any]:
    """What the warehouse holds for the code after its load: its row count and newest rows."""
    return {
        NEWEST_ROWS: dg.MetadataValue.md(newest_rows_preview(conn, table, code)),
        "dagster/row_count": row_count(conn, table, code),
    }


def newest_rows_preview(conn: sa.Connection, table: sa.Table, code: str, limit: int = PREVIEW_ROWS) -> str:
    """The code's newest rows as a markdown table."""
    columns = [c for c in table.columns if c.name not in _PREVIEW_SKIP]
    query = sa.select(*columns).where(table.c.code == code).order_by(table.c.trade_date.desc()).limit(limit)
    rows = conn.execute(query).all()
    if not rows:
        return f"no rows for {code}"
    return markdown_table([c.name for c in columns], rows)


def row_count(conn: sa.Connection, table: sa.Table, code: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(table.c.code == code)).scalar_one())
