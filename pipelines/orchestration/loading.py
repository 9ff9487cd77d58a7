"""Crawl the codes of one run, one after the other over one client, and keep going past a failed code.

A run covers many partitions (the assets' single-run backfill policy), so one bad code must not cost
the others their load; the asset fails afterwards and names every failed code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipelines.config import Settings
from pipelines.crawl.crawler import CodeResult, open_crawler
from pipelines.crawl.events import CrawlEvent
from proto_client.errors import InvalidCodeError
from proto_client.security import Market, parse_code


@dataclass(frozen=True, slots=True)
class CodeFailure:
    code: str
    error: str


@dataclass(frozen=True, slots=True)
class RunLoad:
    """Per-code outcome of one run: what loaded, and what failed with why."""

    loaded: tuple[CodeResult, ...]
    failed: tuple[CodeFailure, ...]

    @property
    def ok(self) -> bool:
        return not self.failed


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
) -> RunLoad:
    """Crawl `codes` in order over one crawler; codes of the wrong market fail without a request.

    Raises GatewayConnectionError or WarehouseNotMigratedError (from `open_crawler`) before any code
    when the gateway does not answer or the warehouse is not migrated: then nothing was loaded.
    """
    loaded: list[CodeResult] = []
    failed: list[CodeFailure] = []
    runnable: list[str] = []
    for code in codes:
        reason = wrong_market_reason(code, market)
        if reason:
            failed.append(CodeFailure(code, reason))
        else:
            runnable.append(code)
    if not runnable:
        return RunLoad(tuple(loaded), tuple(failed))
    with open_crawler(settings, on_event=on_event) as crawler:
        for index, code in enumerate(runnable, start=1):
            result = crawler.crawl_code(code, full=full)  # per-code failures come back in `error`
            if not result.ok:
                failed.append(CodeFailure(code, str(result.error)))
                log.error(f"[{index}/{len(runnable)}] {code}: {result.error}")
                continue
            loaded.append(result)
            log.info(
                f"[{index}/{len(runnable)}] {code} {result.mode}: {result.inserted} new, {result.updated} revised, "
                f"{result.unchanged} unchanged rows in {result.requests} request(s), "
                f"{result.waited_seconds:.1f} s waiting for the rate limit"
            )
    order = {code: index for index, code in enumerate(codes)}
    return RunLoad(tuple(loaded), tuple(sorted(failed, key=lambda f: order[f.code])))
