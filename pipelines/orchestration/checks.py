"""Asset checks for both tables: cadence gaps, value ranges, trade date vs source timestamp, freshness.

The checks are declared on the assets (`check_specs`) and evaluated by the asset's op after it loads,
or alone when only checks are selected. They look at the whole table, not just the run's partitions,
because a gap or a stale code is a property of the history; their metadata names the offenders.
"""

from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta

import dagster as dg
import sqlalchemy as sa

from pipelines.orchestration.quality import (
    MAX_LISTED,
    RULES,
    cadence_gaps,
    expected_report,
    range_violations,
    stale_codes,
    timestamp_mismatches,
)
from pipelines.tables import markdown_table
from proto_client.security import Market

CADENCE = "cadence_gaps"
RANGE = "values_in_range"
TIMESTAMP = "trade_date_matches_timestamp"
FRESHNESS = "freshness"
SOURCE = {Market.US: "FINRA", Market.HK: "SFC"}
CHECK_NAMES = (CADENCE, RANGE, TIMESTAMP, FRESHNESS)


def check_specs(market: Market, asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    rules = RULES[market]
    cadence = "weekly" if market is Market.HK else "twice a month"
    over_100 = (
        "US short interest above 100 % of float can be real, so that alone only warns."
        if market is Market.US
        else "Any violation is an error."
    )
    descriptions = {
        CADENCE: (
            f"No two consecutive trade dates of a code more than {rules.max_gap_days} days apart over the "
            f"last {rules.gap_window_days} days ({market.prefix} publishes {cadence})."
        ),
        RANGE: f"No negative counts or prices; percentages within 0..100. {over_100}",
        TIMESTAMP: f"Every trade_date is the {market.tz_name} date of its source timestamp.",
        FRESHNESS: (
            f"Every watchlist code holds the newest {SOURCE[market]} report published more than a week ago "
            f"(publication days from the {market.prefix} exchange calendar, today in {market.tz_name})."
        ),
    }
    return [dg.AssetCheckSpec(name, asset=asset_key, description=descriptions[name]) for name in CHECK_NAMES]


def evaluate_checks(
    market: Market,
    asset_key: dg.AssetKey,
    names: Sequence[str],
    engine: sa.Engine,
    *,
    today: date,
    expected_codes: Sequence[str],
) -> Iterator[dg.AssetCheckResult]:
    """Evaluate the named checks, in CHECK_NAMES order, against the warehouse behind `engine`."""
    evaluators: dict[str, Callable[[], dg.AssetCheckResult]] = {
        CADENCE: lambda: cadence_result(engine, market, today),
        RANGE: lambda: range_result(engine, market),
        TIMESTAMP: lambda: timestamp_result(engine, market),
        FRESHNESS: lambda: freshness_result(engine, market, today, expected_codes),
    }
    for name in CHECK_NAMES:
        if name in names:
            result = evaluators[name]()
            yield dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=name,
                passed=result.passed,
                severity=result.severity,
                description=result.description,
                metadata=result.metadata,
            )


def _codes(items: Sequence[object]) -> list[str]:
    return sorted({item.code for item in items})  # type: ignore[attr-defined]


def _offenders(header: Sequence[str], rows: Sequence[Sequence[object]], total: int) -> dg.MetadataValue:
    """The first MAX_LISTED offenders as a markdown table; the exact count is separate metadata."""
    if not total:
        return dg.MetadataValue.md("none")
    more = f"\n\n{total - len(rows)} more not listed" if total > len(rows) else ""
    return dg.MetadataValue.md(markdown_table(header, rows) + more)


def cadence_result(engine: sa.Engine, market: Market, today: date) -> dg.AssetCheckResult:
    rules = RULES[market]
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


def range_result(engine: sa.Engine, market: Market) -> dg.AssetCheckResult:
    found = range_violations(engine, market)
    errors = [v for v in found if not v.warn_only]
    severity = dg.AssetCheckSeverity.ERROR if errors or not found else dg.AssetCheckSeverity.WARN
    rows = [(v.code, v.trade_date, v.column, v.value, v.problem) for v in found[:MAX_LISTED]]
    return dg.AssetCheckResult(
        passed=not found,
        severity=severity,
        description=f"{len(found)} out-of-range value(s) in {len(_codes(found))} code(s)" if found else "all in range",
        metadata={
            "violation_count": len(found),
            "error_count": len(errors),
            "warning_count": len(found) - len(errors),
            "offending_codes": dg.MetadataValue.json(_codes(found)),
            "violations": _offenders(["code", "trade date", "column", "value", "problem"], rows, len(found)),
        },
    )


def timestamp_result(engine: sa.Engine, market: Market) -> dg.AssetCheckResult:
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


def freshness_result(
    engine: sa.Engine, market: Market, today: date, expected_codes: Sequence[str]
) -> dg.AssetCheckResult:
    expected = expected_report(market, today)
    stale, newest = stale_codes(engine, market, today=today, expected_codes=expected_codes)
    wanted = f"the {expected.report} report (published {expected.published})" if expected else "no report yet"
    rows = [(s.code, s.newest_trade_date or "never loaded", s.age_days) for s in stale[:MAX_LISTED]]
    return dg.AssetCheckResult(
        passed=not stale,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{len(stale)} code(s) missing {wanted}" if stale else f"every code holds {wanted}"),
        metadata={
            "stale_count": len(stale),
            "offending_codes": dg.MetadataValue.json(_codes(stale)),
            "newest_trade_date": str(newest) if newest else "no rows",
            "today": str(today),
            "expected_trade_date": str(expected.report) if expected else "none",
            "stale": _offenders(["code", "newest trade date", "age (days)"], rows, len(stale)),
        },
    )
