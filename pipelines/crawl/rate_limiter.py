"""One rate limiter shared by every loader that writes to the same warehouse.

OpenD allows a fixed number of Qot_GetShortInterest requests per sliding window *per account*, across
all connections and processes, and answers the rest with a frequency error. The limit is therefore
enforced where every loader already meets, the warehouse database, by handing out reservations:

* In one short transaction holding a lock on the bucket (Postgres: `pg_advisory_xact_lock`; SQLite:
  `BEGIN IMMEDIATE`), read the bucket's newest N reservations and reserve the earliest instant
  `t >= now` at which the N-th newest is at least `window + margin` old; insert `t`; commit.
* Sleep until `t`, then send. Any N+1 consecutive reservations thus span at least `window + margin`,
  so the gateway never sees N+1 requests in one window, while a busy bucket runs at N per
  `window + margin` (>= 97 % of the budget with the default margin).
* A request sent later than its slot comes that much closer to the one booked N slots after it, so a
  caller that wakes more than a third of the margin late (a process starved of CPU) gives its slot back and
  books again instead of sending: the rest of the margin covers the network and the gateway's own timing,
  however starved this machine gets.
* Reservations are handed out in lock order and never move (a slot given back is booked anew at the
  back), so loaders are served first come, first served: none can starve, and nobody polls. One clock
  serves all processes (the database's
  `clock_timestamp()` on Postgres, the host clock on SQLite), and sleeping is measured locally from
  the moment that clock was read, so skew between machines does not matter. (Postgres queues lock
  waiters in order; SQLite's busy handler may let a caller that arrives within the same few
  milliseconds go first, which reorders near-simultaneous arrivals but cannot starve anyone.)

Why not pyrate-limiter's SQL buckets: its Postgres bucket takes `LOCK TABLE ... NOWAIT` and reports
"full" when another writer holds the lock, and a full bucket makes the Limiter sleep an estimate and
try again, so concurrent waiters race instead of queueing (no fairness, and retries that are polling);
its SQLite bucket reads each process's own clock and needs a file lock for multi-process use; both
manage their own tables and connections outside the warehouse's engine and migrations. The design
above is small, exact on both databases, and lives in migration 0002.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa

from pipelines.config import RateLimit
from pipelines.crawl.lock_keys import advisory_lock_key
from proto_client.static_info import LISTING_PROTOS

DEFAULT_BUCKET = "opend:Qot_GetShortInterest"

metadata = sa.MetaData()

# Created by migrations/versions/0002_rate_limiter.py; kept identical to it.
reservations = sa.Table(
    "rate_limit_reservations",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("bucket", sa.String(200), nullable=False),
    # Seconds since the epoch on the bucket's shared clock.
    sa.Column("reserved_at", sa.Float(precision=53), nullable=False),
    sa.Index("ix_rate_limit_reservations_bucket_reserved_at", "bucket", "reserved_at"),
)


# A wait longer than this is announced (`on_long_wait`): a person watching a load sees why it sits still.
LONG_WAIT_SECONDS = 2.0


class RateLimiterError(RuntimeError):
    """The limiter could not hand out a slot within its bounds; the message says which bound."""


def default_margin(rate: RateLimit) -> float:
    """Slack on top of the window for network delay and the gateway's timing: 0.15 s, or 1 % of long windows.

    Lateness on this side needs none of it (late slots are booked again, see `acquire`), so the margin
    can stay small enough for short windows to keep 97 % of their budget."""
    return min(max(0.15, 0.01 * rate.seconds), 2.0)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Slot `id` at `at` on the shared clock, booked when that clock read `now` (local `read_monotonic`)."""

    id: int
    at: float
    now: float
    read_monotonic: float

    @property
    def delay(self) -> float:
        return max(0.0, self.at - self.now)

    def wait(self) -> float:
        """Sleep until the slot, timed locally from when the shared clock was read; returns seconds slept."""
        remaining = self.read_monotonic + self.delay - time.monotonic()
        if remaining <= 0:
            return 0.0
        time.sleep(remaining)
        return remaining

    def late_by(self) -> float:
        """Seconds past the slot on the local clock (negative while it is still ahead)."""
        return time.monotonic() - (self.read_monotonic + self.delay)


class SharedRateLimiter:
    """Sliding-window limiter over the warehouse database; safe across threads and processes."""

    def __init__(
        self,
        engine: sa.Engine,
        rate: RateLimit,
        *,
        bucket: str = DEFAULT_BUCKET,
        margin: float | None = None,
        max_wait: float | None = None,
        lock_timeout: float = 30.0,
    ) -> None:
        if not bucket or len(bucket) > 200:
            raise ValueError(f"rate limiter bucket must be 1 to 200 characters, got {bucket!r}")
        margin = default_margin(rate) if margin is None else margin
        if margin < 0:
            raise ValueError(f"rate limiter margin must not be negative, got {margin}")
        if lock_timeout <= 0:
            raise ValueError(f"rate limiter lock_timeout must be positive, got {lock_timeout}")
        self.engine = engine
        self.rate = rate
        self.bucket = bucket
        self.margin = margin
        # A queue longer than this means something is wrong (or far too many loaders): say so rather
        # than sleep for hours.
        self.max_wait = max(300.0, 20 * (rate.seconds + margin)) if max_wait is None else max_wait
        self.lock_timeout = lock_timeout
        self._span = rate.seconds + margin
        # Waking later than this past a slot gives it back (see `acquire`).
        self.late_tolerance = margin / 3
        self._totals_lock = threading.Lock()
        self._waited = 0.0
        self._acquired = 0
        # Told the seconds a request is about to wait, when that is more than LONG_WAIT_SECONDS.
        self.on_long_wait: Callable[[float], None] | None = None
        self._lock_key = advisory_lock_key(f"rate_limiter:{bucket}")
        self._newest_parameters = {"bucket": bucket, "n": rate.requests}
        self._set_lock_timeout = sa.text(f"SET LOCAL lock_timeout = {int(lock_timeout * 1000)}")

    def __repr__(self) -> str:
        return f"SharedRateLimiter({self.rate}, bucket={self.bucket!r}, margin={self.margin:g})"

    @property
    def waited_seconds(self) -> float:
        """Seconds all `acquire` calls on this instance have waited so far: progress reports take deltas."""
        return self._waited

    @property
    def acquired(self) -> int:
        return self._acquired

    def acquire(self) -> float:
        """Block until this caller may send one request; returns the seconds spent waiting."""
        started = time.monotonic()
        reservation = self.reserve()
        while True:
            if reservation.delay > LONG_WAIT_SECONDS and self.on_long_wait is not None:
                self.on_long_wait(reservation.delay)
            reservation.wait()
            if reservation.late_by() <= self.late_tolerance:
                break
            # Sending now could put this request within one window of the one booked N slots later.
            reservation = self.reserve(replacing=reservation)
        waited = time.monotonic() - started
        with self._totals_lock:
            self._waited += waited
            self._acquired += 1
        return waited

    def reserve(self, *, replacing: Reservation | None = None) -> Reservation:
        """Book the next slot without sleeping; the caller must not send before `wait()` returns.

        `replacing` is a slot this caller booked and did not use: it is given back in the same transaction,
        so it no longer holds a place in the window."""
        given_back = None if replacing is None else replacing.id
        if self.engine.dialect.name == "postgresql":
            return self._reserve_postgres(given_back)
        if self.engine.dialect.name == "sqlite":
            return self._reserve_sqlite(given_back)
        raise RateLimiterError(f"unsupported warehouse database {self.engine.dialect.name!r}")

    def _reserve_postgres(self, given_back: int | None) -> Reservation:
        with self.engine.begin() as conn:
            conn.execute(self._set_lock_timeout)
            conn.execute(_POSTGRES_LOCK, {"key": self._lock_key})
            if given_back is not None:
                conn.execute(_POSTGRES_GIVE_BACK, {"id": given_back})
            now, held, newest, oldest = conn.execute(_POSTGRES_NOW_AND_NEWEST, self._newest_parameters).one()
            read_monotonic = time.monotonic()
            at = self._next_slot(held, newest, oldest, now)
            booking = {"bucket": self.bucket, "at": at, "before": self._prune_before(now)}
            slot_id = conn.execute(_POSTGRES_BOOK_AND_PRUNE, booking).scalar_one()
            return Reservation(id=slot_id, at=at, now=now, read_monotonic=read_monotonic)

    def _reserve_sqlite(self, given_back: int | None) -> Reservation:
        try:
            return self._reserve_sqlite_raw(given_back)
        except sqlite3.Error as exc:
            # Raised as the engine raises it, so a busy warehouse reads as it does on PostgreSQL and everywhere
            # else: a database error the crawler retries, not an unexpected one that fails the code at once.
            raise sa.exc.DBAPIError.instance(
                f"booking a slot in rate limiter bucket {self.bucket!r}", None, exc, sqlite3.Error
            ) from exc

    def _reserve_sqlite_raw(self, given_back: int | None) -> Reservation:
        # Straight on the DBAPI connection: `BEGIN IMMEDIATE` must be the first statement, whatever
        # transaction handling the engine was configured with, and the connection is handed back unchanged.
        raw = self.engine.raw_connection()
        try:
            dbapi = cast(sqlite3.Connection, raw.driver_connection)  # this path runs on SQLite only
            saved_isolation = dbapi.isolation_level
            dbapi.isolation_level = None
            cursor = dbapi.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {int(self.lock_timeout * 1000)}")
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    if given_back is not None:
                        cursor.execute(_SQLITE_GIVE_BACK, (given_back,))
                    now, read_monotonic = time.time(), time.monotonic()
                    cursor.execute(_SQLITE_NEWEST, self._newest_parameters)
                    held, newest, oldest = cursor.fetchone()
                    at = self._next_slot(held, newest, oldest, now)
                    cursor.execute(_SQLITE_INSERT, (self.bucket, at))
                    slot_id = cursor.lastrowid
                    if slot_id is None:  # sqlite3 sets it after every INSERT of one row
                        raise RateLimiterError(f"booking a slot in rate limiter bucket {self.bucket!r} returned no id")
                    cursor.execute(_SQLITE_PRUNE, (self.bucket, self._prune_before(now)))
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            finally:
                cursor.close()
                dbapi.isolation_level = saved_isolation
        finally:
            raw.close()
        return Reservation(id=slot_id, at=at, now=now, read_monotonic=read_monotonic)

    def _next_slot(self, held: int, newest: float | None, oldest: float | None, now: float) -> float:
        """The reservation rule, given how many of the bucket's newest N slots it holds (under its lock) and
        the newest and oldest of those: once it holds N, the oldest is the N-th newest."""
        at = now
        if newest is not None:
            # Never earlier than the newest slot: keeps the queue FIFO even if the clock steps back.
            at = max(at, newest)
        if held >= self.rate.requests and oldest is not None:
            at = max(at, oldest + self._span)
        if at - now > self.max_wait:
            raise RateLimiterError(
                f"rate limiter bucket {self.bucket!r} is booked {at - now:.0f} s ahead, more than the "
                f"{self.max_wait:.0f} s allowed; too many loaders share the {self.rate} limit"
            )
        return at

    def _prune_before(self, now: float) -> float:
        # Slots older than one span can no longer constrain anyone; keep a minute more for inspection.
        return now - self._span - max(60.0, self._span)


# How many of the newest N slots the bucket holds, the newest and the oldest of them: all the rule reads, in
# one index scan, instead of sending N rows (thousands with a lifted limit) on every reservation. Named
# parameters, which sqlite3 and sa.text both take.
_NEWEST = (
    "count(*), max(reserved_at), min(reserved_at) FROM (SELECT reserved_at FROM rate_limit_reservations "
    "WHERE bucket = :bucket ORDER BY reserved_at DESC LIMIT :n) AS newest"
)
_POSTGRES_NOW_AND_NEWEST = sa.text(f"SELECT extract(epoch FROM clock_timestamp())::float8, {_NEWEST}")
_POSTGRES_LOCK = sa.text("SELECT pg_advisory_xact_lock(CAST(:key AS bigint))")
_POSTGRES_GIVE_BACK = sa.text("DELETE FROM rate_limit_reservations WHERE id = :id")
# The slot is booked and the bucket pruned in one statement (a data-modifying WITH): a round trip fewer per request.
_POSTGRES_BOOK_AND_PRUNE = sa.text(
    "WITH pruned AS (DELETE FROM rate_limit_reservations WHERE bucket = :bucket AND reserved_at < :before) "
    "INSERT INTO rate_limit_reservations (bucket, reserved_at) VALUES (:bucket, :at) RETURNING id"
)
_SQLITE_NEWEST = f"SELECT {_NEWEST}"
_SQLITE_INSERT = "INSERT INTO rate_limit_reservations (bucket, reserved_at) VALUES (?, ?)"
_SQLITE_GIVE_BACK = "DELETE FROM rate_limit_reservations WHERE id = ?"
_SQLITE_PRUNE = "DELETE FROM rate_limit_reservations WHERE bucket = ? AND reserved_at < ?"


def listing_bucket(gateway_name: str, call: str) -> str:
    """The bucket of one listing call on one gateway: OpenD limits each call apart, per account, so resolving a
    watchlist never takes the short-interest crawl's budget nor another call's."""
    return f"opend:{gateway_name}:{call}"


def listing_throttles(engine: sa.Engine, gateway_name: str, rate: RateLimit) -> dict[int, Callable[[], float]]:
    """proto id -> the shared limiter's acquire, one bucket per listing call of `gateway_name`."""
    return {
        proto_id: SharedRateLimiter(engine, rate, bucket=listing_bucket(gateway_name, call)).acquire
        for proto_id, call in LISTING_PROTOS.items()
    }
