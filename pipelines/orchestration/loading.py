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
from proto_client.errors import GatewayConnectionError, InvalidCodeError, OpenDError
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
    on_event: Callable[[object], None] | None = None,
) -> RunLoad:
    """Crawl `codes` in order; a gateway that stops answering fails the rest without trying each."""
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
    mode = "full" if full else "incremental"
    with open_crawler(settings, on_event=on_event) as crawler:
        for index, code in enumerate(runnable, start=1):
            try:
                result = crawler.crawl_code(code, full=full)
            except GatewayConnectionError as exc:
                rest = runnable[index - 1 :]
                log.error(f"gateway {settings.opend_host}:{settings.opend_port} unreachable: {exc}")
                failed.extend(CodeFailure(c, f"gateway unreachable: {exc}") for c in rest)
                break
            except OpenDError as exc:
                failed.append(CodeFailure(code, str(exc)))
                log.error(f"[{index}/{len(runnable)}] {code}: {exc}")
                continue
            if not result.ok:
                failed.append(CodeFailure(code, str(result.error)))
                log.error(f"[{index}/{len(runnable)}] {code}: {result.error}")
                continue
            loaded.append(result)
            log.info(
                f"[{index}/{len(runnable)}] {code} {mode}: +{result.inserted} new, {result.updated} revised, "
                f"{result.unchanged} unchanged in {result.requests} request(s), "
                f"{result.waited_seconds:.1f}s waiting for the rate limit"
            )
    return RunLoad(tuple(loaded), tuple(failed))
