"""The warehouse: schema, migrations driver, revision-aware upsert and crawl bookkeeping.

`read_short_interest` (pandas) loads on first use, so loaders that never read frames do not import pandas.
"""

from typing import TYPE_CHECKING, Any

from pipelines.warehouse.crawl_state import (
    CrawlState,
    forget_crawl_states,
    get_crawl_state,
    list_crawl_states,
    mark_attempt,
    mark_error,
    mark_success,
    save_cursor,
)
from pipelines.warehouse.engine import create_engine_for, mask_url, read_connection
from pipelines.warehouse.errors import InvalidRowError, WarehouseError, WarehouseNotMigratedError, WarehouseUrlError
from pipelines.warehouse.migrate import current_revision, ensure_migrated, head_revision, upgrade
from pipelines.warehouse.queries import newest_trade_date, row_counts
from pipelines.warehouse.schema import crawl_state, hk_short_interest, table_for, us_short_interest
from pipelines.warehouse.upsert import UpsertResult, upsert_batch, upsert_rows

if TYPE_CHECKING:
    from pipelines.warehouse.read import read_short_interest


def __getattr__(name: str) -> Any:
    if name == "read_short_interest":
        from pipelines.warehouse.read import read_short_interest

        return read_short_interest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CrawlState",
    "InvalidRowError",
    "UpsertResult",
    "WarehouseError",
    "WarehouseNotMigratedError",
    "WarehouseUrlError",
    "crawl_state",
    "create_engine_for",
    "current_revision",
    "ensure_migrated",
    "forget_crawl_states",
    "get_crawl_state",
    "head_revision",
    "hk_short_interest",
    "list_crawl_states",
    "mark_attempt",
    "mark_error",
    "mark_success",
    "mask_url",
    "newest_trade_date",
    "read_connection",
    "read_short_interest",
    "row_counts",
    "save_cursor",
    "table_for",
    "upgrade",
    "upsert_batch",
    "upsert_rows",
    "us_short_interest",
]
