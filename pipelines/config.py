"""Settings from the environment: the one place every variable the product reads is defined.

OPEND_HOST                  gateway host (default 127.0.0.1)
OPEND_PORT                  gateway port (default 11111)
OPEND_GATEWAYS              several gateways, one per account: comma-separated HOST:PORT, each optionally
                            HOST:PORT@REQUESTS/SECONDS; replaces OPEND_HOST/OPEND_PORT when set
OPEND_RATE_LIMIT            REQUESTS/SECONDS allowed per account for the short-interest API (default 30/30)
OPEND_LISTING_RATE_LIMIT    REQUESTS/SECONDS allowed per account for each listing call resolving the watchlist's
                            groups, plates and markets (3222, 3213, 3205, 3202), each apart (default 10/30)
OPEND_REPLY_TIMEOUT         seconds to wait for a reply before dropping the connection and retrying (default 15)
OPEND_RSA_KEY_FILE          PEM RSA private key OpenD is configured with: encrypts the link (default: unset, plain)
SHORTINTEREST_DATABASE_URL  SQLAlchemy URL of the warehouse (default sqlite:///.shortinterest/warehouse.db)
SHORTINTEREST_WATCHLIST     path of the YAML watchlist (default: the packaged demo watchlist.yaml)
SHORTINTEREST_OUTAGE_TIMEOUT  seconds a load waits for an unreachable gateway or warehouse before stopping (default 600)

Alerts (pipelines/orchestration/alerts/; neither a webhook nor an e-mail address set means no alerting):
SHORTINTEREST_ALERT_WEBHOOK_URL  incoming webhook (Slack, Mattermost, ...): a JSON POST whose `text` is the alert
SHORTINTEREST_ALERT_EMAIL_TO     comma-separated addresses to e-mail alerts to (needs SHORTINTEREST_SMTP_HOST)
SHORTINTEREST_ALERT_EMAIL_FROM   sender address (default: SHORTINTEREST_SMTP_USER, else shortinterest@localhost)
SHORTINTEREST_SMTP_HOST          SMTP server; STARTTLS is used when it offers it (port 465: TLS from the start)
SHORTINTEREST_SMTP_PORT          SMTP port (default 587)
SHORTINTEREST_SMTP_USER, SHORTINTEREST_SMTP_PASSWORD  SMTP login, when the server wants one
SHORTINTEREST_UI_URL             the Dagster UI's address, so every alert links to its run or asset
SHORTINTEREST_ALERT_INTERVAL     seconds between the alert sensors' looks at the instance (default 60)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from proto_client.rate_limit import RateLimit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11111
DEFAULT_RATE_LIMIT = RateLimit(30, 30.0)
DEFAULT_LISTING_RATE_LIMIT = RateLimit(10, 30.0)
DEFAULT_REPLY_TIMEOUT = 15.0
DEFAULT_OUTAGE_TIMEOUT = 600.0
DEFAULT_DATABASE_URL = "sqlite:///.shortinterest/warehouse.db"
PACKAGED_WATCHLIST = Path(__file__).with_name("watchlist.yaml")


class ConfigError(ValueError):
    """A setting is malformed; the message names the variable and the value."""


def parse_rate_limit(text: str, variable: str = "OPEND_RATE_LIMIT") -> RateLimit:
    """OPEND_RATE_LIMIT's value (or another rate variable's, named in the error)."""
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise ConfigError(f"{variable}={text!r}: {exc}") from None


def parse_reply_timeout(text: str) -> float:
    """OPEND_REPLY_TIMEOUT's value."""
    return _seconds("OPEND_REPLY_TIMEOUT", text)


def parse_outage_timeout(text: str) -> float:
    """SHORTINTEREST_OUTAGE_TIMEOUT's value."""
    return _seconds("SHORTINTEREST_OUTAGE_TIMEOUT", text)


def _seconds(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected a number of seconds") from None


@dataclass(frozen=True, slots=True)
class Gateway:
    """One OpenD, logged into its own account: its own budget, hence its own limiter bucket."""

    host: str
    port: int
    rate_limit: RateLimit

    @property
    def name(self) -> str:
        """HOST:PORT, as the client names its endpoint."""
        return f"{self.host}:{self.port}"

    @property
    def bucket(self) -> str:
        """The shared limiter's bucket: every process and run using this gateway books its requests here."""
        return f"opend:{self.name}:Qot_GetShortInterest"


def parse_gateways(text: str, default_rate: RateLimit) -> tuple[Gateway, ...]:
    """OPEND_GATEWAYS's value: `HOST:PORT[@REQUESTS/SECONDS]`, comma-separated; no rate means `default_rate`."""
    gateways: list[Gateway] = []
    for raw in text.split(","):
        entry = raw.strip()
        address, at, rate_text = entry.partition("@")
        host, colon, port_text = address.strip().rpartition(":")
        host = host.strip().removeprefix("[").removesuffix("]")
        if not entry or not colon or not host or not (port_text.strip().isascii() and port_text.strip().isdigit()):
            raise ConfigError(f"OPEND_GATEWAYS={text!r}: {entry!r} is not HOST:PORT or HOST:PORT@REQUESTS/SECONDS")
        port = int(port_text)
        if not 0 < port < 65536:
            raise ConfigError(f"OPEND_GATEWAYS={text!r}: {entry!r} has port {port}, expected 1 to 65535")
        try:
            rate = RateLimit.parse(rate_text) if at else default_rate
        except ValueError as exc:
            raise ConfigError(f"OPEND_GATEWAYS entry {address.strip()}={rate_text!r}: {exc}") from None
        gateway = Gateway(host, port, rate)
        if any(g.name == gateway.name for g in gateways):
            raise ConfigError(f"OPEND_GATEWAYS={text!r}: {gateway.name} is listed twice")
        gateways.append(gateway)
    return tuple(gateways)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a load needs, checked once here whether it came from the environment or from resources."""

    opend_host: str = DEFAULT_HOST
    opend_port: int = DEFAULT_PORT
    rate_limit: RateLimit = DEFAULT_RATE_LIMIT
    database_url: str = DEFAULT_DATABASE_URL
    watchlist_path: Path = PACKAGED_WATCHLIST
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT
    # Read by the client when it is built, so a bad key file is refused naming its path before any request.
    rsa_key_file: Path | None = None
    outage_timeout: float = DEFAULT_OUTAGE_TIMEOUT
    # OPEND_GATEWAYS; empty means the one gateway at opend_host:opend_port (see `all_gateways`).
    gateways: tuple[Gateway, ...] = ()
    listing_rate_limit: RateLimit = DEFAULT_LISTING_RATE_LIMIT

    @property
    def all_gateways(self) -> tuple[Gateway, ...]:
        """Every gateway a load uses, in the configured order."""
        return self.gateways or (Gateway(self.opend_host, self.opend_port, self.rate_limit),)

    def __post_init__(self) -> None:
        if not 0 < self.opend_port < 65536:
            raise ConfigError(f"OPEND_PORT={str(self.opend_port)!r}: expected a port number from 1 to 65535")
        if not 0 < self.reply_timeout < float("inf"):
            raise ConfigError(
                f"OPEND_REPLY_TIMEOUT={f'{self.reply_timeout:g}'!r}: expected a positive number of seconds"
            )
        if not 0 <= self.outage_timeout < float("inf"):
            raise ConfigError(
                f"SHORTINTEREST_OUTAGE_TIMEOUT={f'{self.outage_timeout:g}'!r}: expected 0 or more seconds"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        port_text = env.get("OPEND_PORT", str(DEFAULT_PORT))
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"OPEND_PORT={port_text!r}: expected a port number") from None
        rate_text = env.get("OPEND_RATE_LIMIT")
        timeout_text = env.get("OPEND_REPLY_TIMEOUT")
        outage_text = env.get("SHORTINTEREST_OUTAGE_TIMEOUT")
        rate_limit = parse_rate_limit(rate_text) if rate_text is not None else DEFAULT_RATE_LIMIT
        gateways_text = env.get("OPEND_GATEWAYS", "").strip()
        listing_text = env.get("OPEND_LISTING_RATE_LIMIT")
        return cls(
            opend_host=env.get("OPEND_HOST") or DEFAULT_HOST,
            opend_port=port,
            rate_limit=rate_limit,
            database_url=env.get("SHORTINTEREST_DATABASE_URL") or DEFAULT_DATABASE_URL,
            watchlist_path=Path(env.get("SHORTINTEREST_WATCHLIST") or PACKAGED_WATCHLIST),
            reply_timeout=parse_reply_timeout(timeout_text) if timeout_text is not None else DEFAULT_REPLY_TIMEOUT,
            rsa_key_file=Path(env["OPEND_RSA_KEY_FILE"]) if env.get("OPEND_RSA_KEY_FILE") else None,
            outage_timeout=parse_outage_timeout(outage_text) if outage_text is not None else DEFAULT_OUTAGE_TIMEOUT,
            gateways=parse_gateways(gateways_text, rate_limit) if gateways_text else (),
            listing_rate_limit=(
                parse_rate_limit(listing_text, "OPEND_LISTING_RATE_LIMIT")
                if listing_text is not None
                else DEFAULT_LISTING_RATE_LIMIT
            ),
        )


DEFAULT_SMTP_PORT = 587
DEFAULT_ALERT_INTERVAL = 60


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Where alerts go. The webhook URL and the SMTP password are secrets: never logged, never in an alert."""

    webhook_url: str = ""
    email_to: tuple[str, ...] = ()
    email_from: str = "shortinterest@localhost"
    smtp_host: str = ""
    smtp_port: int = DEFAULT_SMTP_PORT
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    ui_url: str = ""
    interval_seconds: int = DEFAULT_ALERT_INTERVAL

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url or self.email_to)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never appear in a log line or an alert."""
        return tuple(s for s in (self.webhook_url, self.smtp_password) if s)

    def __post_init__(self) -> None:
        if self.email_to and not self.smtp_host:
            raise ConfigError("SHORTINTEREST_ALERT_EMAIL_TO is set but SHORTINTEREST_SMTP_HOST is not")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            # The URL is a secret: name the variable, not the value.
            raise ConfigError("SHORTINTEREST_ALERT_WEBHOOK_URL: expected an http:// or https:// URL")
        if not 0 < self.smtp_port < 65536:
            raise ConfigError(
                f"SHORTINTEREST_SMTP_PORT={str(self.smtp_port)!r}: expected a port number from 1 to 65535"
            )
        if self.interval_seconds < 1:
            raise ConfigError(
                f"SHORTINTEREST_ALERT_INTERVAL={str(self.interval_seconds)!r}: expected 1 or more seconds"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlertSettings:
        env = os.environ if environ is None else environ
        user = env.get("SHORTINTEREST_SMTP_USER", "").strip()
        return cls(
            webhook_url=env.get("SHORTINTEREST_ALERT_WEBHOOK_URL", "").strip(),
            email_to=tuple(a.strip() for a in env.get("SHORTINTEREST_ALERT_EMAIL_TO", "").split(",") if a.strip()),
            email_from=env.get("SHORTINTEREST_ALERT_EMAIL_FROM", "").strip() or user or "shortinterest@localhost",
            smtp_host=env.get("SHORTINTEREST_SMTP_HOST", "").strip(),
            smtp_port=_whole("SHORTINTEREST_SMTP_PORT", env.get("SHORTINTEREST_SMTP_PORT"), DEFAULT_SMTP_PORT),
            smtp_user=user,
            smtp_password=env.get("SHORTINTEREST_SMTP_PASSWORD", ""),
            ui_url=env.get("SHORTINTEREST_UI_URL", "").strip().rstrip("/"),
            interval_seconds=_whole(
                "SHORTINTEREST_ALERT_INTERVAL", env.get("SHORTINTEREST_ALERT_INTERVAL"), DEFAULT_ALERT_INTERVAL
            ),
        )


def _whole(name: str, text: str | None, default: int) -> int:
    if text is None or not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected a whole number") from None
