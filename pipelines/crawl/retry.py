"""Which failures are worth another try, and how long to wait before it.

Exponential backoff with full jitter (a uniform draw up to the exponential bound) spreads the retries
of several loaders hit by the same outage instead of having them return in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import sqlalchemy.exc

from proto_client.errors import EncryptionError, GatewayConnectionError, RequestError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` tries in all (1 = no retry); waits drawn from [0, min(cap, base * 2**(n-1))]."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if self.base < 0 or self.cap < 0:
            raise ValueError(f"RetryPolicy.base and cap must not be negative, got {self.base} and {self.cap}")

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the `failures`-th consecutive failure (1-based)."""
        bound = min(self.cap, self.base * 2 ** (failures - 1))
        return rng.uniform(0.0, bound)


def is_transient(exc: BaseException) -> bool:
    """Failures that say nothing about the code itself: the gateway, network or database may recover.

    Frequency rejections are transient too: another program on the account may have used the budget.
    Unknown securities, malformed codes, invalid rows, protocol violations and a link whose encryption
    settings disagree with the gateway's are not.
    """
    if isinstance(exc, EncryptionError):
        return False
    if isinstance(exc, GatewayConnectionError):
        return True
    if isinstance(exc, RequestError):
        return exc.is_transient
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return True
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated
