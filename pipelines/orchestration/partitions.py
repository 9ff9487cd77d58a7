"""One dynamic partition per watchlist code and market, so adding a code to the watchlist needs no deploy."""

from __future__ import annotations

import dagster as dg

from proto_client.security import Market

US_CODES = dg.DynamicPartitionsDefinition(name="us_codes")
HK_CODES = dg.DynamicPartitionsDefinition(name="hk_codes")


def partitions_for(market: Market) -> dg.DynamicPartitionsDefinition:
    return US_CODES if market is Market.US else HK_CODES


def partition_name(market: Market) -> str:
    """The instance-level name of the market's partition set (`us_codes` / `hk_codes`)."""
    return "us_codes" if market is Market.US else "hk_codes"
