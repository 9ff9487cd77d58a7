"""Asset checks for both tables: cadence gaps, value ranges, trade date vs source timestamp, freshness.

The checks look at the whole table, not just the partitions of the run, because a gap or a stale
code is a property of the history; their metadata names the offending codes and dates.
"""

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

from pipelines.orchestration.jobs import asset_key_for
from pipelines.orchestration.partitions import partition_name
from pipelines.orchestration.quality import (
    MAX_LISTED,
    RULES,
    cadence_gaps,
    markdown_table,
    market_today,
    range_violations,
    stale_codes,
    timestamp_mismatches,
)
from pipelines.orchestration.resources import WarehouseResource
from proto_client.security import Market


def _codes(items: Sequence[object]) -> list[str]:
    return sorted({item.code for item in items})  # type: ignore[attr-defined]


def _offenders(header: Sequence[str], rows: Sequence[Sequence[object]], total: int) -> dg.MetadataValue:
    """The first MAX_LISTED offenders as a markdown table; the exact count is separate metadata."""
    if not total:
        return dg.MetadataValue.md("none")
    more = f"\n\n{total - len(rows)} more not listed" if total > len(rows) else ""
    return dg.MetadataValue.md(markdown_table(header, rows) + more)


def cadence_check(market: Market) -> dg.AssetChecksDefinition:
    rules = RULES[market]

    @dg.asset_check(
        asset=asset_key_for(market),
        name="cadence_gaps",
        description=(
            f"No two consecutive trade dates of a code more than {rules.max_gap_days} days apart over the "
            f"last {rules.gap_window_days} days ({market.prefix} publishes "
            f"{'weekly' if market is Market.HK else 'twice a month'})."
        ),
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        today = market_today(market)
        with warehouse.engine() as engine:
            gaps = cadence_gaps(engine, market, today=today)
        rows = [(g.code, g.previous_date, g.trade_date, g.days) for g in gaps[:MAX_LISTED]]
        return dg.AssetCheckResult(
            passed=not gaps,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{len(gaps)} gap(s) longer than {rules.max_gap_days} days in {len(_codes(gaps))} code(s)"
                if gaps
                else "no gaps"
            ),
            metadata={
                "gap_count": len(gaps),
                "offending_codes": dg.MetadataValue.json(_codes(gaps)),
                "max_gap_days": rules.max_gap_days,
                "window_start": str(today - timedelta(days=rules.gap_window_days)),
                "gaps": _offenders(["code", "previous date", "trade date", "days"], rows, len(gaps)),
            },
        )

    return _check


def range_check(market: Market) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key_for(market),
        name="values_in_range",
        description=(
            "No negative counts or prices; percentages within 0..100. "
            + (
                "US short interest above 100 % of float can be real, so that alone only warns."
                if market is Market.US
                else "Any violation is an error."
            )
        ),
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.engine() as engine:
            found = range_violations(engine, market)
        errors = [v for v in found if not v.warn_only]
        severity = dg.AssetCheckSeverity.ERROR if errors or not found else dg.AssetCheckSeverity.WARN
        rows = [(v.code, v.trade_date, v.column, v.value, v.problem) for v in found[:MAX_LISTED]]
        return dg.AssetCheckResult(
            passed=not found,
            severity=severity,
            description=(
                f"{len(found)} out-of-range value(s) in {len(_codes(found))} code(s)" if found else "all in range"
            ),
            metadata={
                "violation_count": len(found),
                "error_count": len(errors),
                "warning_count": len(found) - len(errors),
                "offending_codes": dg.MetadataValue.json(_codes(found)),
                "violations": _offenders(["code", "trade date", "column", "value", "problem"], rows, len(found)),
            },
        )

    return _check


def timestamp_check(market: Market) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key_for(market),
        name="trade_date_matches_timestamp",
        description=f"Every trade_date is the {market.tz_name} date of its source timestamp.",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.engine() as engine:
            found = timestamp_mismatches(engine, market)
        rows = [(m.code, m.trade_date, m.source_timestamp, m.implied_date) for m in found[:MAX_LISTED]]
        return dg.AssetCheckResult(
            passed=not found,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{len(found)} row(s) in {len(_codes(found))} code(s) whose trade_date is not the "
                f"{market.tz_name} date of source_timestamp"
                if found
                else "every trade_date matches its source timestamp"
            ),
            metadata={
                "mismatch_count": len(found),
                "offending_codes": dg.MetadataValue.json(_codes(found)),
                "mismatches": _offenders(
                    ["code", "trade date", "source timestamp", f"date in {market.tz_name}"], rows, len(found)
                ),
            },
        )

    return _check


def freshness_check(market: Market) -> dg.AssetChecksDefinition:
    rules = RULES[market]

    @dg.asset_check(
        asset=asset_key_for(market),
        name="freshness",
        description=(
            f"Every watchlist code's newest trade date is at most {rules.max_age_days} days old "
            f"(today in {market.tz_name})."
        ),
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        today = market_today(market)
        expected = context.instance.get_dynamic_partitions(partition_name(market))
        with warehouse.engine() as engine:
            stale, newest = stale_codes(engine, market, today=today, expected_codes=expected)
        rows = [(s.code, s.newest_trade_date or "never loaded", s.age_days) for s in stale[:MAX_LISTED]]
        return dg.AssetCheckResult(
            passed=not stale,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{len(stale)} code(s) with no trade date in the last {rules.max_age_days} days"
                if stale
                else f"every code has a trade date within {rules.max_age_days} days"
            ),
            metadata={
                "stale_count": len(stale),
                "offending_codes": dg.MetadataValue.json(_codes(stale)),
                "newest_trade_date": str(newest) if newest else "no rows",
                "today": str(today),
                "max_age_days": rules.max_age_days,
                "stale": _offenders(["code", "newest trade date", "age (days)"], rows, len(stale)),
            },
        )

    return _check


def checks_for(market: Market) -> list[dg.AssetChecksDefinition]:
    return [cadence_check(market), range_check(market), timestamp_check(market), freshness_check(market)]
