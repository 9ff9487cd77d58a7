"""What a load is about to cost before it starts: requests per code, and the time the rate limit makes them take.

Mirrors the crawler's own plan (pipelines.crawl.crawler): a code loaded before costs one request (its
newest page), a code never loaded, or any code under `full`, costs one request per 50 rows of history,
and an interrupted full crawl resumes at its cursor. How long a history is only the gateway knows;
callers that know it (the demo, which started the simulated gateway) pass `history_rows`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from pipelines.config import RateLimit
from pipelines.crawl.outage import format_duration
from pipelines.crawl.rate_limiter import default_margin
from pipelines.warehouse import list_crawl_states

PAGE_ROWS = 50


@dataclass(frozen=True, slots=True)
class CodeCost:
    code: str
    mode: str  # "full", "incremental" or "resumed"
    requests: int | None  # None: a full crawl of a history whose length is not known here


@dataclass(frozen=True, slots=True)
class LoadEstimate:
    costs: tuple[CodeCost, ...]
    rate: RateLimit

    @property
    def known_requests(self) -> int:
        return sum(c.requests or 0 for c in self.costs)

    @property
    def unknown(self) -> int:
        """Codes whose full crawl costs an unknown number of requests (at least one each)."""
        return sum(c.requests is None for c in self.costs)

    def count(self, mode: str) -> int:
        return sum(c.mode == mode for c in self.costs)

    @property
    def seconds(self) -> float:
        return seconds_for(self.known_requests + self.unknown, self.rate)

    def describe(self) -> str:
        """One sentence: what kind of load, how many requests, how long at the rate limit."""
        kinds = ", ".join(f"{n} {mode}" for mode in ("full", "resumed", "incremental") if (n := self.count(mode)))
        head = f"{_count(len(self.costs), 'code')} ({kinds})"
        total = _count(self.known_requests + self.unknown, "request")
        at = f"at {self.rate} requests/seconds"
        if self.unknown:
            longer = f", at least {format_duration(self.seconds)} {at}" if self.seconds >= 1 else ""
            return f"{head}: at least {total} (a whole history costs one per {PAGE_ROWS} rows){longer}"
        if self.seconds < 1:
            return f"{head}: {total}, within the first window {at}"
        return f"{head}: {total}, about {format_duration(self.seconds)} {at}"


def seconds_for(requests: int, rate: RateLimit) -> float:
    """Wall time of `requests` on an idle budget: a window's worth at once, then a window (plus the
    limiter's margin) per further window's worth."""
    if requests <= 0:
        return 0.0
    return (math.ceil(requests / rate.requests) - 1) * (rate.seconds + default_margin(rate))


def pages_for(rows: int) -> int:
    return max(1, math.ceil(rows / PAGE_ROWS))


def estimate_load(
    conn: sa.Connection,
    codes: Sequence[str],
    rate: RateLimit,
    *,
    full: bool = False,
    history_rows: Callable[[str], int] | None = None,
) -> LoadEstimate:
    """Each code's cost from the crawl state alone (one query, however long the watchlist)."""
    states = {state.code: state for state in list_crawl_states(conn)}
    costs = []
    for code in codes:
        state = states.get(code)
        whole = pages_for(history_rows(code)) if history_rows is not None else None
        if state is not None and state.full_crawl_cursor:
            costs.append(CodeCost(code, "resumed", whole))
        elif full or state is None or state.newest_trade_date is None:
            costs.append(CodeCost(code, "full", whole))
        else:
            costs.append(CodeCost(code, "incremental", 1))
    return LoadEstimate(tuple(costs), rate)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
