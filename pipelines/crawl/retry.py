"""Which failures are worth another try, which are an outage of something every code shares, and backoff.

Three kinds of failure, each handled where it belongs:

* an outage of a shared dependency (the gateway unreachable, refusing, resetting or timing out, its
  retType -100/-200, its quote login down; the warehouse's connection errors) pauses the whole load
  until the dependency answers (pipelines.crawl.outage);
* a transient per-request failure (a frequency rejection, a lock timeout) is retried a few times with
  backoff;
* anything else (unknown code, invalid row, a paging loop, other refusals) fails only the code at hand.

Exponential backoff with full jitter (a uniform draw up to the exponential bound) spreads the retries
of several loaders instead of having them return in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import sqlalchemy.exc

from proto_client.errors import EncryptionError, GatewayConnectionError, QuoteLoginError, RequestError

# SQLSTATEs that mean the server (not the statement) is unavailable: connection exceptions (class 08),
# shutdown or crash of the server, a server still starting or recovering, too many connections, and a
# read-only standby answering for a primary during a failover.
_SERVER_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300", "25006"})


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


def is_gateway_outage(exc: BaseException) -> bool:
    """The gateway itself is unavailable, whatever the code: no connection, no reply, or it says it is down.

    Encryption settings that disagree with the gateway's are no outage: they stay wrong until fixed.
    """
    if isinstance(exc, EncryptionError):
        return False
    if isinstance(exc, GatewayConnectionError | QuoteLoginError):
        return True
    return isinstance(exc, RequestError) and exc.ret_type in (-100, -200)


def is_warehouse_outage(exc: BaseException) -> bool:
    """The warehouse's database server is unavailable (refused, lost, restarting, read-only standby).

    SQLite has no server to lose: its errors (a busy database, a full disk) are never an outage.
    """
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return False
    original = exc.orig
    if hasattr(original, "sqlite_errorcode"):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if state is None:
        # psycopg reports a refused, reset or timed-out connection without a SQLSTATE.
        return isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
    return state.startswith("08") or state in _SERVER_UNAVAILABLE_STATES


def is_transient(exc: BaseException) -> bool:
    """A per-request failure worth a few quick retries: it says nothing about the code itself.

    Frequency rejections are transient: another program on the account may have used the budget.
    Unknown securities, malformed codes, invalid rows, protocol violations and a link whose encryption
    settings disagree with the gateway's are not.
    """
    if isinstance(exc, EncryptionError):
        return False
    if is_gateway_outage(exc) or is_warehouse_outage(exc):
        return True
    if isinstance(exc, RequestError):
        return exc.is_transient
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return True
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated
