"""Everything one gateway process is configured with, validated once at the boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from proto_client.simulator.demo_data import MAX_EXTRA_CODES
from proto_client.simulator.faults import FaultPlan
from proto_client.simulator.rate_window import RateSpec

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11111
DEFAULT_KEEPALIVE_INTERVAL = 10


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    as_of: date
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    rate: RateSpec | None = field(default_factory=lambda: RateSpec(30, 30.0))
    revision: int = 0
    extra_codes: int = 0
    keepalive_interval: int = DEFAULT_KEEPALIVE_INTERVAL
    idle_timeout: float = 0.0  # close connections silent this long; 0 keeps them open
    lazy_end: bool = False
    faults: FaultPlan = field(default_factory=FaultPlan)
    stats_file: Path | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"port {self.port} is not a TCP port (0 picks a free one)")
        if self.revision < 0:
            raise ValueError(f"revision must be 0 or more, got {self.revision}")
        if not 0 <= self.extra_codes <= MAX_EXTRA_CODES:
            raise ValueError(f"extra-codes must be between 0 and {MAX_EXTRA_CODES}, got {self.extra_codes}")
        if self.keepalive_interval < 1:
            raise ValueError(f"keepalive-interval must be at least 1 second, got {self.keepalive_interval}")
        if self.idle_timeout < 0:
            raise ValueError(f"idle-timeout must be 0 (off) or positive, got {self.idle_timeout}")
