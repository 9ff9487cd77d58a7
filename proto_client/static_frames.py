"""The listing calls' records as the DataFrames futu-api 10.11 returns, built the way it builds them.

One dict per security with the official client's values for absent fields ('N/A', '', False), and
`pd.DataFrame(dicts, columns=...)`, so pandas infers the same dtypes; get_plate_stock's frame has two columns
no dict fills (stock_owner, stock_child_type), NaN as in the official client.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from proto_client.static_info import (
    EXCHANGE_TYPES,
    INDEX_OPTION_TYPES,
    OPTION_TYPES,
    WARRANT_TYPES,
    StaticInfo,
    WatchlistGroup,
)

NA = "N/A"
GROUP_COLUMNS = ["group_name", "group_type"]
USER_SECURITY_COLUMNS = [
    "code", "name", "lot_size", "stock_type", "stock_child_type", "stock_owner", "option_type", "strike_time",
    "strike_price", "suspension", "listing_date", "stock_id", "delisting", "main_contract", "last_trade_time",
]  # fmt: skip
BASIC_INFO_COLUMNS = [
    "code", "name", "lot_size", "stock_type", "stock_child_type", "stock_owner", "option_type", "strike_time",
    "strike_price", "suspension", "listing_date", "stock_id", "delisting", "index_option_type", "main_contract",
    "last_trade_time", "exchange_type",
]  # fmt: skip
PLATE_COLUMNS = [
    "code", "lot_size", "stock_name", "stock_owner", "stock_child_type", "stock_type", "list_time", "stock_id",
    "main_contract", "last_trade_time",
]  # fmt: skip


def _named(table: dict[int, str], value: int | None) -> str:
    return table.get(value, NA) if value is not None else NA


def _security(info: StaticInfo) -> dict[str, object]:
    option = info.option
    owner = info.warrant_owner if info.warrant_owner is not None else (option.owner if option is not None else "")
    return {
        "code": info.code,
        "stock_id": info.stock_id,
        "name": info.name,
        "lot_size": info.lot_size,
        "stock_type": info.type_name,
        "stock_child_type": _named(WARRANT_TYPES, info.warrant_type),
        "stock_owner": owner,
        "listing_date": NA if option is not None else info.list_time,
        "option_type": OPTION_TYPES.get(option.type, NA) if option is not None else NA,
        "strike_time": option.strike_time if option is not None else "",
        "strike_price": option.strike_price if option is not None else NA,
        "suspension": option.suspend if option is not None else NA,
        "delisting": info.delisting if info.delisting is not None else NA,
        "main_contract": info.future_main_contract,
        "last_trade_time": info.future_last_trade_time,
    }


def groups_frame(groups: Sequence[WatchlistGroup]) -> pd.DataFrame:
    return pd.DataFrame([{"group_name": g.name, "group_type": g.type_name} for g in groups], columns=GROUP_COLUMNS)


def user_security_frame(infos: Sequence[StaticInfo]) -> pd.DataFrame:
    return pd.DataFrame([_security(info) for info in infos], columns=USER_SECURITY_COLUMNS)


def basic_info_frame(infos: Sequence[StaticInfo]) -> pd.DataFrame:
    records = []
    for info in infos:
        record = _security(info)
        option = info.option
        record["index_option_type"] = INDEX_OPTION_TYPES.get(option.index_option_type, NA) if option is not None else NA
        record["exchange_type"] = _named(EXCHANGE_TYPES, info.exch_type)
        records.append(record)
    return pd.DataFrame(records, columns=BASIC_INFO_COLUMNS)


def plate_frame(infos: Sequence[StaticInfo]) -> pd.DataFrame:
    records = [
        {
            "stock_id": info.stock_id,
            "lot_size": info.lot_size,
            "code": info.code,
            "stock_name": info.name,
            "list_time": info.list_time,
            "stock_type": info.type_name,
            "main_contract": info.future_main_contract,
            "last_trade_time": info.future_last_trade_time,
        }
        for info in infos
    ]
    return pd.DataFrame(records, columns=PLATE_COLUMNS)
