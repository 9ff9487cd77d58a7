"""Settings from the environment: the one place every variable the product reads is defined.

OPEND_HOST                  gateway host (default 127.0.0.1)
OPEND_PORT                  gateway port (default 11111)
OPEND_RATE_LIMIT            REQUESTS/SECONDS allowed per account for the short-interest API (default 30/30)
OPEND_REPLY_TIMEOUT         seconds to wait for a reply before dropping the connection and retrying (default 15)
SHORTINTEREST_DATABASE_URL  SQLAlchemy URL of the warehouse (default sqlite:///.shortinterest/warehouse.db)
SHORTINTEREST_WATCHLIST     path of the YAML watchlist (default: the packaged demo watchlist.yaml)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11111
DEFAULT_RATE_LIMIT = "30/30"
DEFAULT_REPLY_TIMEOUT = 15.0
DEFAULT_DATABASE_URL = "sqlite:///.shortinterest/warehouse.db"
PACKAGED_WATCHLIST = Path(__file__).with_name("watchlist.yaml")

_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*")


class ConfigError(ValueError):
    """A setting is malformed; the message names the variable and the value."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`requests` per sliding window of `seconds`."""

    requests: int
    seconds: float

    @classmethod
    def parse(cls, text: str, *, name: str = "OPEND_RATE_LIMIT") -> RateLimit:
        match = _RATE.fullmatch(text)
        if not match:
            raise ConfigError(f"{name}={text!r}: expected REQUESTS/SECONDS, e.g. 30/30")
        requests, seconds = int(match.group(1)), float(match.group(2))
        if requests < 1 or seconds <= 0:
            raise ConfigError(f"{name}={text!r}: both numbers must be positive")
        return cls(requests, seconds)

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}"


@dataclass(frozen=True, slots=True)
class Settings:
    opend_host: str = DEFAULT_HOST
    opend_port: int = DEFAULT_PORT
    rate_limit: RateLimit = RateLimit(30, 30.0)
    database_url: str = DEFAULT_DATABASE_URL
    watchlist_path: Path = PACKAGED_WATCHLIST
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        port_text = env.get("OPEND_PORT", str(DEFAULT_PORT))
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"OPEND_PORT={port_text!r}: expected a port number") from None
        if not 0 < port < 65536:
            raise ConfigError(f"OPEND_PORT={port_text!r}: expected a port number from 1 to 65535")
        timeout_text = env.get("OPEND_REPLY_TIMEOUT", str(DEFAULT_REPLY_TIMEOUT))
        try:
            reply_timeout = float(timeout_text)
        except ValueError:
            raise ConfigError(f"OPEND_REPLY_TIMEOUT={timeout_text!r}: expected a number of seconds") from None
        if not 0 < reply_timeout < float("inf"):
            raise ConfigError(f"OPEND_REPLY_TIMEOUT={timeout_text!r}: expected a positive number of seconds")
        return cls(
            opend_host=env.get("OPEND_HOST", DEFAULT_HOST) or DEFAULT_HOST,
            opend_port=port,
            rate_limit=RateLimit.parse(env.get("OPEND_RATE_LIMIT", DEFAULT_RATE_LIMIT)),
            database_url=env.get("SHORTINTEREST_DATABASE_URL") or DEFAULT_DATABASE_URL,
            watchlist_path=Path(env.get("SHORTINTEREST_WATCHLIST") or PACKAGED_WATCHLIST),
            reply_timeout=reply_timeout,
        )
