"""One crawl per code at a time, across processes sharing the warehouse.

Two loaders crawling the same code at once would interleave their pages and cursors: the second would
take the first's live cursor for an interrupted crawl and skip pages it was asked to read. So a crawl
holds a per-code lock that dies with its process (a kill -9 leaves a cursor to resume, never a stuck
lock): a session advisory lock on Postgres, an flock on a file beside the database on SQLite.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import sqlalchemy as sa

from pipelines.crawl.lock_keys import advisory_lock_key

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.1
_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock wait that ran past lock_timeout
# Built once: a crawl takes and releases a lock per code, and building a statement costs more than running it.
_KEY = sa.bindparam("key", type_=sa.BigInteger())
_TRY_LOCK = sa.select(sa.func.pg_try_advisory_lock(_KEY))
_LOCK = sa.select(sa.func.pg_advisory_lock(_KEY))
_UNLOCK = sa.select(sa.func.pg_advisory_unlock(_KEY))


class CodeLockTimeout(RuntimeError):
    """Another loader kept crawling the code for longer than this one would wait."""


@contextmanager
def code_lock(
    engine: sa.Engine, code: str, *, timeout: float, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold the crawl lock of `code`; `on_wait` is called once if another loader holds it."""
    if engine.dialect.name == "postgresql":
        with _postgres_lock(engine, code, timeout, on_wait):
            yield
        return
    database = engine.url.database or ""
    if engine.dialect.name == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:"):
        with _file_lock(Path(database), code, timeout, on_wait):
            yield
        return
    yield  # an in-memory database lives in one process: nothing to share


@contextmanager
def _postgres_lock(engine: sa.Engine, code: str, timeout: float, on_wait: Callable[[], None] | None) -> Iterator[None]:
    key = advisory_lock_key(f"crawl:{code}")
    with engine.connect() as base:
        conn = base.execution_options(isolation_level="AUTOCOMMIT")
        if not conn.execute(_TRY_LOCK, {"key": key}).scalar_one():
            if on_wait is not None:
                on_wait()
            conn.execute(sa.text(f"SET lock_timeout = {max(1, int(timeout * 1000))}"))
            try:
                conn.execute(_LOCK, {"key": key})
            except sa.exc.OperationalError as exc:
                # Only our own timeout means the other loader held on; a lost connection (an outage, ridden
                # out by the crawler) or a statement timeout of the role's says something else.
                if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                    raise
                raise CodeLockTimeout(
                    f"another loader has been crawling {code} for more than {timeout:.0f} s"
                ) from None
            finally:
                with suppress(sa.exc.SQLAlchemyError):  # a lost connection is discarded, setting and all
                    conn.execute(sa.text("RESET lock_timeout"))
        try:
            yield
        finally:
            try:
                conn.execute(_UNLOCK, {"key": key})
            except sa.exc.SQLAlchemyError as exc:  # the session is gone, and its lock with it
                log.info("crawl lock of %s released with its connection (%s)", code, exc)
                base.invalidate()


@contextmanager
def _file_lock(database: Path, code: str, timeout: float, on_wait: Callable[[], None] | None) -> Iterator[None]:
    directory = database.with_name(database.name + ".locks")
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f"{code}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                if time.monotonic() > deadline:
                    raise CodeLockTimeout(
                        f"another loader has been crawling {code} for more than {timeout:.0f} s"
                    ) from None
                time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
