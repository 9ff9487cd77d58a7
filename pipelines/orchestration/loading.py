"""Crawl the codes of one run, one after the other over one client, and keep going past a failed code.

A run covers many partitions (the assets' single-run backfill policy), so one bad code must not cost
the others their load. Outcomes are yielded as each code finishes, so the asset can record each
code's materialization while the rest are still loading; the asset fails afterwards, naming every
failed code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from pipelines.config import Settings
from pipelines.crawl.crawler import CodeResult, open_crawler
from pipelines.crawl.events import CrawlEvent
from proto_client.errors import InvalidCodeError
from proto_client.security import Market, parse_code

# Progress lines at most this often (failures always): each is an event-log write, and every code's
# numbers are in its materialization anyway.
PROGRESS_EVERY = 2.0


@dataclass(frozen=True, slots=True)
class CodeFailure:
    code: str
    error: str


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
    log: logging.Logger | logging.LoggerAdapter,
    on_event: Callable[[CrawlEvent], None] | None = None,
    wait_at_start: bool = False,
) -> Iterator[CodeResult | CodeFailure]:
    """Crawl `codes` in order over one crawler, yielding each code's outcome as it finishes.

    Codes of the wrong market fail without a request. Raises GatewayConnectionError or
    WarehouseNotMigratedError (from `open_crawler`) before any code when the gateway does not answer
    or the warehouse is not migrated: then nothing was loaded. `wait_at_start` waits for them as for an
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
    with open_crawler(settings, on_event=on_event, on_outage=log.warning, wait_at_start=wait_at_start) as crawler:
        for index, code in enumerate(runnable, start=1):
            result = crawler.crawl_code(code, full=full)  # per-code failures come back in `error`
            if not result.ok:
                log.error(f"[{index}/{len(runnable)}] {code}: {result.error}")
                yield CodeFailure(code, str(result.error))
                continue
            now = time.monotonic()
            if now - last_line >= PROGRESS_EVERY or index == len(runnable):
                last_line = now
                log.info(
                    f"[{index}/{len(runnable)}] {code} {result.mode}: {result.inserted} new, {result.updated} "
                    f"revised, {result.unchanged} unchanged rows in {result.requests} request(s), "
                    f"{result.waited_seconds:.1f} s waiting for the rate limit"
                )
            yield result
