"""Run one market's asset (and its checks) in process over a set of codes, and read back what happened.

The demo and the overhead benchmark use this to drive the same assets the code location serves,
with literal resources and without a webserver or daemon.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from pipelines.orchestration.assets import short_interest_asset
from pipelines.orchestration.jobs import asset_key_for
from pipelines.orchestration.metadata import LoadSummary, read_summary
from pipelines.orchestration.schedules import run_request_for_codes
from proto_client.security import Market


@dataclass(frozen=True, slots=True)
class CodeOutcome:
    """One code of a run: its materialization's numbers, or why it failed."""

    code: str
    ok: bool
    mode: str = ""
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    requests: int = 0
    waited_seconds: float = 0.0
    newest_trade_date: str = ""
    gateway: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    name: str
    passed: bool
    severity: str
    description: str


@dataclass(frozen=True, slots=True)
class MarketRun:
    market: Market
    run_id: str
    success: bool
    codes: tuple[CodeOutcome, ...]
    checks: tuple[CheckOutcome, ...]
    failure: str  # the step failure's description, empty when the run succeeded


def run_market(
    instance: dg.DagsterInstance,
    market: Market,
    codes: Sequence[str],
    resources: Mapping[str, Any],
    *,
    full: bool = False,
    with_checks: bool = True,
    log_level: str = "INFO",
) -> MarketRun:
    """Materialize `codes` (partitions that exist on `instance`) in one run, as a schedule tick would."""
    request = run_request_for_codes(list(codes), market)
    if not isinstance(request, dg.RunRequest):
        raise ValueError(f"no {market.prefix} codes to run: {request.skip_message}")
    key = asset_key_for(market)
    selection = dg.AssetSelection.assets(key)
    result = dg.materialize(
        [short_interest_asset(market)],
        selection=selection if with_checks else selection.without_checks(),
        instance=instance,
        resources=dict(resources),
        tags=dict(request.tags),
        run_config={
            "ops": {key.to_python_identifier(): {"config": {"full": full}}},
            "loggers": {"console": {"config": {"log_level": log_level}}},
        },
        raise_on_error=False,
    )
    return read_run(result, market, codes)


def read_run(result: dg.ExecuteInProcessResult, market: Market, codes: Sequence[str]) -> MarketRun:
    loaded: dict[str, LoadSummary] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization  # type: ignore[union-attr]
        if mat.partition is not None:
            loaded[mat.partition] = read_summary(mat.description)
    failure, errors = _step_failure(result)
    outcomes = []
    for code in codes:
        summary = loaded.get(code)
        if summary is None:
            outcomes.append(CodeOutcome(code, ok=False, error=errors.get(code) or failure or "not loaded"))
            continue
        outcomes.append(
            CodeOutcome(
                code,
                ok=True,
                mode=summary.mode,
                inserted=summary.inserted,
                updated=summary.updated,
                unchanged=summary.unchanged,
                requests=summary.requests,
                waited_seconds=summary.waited_seconds,
                newest_trade_date=summary.newest_trade_date,
                gateway=summary.gateway,
            )
        )
    checks = tuple(
        CheckOutcome(e.check_name, e.passed, e.severity.value, e.description or "")
        for e in result.get_asset_check_evaluations()
    )
    return MarketRun(market, result.run_id, result.success, tuple(outcomes), checks, failure)


def _step_failure(result: dg.ExecuteInProcessResult) -> tuple[str, dict[str, str]]:
    """The asset step's failure description and its per-code errors (from the failure's metadata)."""
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        data = event.event_specific_data
        user = getattr(data, "user_failure_data", None)
        if user is not None:
            errors = user.metadata.get("errors")
            return (user.description or "", dict(errors.value) if errors is not None else {})
        error = getattr(data, "error", None)
        return (error.message.strip() if error is not None else "step failed", {})
    return ("", {})
