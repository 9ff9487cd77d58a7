"""The shared limiter on real Postgres and SQLite: exact sliding window, FIFO service, honest waits."""

from __future__ import annotations

import itertools
import multiprocessing
import sqlite3
import threading
import time
from contextlib import ExitStack, closing

import pytest
import sqlalchemy as sa

from pipelines.config import RateLimit
from pipelines.crawl.lock_keys import advisory_lock_key
from pipelines.crawl.rate_limiter import (
    DEFAULT_BUCKET,
    RateLimiterError,
    SharedRateLimiter,
    default_margin,
    reservations,
)
from pipelines.crawl.retry import is_transient, is_warehouse_outage
from pipelines.warehouse import create_engine_for


def booked(warehouse_engine: sa.Engine, bucket: str = DEFAULT_BUCKET) -> list[float]:
    with warehouse_engine.connect() as conn:
        query = sa.select(reservations.c.reserved_at).where(reservations.c.bucket == bucket)
        return sorted(conn.execute(query).scalars())


def assert_window_respected(slots: list[float], rate: RateLimit, margin: float) -> None:
    """No N+1 slots inside any window + margin."""
    n = rate.requests
    for first, last in zip(slots, slots[n:], strict=False):
        assert last - first >= rate.seconds + margin - 1e-6, (first, last)


def test_a_busy_bucket_books_exactly_n_per_window_plus_margin(warehouse_engine: sa.Engine) -> None:
    rate = RateLimit(5, 2.0)
    limiter = SharedRateLimiter(warehouse_engine, rate, margin=0.25)
    slots = [limiter.reserve() for _ in range(17)]
    ats = [r.at for r in slots]
    assert ats == sorted(ats)
    # The first N go now; after that every slot is exactly one span after the N-th before it: the
    # whole budget is used and not a request more.
    assert all(r.delay == 0.0 for r in slots[:5])
    for i in range(5, 17):
        assert ats[i] == pytest.approx(ats[i - 5] + 2.25, abs=1e-6)
    assert booked(warehouse_engine) == pytest.approx(ats)


def test_threads_share_the_window_and_are_served_first_come_first_served(warehouse_engine: sa.Engine) -> None:
    rate, margin = RateLimit(4, 0.5), 0.05
    limiter = SharedRateLimiter(warehouse_engine, rate, margin=margin)
    grants: list[tuple[float, int]] = []
    waits: dict[int, list[float]] = {i: [] for i in range(6)}
    lock = threading.Lock()

    def worker(index: int) -> None:
        for _ in range(3):
            reservation = limiter.reserve()
            reservation.wait()
            with lock:
                grants.append((reservation.at, index))
            waits[index].append(time.time() - reservation.at)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    slots = booked(warehouse_engine)
    assert len(slots) == 18
    assert_window_respected(slots, rate, margin)
    assert_fifo(grants, workers=6)


def assert_fifo(grants: list[tuple[float, int]], workers: int) -> None:
    """No worker is overtaken by a queue that keeps moving: between two of its slots the others get at
    most two rounds' worth (one round if strictly first come, first served; slack for arrivals that race
    for the lock within the same milliseconds)."""
    order = [worker for _, worker in sorted(grants)]
    for worker in set(order):
        mine = [i for i, w in enumerate(order) if w == worker]
        for a, b in itertools.pairwise(mine):
            assert b - a - 1 <= 2 * (workers - 1), (worker, order)


def test_acquire_returns_the_time_waited_and_never_returns_early(warehouse_engine: sa.Engine) -> None:
    rate = RateLimit(3, 1.0)
    limiter = SharedRateLimiter(warehouse_engine, rate, margin=0.2)
    first = [limiter.reserve() for _ in range(3)]
    waited = limiter.acquire()
    released = time.time() if warehouse_engine.dialect.name == "sqlite" else _pg_now(warehouse_engine)
    # The 4th slot is one span after the 1st; acquire may not return before it.
    assert released >= first[0].at + 1.2 - 1e-3
    assert waited > 0.5
    assert limiter.acquire() < waited  # the 5th slot: the queue is now shorter than the wait was


def _pg_now(warehouse_engine: sa.Engine) -> float:
    with warehouse_engine.connect() as conn:
        return float(conn.execute(sa.text("SELECT extract(epoch FROM clock_timestamp())::float8")).scalar_one())


def test_buckets_are_independent(warehouse_engine: sa.Engine) -> None:
    rate = RateLimit(2, 30.0)
    a = SharedRateLimiter(warehouse_engine, rate, bucket="a")
    b = SharedRateLimiter(warehouse_engine, rate, bucket="b")
    assert [a.reserve().delay for _ in range(2)] == [0.0, 0.0]
    assert [b.reserve().delay for _ in range(2)] == [0.0, 0.0]
    assert a.reserve().delay > 29


def test_a_queue_longer_than_max_wait_is_an_error_not_a_hang(warehouse_engine: sa.Engine) -> None:
    limiter = SharedRateLimiter(warehouse_engine, RateLimit(1, 100.0), margin=0.0, max_wait=10.0)
    limiter.reserve()
    with pytest.raises(RateLimiterError, match=r"booked 100 s ahead, more than the 10 s allowed"):
        limiter.reserve()
    assert len(booked(warehouse_engine)) == 1  # the refused request reserved nothing


def test_old_slots_are_pruned(warehouse_engine: sa.Engine) -> None:
    limiter = SharedRateLimiter(warehouse_engine, RateLimit(2, 1.0), margin=0.0)
    with warehouse_engine.begin() as conn:
        conn.execute(sa.insert(reservations), [{"bucket": DEFAULT_BUCKET, "reserved_at": t} for t in (1.0, 2.0)])
    limiter.reserve()
    assert len(booked(warehouse_engine)) == 1


def test_default_margin_keeps_budget_use_at_least_97_percent() -> None:
    for rate in (RateLimit(30, 30), RateLimit(10, 5), RateLimit(60, 60), RateLimit(1000, 600)):
        assert rate.seconds / (rate.seconds + default_margin(rate)) >= 0.97
        assert default_margin(rate) >= 0.15


def test_a_slot_given_back_no_longer_holds_a_place_in_the_window(warehouse_engine: sa.Engine) -> None:
    limiter = SharedRateLimiter(warehouse_engine, RateLimit(2, 30.0), margin=0.2)
    first = limiter.reserve()
    late = limiter.reserve()
    time.sleep(limiter.late_tolerance + 0.05)  # as a process starved of CPU wakes past its slot
    assert late.late_by() > limiter.late_tolerance
    again = limiter.reserve(replacing=late)
    # Without the give-back this would be the third slot in the window, 30 s ahead.
    assert again.delay == 0.0 and again.at > late.at
    assert booked(warehouse_engine) == pytest.approx([first.at, again.at])
    # The window is full again: the next slot is one span after the first.
    assert limiter.reserve().at == pytest.approx(first.at + 30.2, abs=1e-6)


def test_acquire_never_sends_on_a_slot_it_woke_too_late_for(warehouse_engine: sa.Engine) -> None:
    # A tolerance below zero makes every wake late; the loop must book again, not send, and give each
    # missed slot back so the bucket never holds more than one of this caller's slots.
    limiter = SharedRateLimiter(warehouse_engine, RateLimit(5, 1.0), margin=0.2)
    limiter.late_tolerance = -1.0
    rebooked: list[int] = []
    original = limiter.reserve

    def counting(*, replacing=None):  # type: ignore[no-untyped-def]
        if replacing is not None:
            rebooked.append(replacing.id)
            if len(rebooked) == 3:
                limiter.late_tolerance = 1.0
        return original(replacing=replacing)

    limiter.reserve = counting  # type: ignore[method-assign]
    limiter.acquire()
    assert len(rebooked) == 3
    assert len(booked(warehouse_engine)) == 1


def test_a_bucket_locked_past_the_lock_timeout_is_a_database_error_the_crawler_retries(
    warehouse_engine: sa.Engine,
) -> None:
    limiter = SharedRateLimiter(warehouse_engine, RateLimit(5, 1.0), lock_timeout=0.3)
    with ExitStack() as held:
        if warehouse_engine.dialect.name == "postgresql":  # another loader in the middle of a booking
            conn = held.enter_context(warehouse_engine.begin())
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(advisory_lock_key(f"rate_limiter:{DEFAULT_BUCKET}"))))
        else:  # any writer of the SQLite file
            writer = held.enter_context(closing(sqlite3.connect(warehouse_engine.url.database, isolation_level=None)))
            writer.execute("BEGIN IMMEDIATE")
            held.callback(writer.execute, "ROLLBACK")
        with pytest.raises(sa.exc.OperationalError) as caught:
            limiter.reserve()
    assert is_transient(caught.value) and not is_warehouse_outage(caught.value)
    assert limiter.reserve().delay == 0.0  # the lock gone, the bucket books again


def test_bad_arguments_are_named() -> None:
    warehouse_engine = sa.create_engine("sqlite://")
    with pytest.raises(ValueError, match="bucket"):
        SharedRateLimiter(warehouse_engine, RateLimit(1, 1), bucket="")
    with pytest.raises(ValueError, match="margin"):
        SharedRateLimiter(warehouse_engine, RateLimit(1, 1), margin=-1)


def _process_worker(url: str, index: int, count: int, out: multiprocessing.Queue) -> None:
    warehouse_engine = create_engine_for(url)
    limiter = SharedRateLimiter(warehouse_engine, RateLimit(4, 0.5), margin=0.05)
    for _ in range(count):
        reservation = limiter.reserve()
        waited = reservation.wait()
        out.put((reservation.at, index, waited))
    warehouse_engine.dispose()


@pytest.mark.slow
def test_processes_share_one_window(warehouse_engine: sa.Engine, database_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(database_url, i, 5, out)) for i in range(3)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in range(15)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    slots = booked(warehouse_engine)
    assert sorted(at for at, _, _ in results) == pytest.approx(slots)
    assert_window_respected(slots, RateLimit(4, 0.5), 0.05)
    assert sum(w for _, _, w in results) > 0  # 15 requests at 4 per 0.55 s: somebody waited
    assert_fifo([(at, worker) for at, worker, _ in results], workers=3)
