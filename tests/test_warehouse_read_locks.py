"""Readers never hold up writers: a page is written promptly while a long read of the warehouse stays open.

On SQLite a reader that took the write lock would make every loader's page wait out the busy timeout (30 s)
and then fail with "database is locked"; the writer here runs in its own process, as a loader does.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.warehouse import create_engine_for, row_counts, upsert_batch
from pipelines.warehouse.engine import read_connection
from pipelines.warehouse.read import iter_short_interest_frames
from tests.conftest import migrated_engine
from tests.test_warehouse_upsert import FIRST_DAY, us_history

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

# A page takes milliseconds; waiting for a reader's lock would take the 30 s busy timeout.
WRITE_WITHIN_S = 10.0
STORED = {"US.AAPL": 1_500, "US.MSFT": 1_500}  # about 150 KB of CSV: more than a pipe holds
NEW_CODE = "US.ZZZZ"


def _load(engine: sa.Engine) -> int:
    for code, days in STORED.items():
        upsert_batch(engine, us_history(code, days, start=FIRST_DAY.replace(year=2018)))
    return sum(STORED.values())


def _write_page(url: str, go: Event, results: Queue[float | str]) -> None:
    """In its own process: wait for `go`, write one page, report its seconds or its error."""
    engine = create_engine_for(url)
    try:
        go.wait(timeout=120)
        started = time.monotonic()
        upsert_batch(engine, us_history(NEW_CODE, 50))
        results.put(time.monotonic() - started)
    except Exception as exc:  # reported to the test, which fails with it
        results.put(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()


@contextmanager
def page_writer(url: str) -> Iterator[Callable[[], float | str]]:
    """A started writer process; calling the result lets it write and returns its seconds or what went wrong.

    The caller ends its read before leaving the block, so a writer still waiting then finishes and is joined.
    """
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    process = context.Process(target=_write_page, args=(url, go, results))
    process.start()

    def write() -> float | str:
        go.set()
        try:
            outcome: float | str = results.get(timeout=WRITE_WITHIN_S)
        except queue.Empty:
            return f"the page was not written within {WRITE_WITHIN_S:.0f} s of an open read"
        return outcome

    try:
        yield write
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
            process.join()


def _prompt(outcome: float | str) -> bool:
    return isinstance(outcome, float) and outcome < WRITE_WITHIN_S


def test_a_page_is_written_while_a_streamed_read_is_open(database_url: str) -> None:
    with migrated_engine(database_url) as engine:
        stored = _load(engine)
        with page_writer(database_url) as write:
            frames = iter_short_interest_frames(engine, chunk_rows=500)
            first = next(frames)  # the read is open, its cursor part-way through the US table
            outcome = write()
            rest = list(frames)
        assert _prompt(outcome), outcome
        # The read saw the warehouse as it was when it began, in chunks, and the page is stored.
        assert len(first) == 500 and sum(map(len, rest)) == stored - 500
        with read_connection(engine) as conn:
            assert row_counts(conn)[NEW_CODE] == 50


def test_a_page_is_written_while_an_export_waits_on_its_reader(sqlite_url: str, tmp_path: Path) -> None:
    """`shortinterest export | less`: the pager stops reading and the export waits, inside its read."""
    with migrated_engine(sqlite_url) as engine:
        stored = _load(engine)
    env = {**os.environ, "SHORTINTEREST_DATABASE_URL": sqlite_url}
    command = [sys.executable, "-m", "pipelines.cli", "export", "--format", "csv"]
    with page_writer(sqlite_url) as write:
        export = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            header = export.stdout.readline()  # type: ignore[union-attr]
            outcome = write()
            out, err = export.communicate(timeout=120)
        finally:
            export.kill()
    assert _prompt(outcome), outcome
    assert export.returncode == 0, err
    assert header.startswith("market,code,trade_date") and len(out.splitlines()) == stored
