"""Crawl the codes of one run over every configured gateway at once, and keep going past a failed code.

A run covers many partitions (the assets' single-run backfill policy), so one bad code must not cost
the others their load, and one lost gateway must not cost the run its codes (the other gateways take
them over: pipelines.crawl.gateway_pool). Outcomes are yielded as each code finishes, so the asset can
record each code's materialization while the rest are still loading; the asset fails afterwards,
naming every failed code and every lost gateway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from pipelines.config import Settings
from pipelines.crawl.crawler import CodeResult
from pipelines.crawl.events import CrawlEvent
from pipelines.crawl.gateway_pool import GatewayUsage, open_gateway_pool
from proto_client.errors import InvalidCodeError
from proto_client.security import Market, parse_code

# Progress lines at most this often (failures always): each is an event-log row, a 10,000-code refresh at the
# gateway's rate limit lasts hours, and every code's numbers are in its materialization anyway.
PROGRESS_EVERY = 30.0


@dataclass(frozen=True, slots=True)
class CodeFailure:
    code: str
    error: str
    gateway: str = ""


@dataclass(frozen=True, slots=True)
class GatewayReport:
    """The last outcome of a load: what each gateway did, lost gateways included."""

    gateways: tuple[GatewayUsage, ...]

    @property
    def lost(self) -> list[GatewayUsage]:
        return [g for g in self.gateways if not g.served]


def wrong_market_reason(code: str, market: Market) -> str | None:
    """Why `code` cannot be a partition of `market`'s asset, or None when it can."""
    try:
        security = parse_code(code)
    except InvalidCodeError as exc:
        return str(exc)
    if security.market is not market:
        return f"{code} is a {security.market.prefix} code in the {market.prefix} partition set"
    return None


def load_codes(
    settings: Settings,
    market: Market,
    codes: Sequence[str],
    *,
    full: bool,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    on_event: Callable[[CrawlEvent], None] | None = None,
    wait_at_start: bool = False,
) -> Iterator[CodeResult | CodeFailure | GatewayReport]:
    """Crawl `codes` over every gateway, yielding each code's outcome as it finishes, then a GatewayReport.

    Codes of the wrong market fail without a request. Raises GatewayConnectionError or
    WarehouseNotMigratedError (from `open_gateway_pool`) before any code when no gateway answers or
    the warehouse is not migrated: then nothing was loaded. `wait_at_start` waits for them as for an
    outage instead. Outages are logged as warnings; DependencyDownError, past the outage bound, ends
    the iteration.
    """
    runnable: list[str] = []
    for code in codes:
        reason = wrong_market_reason(code, market)
        if reason:
            log.error(f"{code}: {reason}")
            yield CodeFailure(code, reason)
        else:
            runnable.append(code)
    if not runnable:
        return
    last_line = time.monotonic() - PROGRESS_EVERY
    finished = 0
    with open_gateway_pool(settings, on_event=on_event, on_outage=log.warning, wait_at_start=wait_at_start) as pool:
        for lost in pool.lost():
            log.warning(f"gateway {lost.name} does not answer and is left out: {lost.lost}")
        for result in pool.crawl(runnable, full=full):  # per-code failures come back in `error`
            finished += 1
            if not result.ok:
                log.error(f"[{finished}/{len(runnable)}] {result.code} via {result.gateway}: {result.error}")
                yield CodeFailure(result.code, str(result.error), result.gateway)
                continue
            now = time.monotonic()
            if now - last_line >= PROGRESS_EVERY or finished == len(runnable):
                last_line = now
                log.info(
                    f"[{finished}/{len(runnable)}] {result.code} {result.mode} via {result.gateway}: "
                    f"{result.inserted} new, {result.updated} revised, {result.unchanged} unchanged rows in "
                    f"{result.requests} request(s), {result.waited_seconds:.1f} s waiting for the rate limit"
                )
            yield result
        usage = tuple(pool.usage())
    for gateway in usage:
        if gateway.lost:
            log.warning(f"gateway {gateway.name} was lost: {gateway.lost}; the other gateways took over its codes")
        else:
            log.info(
                f"gateway {gateway.name}: {gateway.codes} code(s), {gateway.requests} request(s), "
                f"{gateway.waited_seconds:.1f} s waited for its rate limit"
            )
    yield GatewayReport(usage)
