"""Dagster resources: the gateway, the warehouse and the watchlist, configured from the documented env vars.

Each resource only holds configuration; connections are opened per run and closed when it ends, so a
code location never keeps sockets or pools open between runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from pipelines.config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_HOST,
    DEFAULT_LISTING_RATE_LIMIT,
    DEFAULT_OUTAGE_TIMEOUT,
    DEFAULT_PORT,
    DEFAULT_RATE_LIMIT,
    DEFAULT_REPLY_TIMEOUT,
    PACKAGED_WATCHLIST,
    ConfigError,
    RateLimit,
    Settings,
    parse_gateways,
)
from pipelines.crawl.watchlist import Watchlist, load_watchlist
from pipelines.warehouse.engine import create_engine_for


class RateLimitConfig(dg.Config):
    """OPEND_RATE_LIMIT as Dagster config: `requests` per sliding window of `seconds`."""

    requests: int = Field(default=DEFAULT_RATE_LIMIT.requests, description="Requests allowed per window.")
    seconds: float = Field(default=DEFAULT_RATE_LIMIT.seconds, description="Length of the sliding window.")

    @classmethod
    def of(cls, rate: RateLimit) -> RateLimitConfig:
        return cls(requests=rate.requests, seconds=rate.seconds)


class GatewayResource(dg.ConfigurableResource):
    """Where the OpenD gateways listen and how many requests per window each account may send."""

    host: str = Field(default=DEFAULT_HOST, description="OpenD gateway host (OPEND_HOST).")
    port: int = Field(default=DEFAULT_PORT, description="OpenD gateway port (OPEND_PORT).")
    gateways: str = Field(
        default="",
        description=(
            "Several gateways, one per account, loaded from at once: comma-separated HOST:PORT, each "
            "optionally HOST:PORT@REQUESTS/SECONDS; replaces host and port when set (OPEND_GATEWAYS)."
        ),
    )
    rate_limit: RateLimitConfig = Field(
        default=RateLimitConfig(),
        description="Requests per seconds allowed per account for the short-interest API (OPEND_RATE_LIMIT).",
    )
    listing_rate_limit: RateLimitConfig = Field(
        default=RateLimitConfig.of(DEFAULT_LISTING_RATE_LIMIT),
        description=(
            "Requests per seconds allowed per account for each listing call resolving the watchlist's groups, "
            "plates and markets (OPEND_LISTING_RATE_LIMIT)."
        ),
    )
    reply_timeout: float = Field(
        default=DEFAULT_REPLY_TIMEOUT,
        description="Seconds to wait for a reply before dropping the connection and retrying (OPEND_REPLY_TIMEOUT).",
    )
    rsa_key_file: str | None = Field(
        default=None,
        description="PEM RSA private key OpenD uses; set, the link is encrypted (OPEND_RSA_KEY_FILE).",
    )
    outage_timeout: float = Field(
        default=DEFAULT_OUTAGE_TIMEOUT,
        description=(
            "Seconds a run waits for the gateway or the warehouse to answer again during an outage before it "
            "fails and is left to run retries (SHORTINTEREST_OUTAGE_TIMEOUT)."
        ),
    )

    def settings(self, database_url: str) -> Settings:
        """The crawler's Settings for a run writing to `database_url`.

        A bad value raises ConfigError naming the variable, before any connection is attempted.
        """
        try:
            rate = RateLimit(self.rate_limit.requests, self.rate_limit.seconds)
        except ValueError as exc:
            raise ConfigError(f"OPEND_RATE_LIMIT: {exc}") from None
        try:
            listing_rate = RateLimit(self.listing_rate_limit.requests, self.listing_rate_limit.seconds)
        except ValueError as exc:
            raise ConfigError(f"OPEND_LISTING_RATE_LIMIT: {exc}") from None
        return Settings(
            opend_host=self.host,
            opend_port=self.port,
            gateways=parse_gateways(self.gateways, rate) if self.gateways.strip() else (),
            rate_limit=rate,
            database_url=database_url,
            reply_timeout=self.reply_timeout,
            rsa_key_file=Path(self.rsa_key_file) if self.rsa_key_file else None,
            outage_timeout=self.outage_timeout,
            listing_rate_limit=listing_rate,
        )


class WarehouseResource(dg.ConfigurableResource):
    """The SQLAlchemy URL of the warehouse the crawler writes and the checks read."""

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the warehouse (SHORTINTEREST_DATABASE_URL).",
    )

    @contextmanager
    def engine(self) -> Iterator[sa.Engine]:
        """An engine for one run, disposed afterwards so no pooled connection outlives the run."""
        engine = create_engine_for(self.database_url)
        try:
            yield engine
        finally:
            engine.dispose()


class WatchlistResource(dg.ConfigurableResource):
    """The YAML watchlist the partition sensor mirrors into `us_codes` / `hk_codes`."""

    path: str = Field(
        default=str(PACKAGED_WATCHLIST),
        description="Path of the YAML watchlist (SHORTINTEREST_WATCHLIST).",
    )

    def load(self) -> Watchlist:
        """The validated watchlist; WatchlistError names every bad entry."""
        return load_watchlist(Path(self.path))


def _env_or(name: str, default: str) -> str | dg.EnvVar:
    """`dg.EnvVar(name)` when the variable is set (the UI then shows where the value comes from), else the default.

    EnvVar alone would make every unset variable an error, but each one has a documented default.
    """
    return dg.EnvVar(name) if os.environ.get(name) else default


def _env_int_or(name: str, default: int) -> int | dg.EnvVar:
    return dg.EnvVar.int(name) if os.environ.get(name) else default


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources for the code location, from the variables `pipelines.config` documents, with its defaults.

    Every variable is checked here, so a malformed one fails the code location's load naming it; so does
    the watchlist file SHORTINTEREST_WATCHLIST names (WatchlistError names the file and each bad entry).
    The partitions sensor still reads the file at every tick: an edit after the load fails the tick
    instead. Text values stay `EnvVar`s (the database URL's password never enters the definitions); the
    typed ones are the parsed values.
    """
    settings = Settings.from_env()
    load_watchlist(settings.watchlist_path)
    return {
        "gateway": GatewayResource(
            host=_env_or("OPEND_HOST", DEFAULT_HOST),
            # Dagster resolves an EnvVar.int field when a run starts; its typing knows only the resolved value.
            port=_env_int_or("OPEND_PORT", DEFAULT_PORT),  # type: ignore[arg-type]
            gateways=_env_or("OPEND_GATEWAYS", ""),
            rate_limit=RateLimitConfig.of(settings.rate_limit),
            listing_rate_limit=RateLimitConfig.of(settings.listing_rate_limit),
            reply_timeout=settings.reply_timeout,
            rsa_key_file=dg.EnvVar("OPEND_RSA_KEY_FILE") if settings.rsa_key_file else None,
            outage_timeout=settings.outage_timeout,
        ),
        "warehouse": WarehouseResource(database_url=_env_or("SHORTINTEREST_DATABASE_URL", DEFAULT_DATABASE_URL)),
        "watchlist": WatchlistResource(path=_env_or("SHORTINTEREST_WATCHLIST", str(PACKAGED_WATCHLIST))),
    }


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Literal resources for in-process runs (the demo, tests, benchmarks) that already hold Settings."""
    return {
        "gateway": GatewayResource(
            host=settings.opend_host,
            port=settings.opend_port,
            gateways=",".join(f"{g.name}@{g.rate_limit}" for g in settings.gateways),
            rate_limit=RateLimitConfig.of(settings.rate_limit),
            listing_rate_limit=RateLimitConfig.of(settings.listing_rate_limit),
            reply_timeout=settings.reply_timeout,
            rsa_key_file=str(settings.rsa_key_file) if settings.rsa_key_file else None,
            outage_timeout=settings.outage_timeout,
        ),
        "warehouse": WarehouseResource(database_url=settings.database_url),
        "watchlist": WatchlistResource(path=str(settings.watchlist_path)),
    }
