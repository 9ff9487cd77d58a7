"""Live reads from the gateway for scripts and notebooks, kept within the account's rate limit.

A context from here throttles every short-interest request: through the warehouse's shared limiter when
given an engine (so it takes its turn with every loader on that warehouse), otherwise through a limiter of
its own at OPEND_RATE_LIMIT. The local one is the same reservation rule over a private in-memory database,
so there is one rate-limiting rule in the project, not two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from pipelines.config import RateLimit, Settings
from pipelines.crawl.rate_limiter import SharedRateLimiter, metadata
from pipelines.warehouse.migrate import ensure_migrated
from proto_client.quote_context import OpenQuoteContext


def local_throttle(rate: RateLimit) -> Callable[[], float]:
    """A throttle for this process alone: the shared limiter's rule over an in-memory bucket."""
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    metadata.create_all(engine)
    limiter = SharedRateLimiter(engine, rate)
    lock = threading.Lock()  # one connection serves every thread: take turns booking on it

    def acquire() -> float:
        with lock:
            return limiter.acquire()

    return acquire


def quote_context(settings: Settings | None = None, engine: sa.Engine | None = None) -> OpenQuoteContext:
    """An OpenQuoteContext on OPEND_HOST:OPEND_PORT (encrypted with OPEND_RSA_KEY_FILE if set), throttled by
    `engine`'s shared limiter or a local one."""
    settings = Settings.from_env() if settings is None else settings
    if engine is None:
        throttle = local_throttle(settings.rate_limit)
    else:
        ensure_migrated(engine)  # the shared limiter's bucket is a warehouse table
        throttle = SharedRateLimiter(engine, settings.rate_limit).acquire
    return OpenQuoteContext(
        settings.opend_host,
        settings.opend_port,
        rsa_key_file=settings.rsa_key_file,
        throttle=throttle,
        reply_timeout=settings.reply_timeout,
    )


def get_short_interest_history(
    code: str, *, engine: sa.Engine | None = None, settings: Settings | None = None
) -> pd.DataFrame:
    """`code`'s whole history, newest first, in its market's columns: next_key walked to the end at 50 rows a
    request, within the rate limit. Raises InvalidCodeError or the client's OpenDError on failure."""
    with quote_context(settings, engine) as ctx:
        return ctx.get_short_interest_history(code)
