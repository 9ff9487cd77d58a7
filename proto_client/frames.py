"""Short-interest rows as the pandas DataFrames the vendor's `get_short_interest` returns.

Scripts written against futu-api read these frames by column name and dtype, so they are built the way
futu-api 10.11 builds them: `pd.DataFrame` over one dict per row (so pandas infers the same dtypes), in the
documented column order, and an empty frame that still has its columns. futu-api leaves an absent value out
of the row's dict and fills a column no row carried with None; a None in the dict gives pandas the same
column (NaN in a numeric column, an object column of None when every row lacks it), which the differential
test checks on replies with absent values.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from proto_client.records import ShortInterestRow
from proto_client.security import Market

US_COLUMNS = (
    "timestamp",
    "timestamp_str",
    "shares_short",
    "short_percent",
    "avg_daily_share_volume",
    "days_to_cover",
    "close_price",
    "last_close_price",
)
HK_COLUMNS = (
    "timestamp",
    "timestamp_str",
    "aggregated_short",
    "aggregated_short_ratio",
    "close_price",
    "last_close_price",
)
COLUMNS = {Market.US: US_COLUMNS, Market.HK: HK_COLUMNS}


def _record(row: ShortInterestRow, columns: Sequence[str]) -> dict[str, object]:
    """The row under the documented names (the records use the same ones); an absent value is None."""
    values = {name: getattr(row, name) for name in columns[2:]}
    return {"timestamp": row.timestamp, "timestamp_str": row.trade_date.isoformat(), **values}


def market_frame(market: Market, rows: Sequence[ShortInterestRow]) -> pd.DataFrame:
    """One market's rows in that market's documented columns; no rows gives an empty frame with the columns."""
    columns = list(COLUMNS[market])
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame([_record(row, columns) for row in rows], columns=columns)


def page_frames(market: Market, rows: Sequence[ShortInterestRow], next_key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(us_df, hk_df) for one page of `market`: the other market's frame is empty, both carry next_key."""
    us_df = market_frame(Market.US, rows if market is Market.US else ())
    hk_df = market_frame(Market.HK, rows if market is Market.HK else ())
    us_df.attrs["next_key"] = next_key
    hk_df.attrs["next_key"] = next_key
    return us_df, hk_df
