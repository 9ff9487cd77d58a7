"""`shortinterest status --check`: whether every watchlist code is fresh and loaded cleanly, for outside monitors.

A code is healthy when it holds the newest report its source published more than a week ago (the freshness
check's rule, from the exchange calendars, so holidays never make it look stale) and its last load ended
without error. Anything else is one problem line, so cron, Nagios or a Kubernetes probe can act on the exit
status and a person can read what to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from pipelines.orchestration.quality import expected_report
from pipelines.warehouse import CrawlState
from proto_client.errors import InvalidCodeError
from proto_client.security import Market, parse_code


@dataclass(frozen=True, slots=True)
class Problem:
    """One code that needs a person, and why."""

    code: str
    reason: str

    def line(self) -> str:
        return f"{self.code}: {self.reason}"


def problems(
    codes: Sequence[str],
    states: Mapping[str, CrawlState],
    newest: Mapping[str, date | None],
    today: Callable[[Market], date],
) -> list[Problem]:
    """The watchlist's problems in watchlist order, at most one per code (the one to fix first)."""
    found: list[Problem] = []
    for code in codes:
        problem = _problem(code, states.get(code), newest.get(code), today)
        if problem is not None:
            found.append(problem)
    return found


def _problem(
    code: str, state: CrawlState | None, newest: date | None, today: Callable[[Market], date]
) -> Problem | None:
    try:
        market = parse_code(code).market
    except InvalidCodeError as exc:
        return Problem(code, f"not a code this pipeline can load: {exc}")
    if state is not None and state.last_error:
        return Problem(code, f"last load failed: {state.last_error.strip().splitlines()[0]}")
    if state is not None and state.full_crawl_cursor:
        return Problem(code, f"full crawl interrupted, resumes at key {state.full_crawl_cursor}")
    if newest is None:
        return Problem(code, "never loaded")
    expected = expected_report(market, today(market))
    if expected is not None and newest < expected.report:
        return Problem(
            code,
            f"stale: newest trade date {newest}, missing the {expected.report} report published {expected.published}",
        )
    return None
