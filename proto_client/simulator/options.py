"""Everything one gateway process is configured with, validated once at the boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from proto_client.encryption import RsaKey
from proto_client.rate_limit import RateLimit
from proto_client.simulator.demo_data import MAX_EXTRA_CODES
from proto_client.simulator.faults import FaultPlan
from proto_client.simulator.listings import DEFAULT_MARKET_SIZE
from proto_client.simulator.market_codes import MAX_LISTED

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11111
DEFAULT_KEEPALIVE_INTERVAL = 10


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    as_of: date | None  # None: today in each market's own time zone
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    rate: RateLimit | None = field(default_factory=lambda: RateLimit(30, 30.0))
    revision: int = 0
    extra_codes: int = 0
    keepalive_interval: int = DEFAULT_KEEPALIVE_INTERVAL
    idle_timeout: float = 0.0  # close connections silent this long; 0 keeps them open
    lazy_end: bool = False
    faults: FaultPlan = field(default_factory=FaultPlan)
    stats_file: Path | None = None
    rsa_key: RsaKey | None = None  # require encrypted links, as OpenD configured with this key does
    force_ecb: bool = False  # FTAES-ECB whatever the client asks for
    opaque_keys: bool = False  # hand out page keys as opaque tokens instead of timestamps
    notify_every: int = 0  # push a Notify frame before every Nth reply on a connection; 0: never
    qot_logined: bool = True  # False: logged out of the quote server, 3249 refused
    loop_code: str | None = None  # answer every page of this code with its first page (paging in a loop)
    refuse_init_connect: str | None = None  # answer every InitConnect with retType -1 and this retMsg
    # Each listing proto (3202, 3205, 3213, 3222) has a sliding window of its own, as OpenD's limits are per call.
    listing_rate: RateLimit | None = field(default_factory=lambda: RateLimit(10, 30.0))
    market_size: int = DEFAULT_MARKET_SIZE  # synthetic listed codes per market (HK, US)
    groups_file: Path | None = None  # the custom watchlist groups as JSON, read on every request

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"port {self.port} is not a TCP port (0 picks a free one)")
        if self.revision < 0:
            raise ValueError(f"revision must be 0 or more, got {self.revision}")
        if not 0 <= self.extra_codes <= MAX_EXTRA_CODES:
            raise ValueError(f"extra-codes must be between 0 and {MAX_EXTRA_CODES}, got {self.extra_codes}")
        if self.keepalive_interval < 1:
            raise ValueError(f"keepalive-interval must be at least 1 second, got {self.keepalive_interval}")
        if self.force_ecb and self.rsa_key is None:
            raise ValueError("--aes ecb needs --rsa-key: a gateway without a key does not encrypt")
        if self.notify_every < 0:
            raise ValueError(f"notify-every must be 0 (off) or a positive count, got {self.notify_every}")
        if self.idle_timeout < 0:
            raise ValueError(f"idle-timeout must be 0 (off) or positive, got {self.idle_timeout}")
        if not 0 <= self.market_size <= MAX_LISTED:
            raise ValueError(f"market-size must be between 0 and {MAX_LISTED}, got {self.market_size}")
        if self.refuse_init_connect is not None and not self.refuse_init_connect.strip():
            raise ValueError("refuse-init-connect needs the message to refuse with, got an empty one")
