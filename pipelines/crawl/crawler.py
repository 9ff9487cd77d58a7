"""Crawl short-interest history for codes into the warehouse: incremental, resumable, rate-limited.

Requests are the scarce resource (a shared budget of OPEND_RATE_LIMIT per account), so:

* A code loaded before is refreshed incrementally: pages are read newest first and the crawl stops at
  the first page that reaches back to the newest date of the last completed crawl. A weekly refresh
  costs one request per code, and the re-read rows pick up published revisions.
* A code never loaded (or `full=True`) walks the whole history. Each page commits in one transaction
  with the cursor of the next page, so a crash or kill loses at most one page and the next run resumes
  from the cursor, then reads from the top down to what it holds, to catch rows published meanwhile.
* The stop date of an incremental crawl is the one recorded at the last *completed* crawl, not the
  newest stored row: an incremental crawl that dies after its first page must not leave a gap that
  the next run would skip over.
* Page keys are opaque: stored and sent back byte for byte, the resume cursor too. A gateway paging in
  a loop (a key already used in the walk, or a page not older than the one before) fails that code
  alone at the first page that comes round again, which is not stored. A stored cursor the gateway
  refuses (keys can change across gateway upgrades) restarts that code's walk from the newest page,
  once, with a log line.
* One loader crawls a code at a time (pipelines.crawl.code_lock): a second one waits, then does its own
  crawl, instead of mistaking the first one's live cursor for an interrupted crawl.
* An outage of what every code shares (the gateway, its quote login, the warehouse; pipelines.crawl.retry
  tells them apart) fails no code: the crawl waits it out (pipelines.crawl.outage) and carries on with the same
  request, so no page is skipped or read twice. After a warehouse outage the code starts over from
  what the warehouse holds (its cursor), under a fresh crawl lock: the old one died with its session.
  Past SHORTINTEREST_OUTAGE_TIMEOUT, DependencyDownError stops the load; cursors stay for the next run.
* Other transient failures (frequency rejections, lock timeouts) are retried with backoff per
  request; anything else fails only the code at hand, is recorded with mark_error, and the crawl goes on.

A Crawler works one code at a time and is not meant to be shared between threads: its per-code
request and wait counts are deltas of its client's and limiter's counters. A code taken over from a lost
gateway (GatewayLostError carries what that attempt did) adds the earlier attempts' counts, so a code's
result counts every page, request and row of its crawl, and codes' requests add up to the gateways'.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import TypeVar

import sqlalchemy as sa

from pipelines.config import Gateway, Settings
from pipelines.crawl.code_lock import CodeLockTimeout, code_lock
from pipelines.crawl.dependencies import describe_gateway_outage, gateway_dependency, warehouse_dependency
from pipelines.crawl.events import CrawlEvent, EventKind
from pipelines.crawl.outage import Dependency, DependencyDownError, OutagePolicy
from pipelines.crawl.rate_limiter import RateLimiterError, SharedRateLimiter
from pipelines.crawl.retry import RetryPolicy, is_transient
from pipelines.failures import first_line
from pipelines.warehouse import (
    UpsertResult,
    create_engine_for,
    ensure_migrated,
    mark_attempt,
    mark_error,
    mark_success,
    newest_trade_date,
    read_connection,
    save_cursor,
    upsert_rows,
)
from pipelines.warehouse.errors import WarehouseError
from proto_client.client import OpenDClient
from proto_client.errors import GatewayConnectionError, InvalidCodeError, OpenDError, RequestError
from proto_client.page_walk import PageWalk
from proto_client.records import Page
from proto_client.security import Market, parse_code

log = logging.getLogger(__name__)

PAGE_SIZE = 50
_ASYNC_COMMIT = sa.text("SET LOCAL synchronous_commit = off")
DEFAULT_RETRY = RetryPolicy()

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CodeResult:
    """What one code's crawl did. `market` is None only for a code that does not parse."""

    code: str
    market: Market | None
    full: bool
    pages: int
    requests: int
    inserted: int
    updated: int
    unchanged: int
    waited_seconds: float
    elapsed_seconds: float
    newest_trade_date: date | None
    error: str | None
    resumed_from: str | None
    gateway: str = ""  # host:port of the gateway that served the code

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def mode(self) -> str:
        if self.resumed_from is not None:
            return "resumed"
        return "full" if self.full else "incremental"


@dataclass(frozen=True, slots=True)
class CrawlCounts:
    """What a code's crawl has done so far, handed on with the code when its gateway is lost mid-crawl."""

    pages: int = 0
    requests: int = 0
    rows: UpsertResult = field(default_factory=UpsertResult)
    waited_seconds: float = 0.0
    elapsed_seconds: float = 0.0  # time spent crawling it, not waiting in the queue between attempts


@dataclass
class _Progress:
    """Running totals of the code being crawled, from what earlier attempts on lost gateways did (`before`) on."""

    code: str
    waited_before: float
    requests_before: int
    before: CrawlCounts = CrawlCounts()
    started: float = field(default_factory=time.monotonic)
    full: bool = False
    resumed_from: str | None = None
    pages: int = 0
    rows: UpsertResult = field(default_factory=UpsertResult)


class GatewayLostError(Exception):
    """The crawler's gateway is down and another gateway can take the code: hand it back instead of waiting.

    `done` is what the code's crawl had done by then, for the attempt that takes it over to add in.
    """

    def __init__(self, reason: str, done: CrawlCounts) -> None:
        super().__init__(reason)
        self.done = done


class _WarehouseReturned(Exception):
    """The warehouse answers again after an outage: the code's crawl starts over from its saved state."""


@dataclass(frozen=True, slots=True)
class _Plan:
    cursor: str | None  # an interrupted full crawl resumes here
    stop_at: date | None  # newest date of the last completed crawl; None: crawl the whole history


class Crawler:
    """Loads codes through one client and the shared limiter into the warehouse behind `engine`.

    `gateway` and `warehouse` are the Dependency objects to wait on during an outage; loaders sharing a
    gateway or the warehouse should share them, so one prober serves them all. `leave_gateway`, asked
    when the gateway goes down, returns True when another gateway can take the code: the crawl then
    raises GatewayLostError instead of waiting the outage out (pipelines.crawl.gateway_pool).
    """

    def __init__(
        self,
        engine: sa.Engine,
        client: OpenDClient,
        limiter: SharedRateLimiter,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        on_event: Callable[[CrawlEvent], None] | None = None,
        lock_timeout: float = 3600.0,
        gateway: Dependency | None = None,
        warehouse: Dependency | None = None,
        leave_gateway: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.lock_timeout = lock_timeout
        self.client = client
        self.limiter = limiter
        self.retry = retry
        self.on_event = on_event
        self.gateway = gateway or gateway_dependency(client, OutagePolicy(), describe=describe_failure)
        self.warehouse = warehouse or warehouse_dependency(engine, OutagePolicy(), describe=describe_failure)
        self.leave_gateway = leave_gateway
        self._rng = random.Random()
        self._current: _Progress | None = None
        limiter.on_long_wait = self._announce_wait

    def _announce_wait(self, seconds: float) -> None:
        if self._current is not None:
            self._emit(
                self._current,
                EventKind.WAIT,
                f"waiting {seconds:.0f} s for the rate limit: {self.limiter.rate} requests/seconds are used up "
                "by this load and any other sharing the gateway's account",
            )

    def crawl_codes(self, codes: Sequence[str], *, full: bool = False) -> list[CodeResult]:
        """Crawl each code in turn; one failing code never stops the others."""
        return [self.crawl_code(code, full=full) for code in codes]

    def crawl_code(self, code: str, *, full: bool = False, before: CrawlCounts = CrawlCounts()) -> CodeResult:
        """Crawl one code; per-code failures come back in `error`, never as an exception.

        `before` is what attempts on lost gateways did (GatewayLostError.done): the result counts it too.
        Raises DependencyDownError when the gateway or the warehouse stays down past the outage bound:
        that is no failure of this code, and the load must stop rather than try the next one.
        """
        progress = _Progress(
            code,
            self.limiter.waited_seconds,
            self.client.requests_sent,
            before=before,
            pages=before.pages,
            rows=before.rows,
        )
        self._current = progress
        try:
            market = parse_code(code).market
        except InvalidCodeError as exc:
            self._emit(progress, EventKind.FAILED, str(exc))
            return self._result(progress, None, None, str(exc))
        while True:
            try:
                self._wait_until_up()  # while another loader probes a dependency, take no code
                newest = self._locked_crawl(code, full, progress)
                break
            except (DependencyDownError, GatewayLostError):
                raise
            except _WarehouseReturned:
                self._emit(progress, EventKind.START, "the warehouse is back: carrying on from its saved state")
                continue
            except Exception as exc:
                if self.warehouse.is_outage(exc):  # e.g. while taking the crawl lock
                    self.warehouse.ride_out(exc)
                    continue
                # A connection lost in a way that is no outage (a gateway killed while the client reconnects
                # reads as an encryption mismatch) is still no fault of the code: another gateway may take it.
                if isinstance(exc, GatewayConnectionError) and self.leave_gateway and self.leave_gateway(exc):
                    raise GatewayLostError(describe_failure(exc), self._counts(progress)) from exc
                return self._failed(progress, market, exc)
        self._emit(progress, EventKind.DONE, f"newest trade date {newest}" if newest else "no rows")
        return self._result(progress, market, newest, None)

    def _locked_crawl(self, code: str, full: bool, progress: _Progress) -> date | None:
        with code_lock(
            self.engine,
            code,
            timeout=self.lock_timeout,
            on_wait=lambda: self._emit(progress, EventKind.START, "waiting for another loader crawling it"),
        ):
            return self._crawl(code, full, progress)

    def _wait_until_up(self) -> None:
        self.gateway.wait_until_up()
        self.warehouse.wait_until_up()

    def _failed(self, progress: _Progress, market: Market, exc: Exception) -> CodeResult:
        message = describe_failure(exc)
        if not _is_expected(exc):
            log.exception("crawl of %s failed unexpectedly", progress.code)
        self._record_error(progress.code, message)
        self._emit(progress, EventKind.FAILED, message)
        return self._result(progress, market, None, message)

    def _crawl(self, code: str, full: bool, progress: _Progress) -> date | None:
        plan = self._retrying(progress, "reading the crawl state", lambda: self._plan(code))
        if plan.cursor is not None:
            progress.full, progress.resumed_from = True, plan.cursor
            self._emit(progress, EventKind.START, f"resuming an interrupted full crawl at page key {plan.cursor}")
            try:
                self._walk(code, progress, start_key=plan.cursor, stop_at=None, resumable=True, finish=False)
            except RequestError as exc:
                if progress.pages or exc.is_transient or exc.is_unknown_security:
                    raise
                return self._restart(code, plan.cursor, exc, progress)
            # The tail is done and everything from the first crawled page down is stored: read from the
            # top down to it for rows published since the interrupted crawl began.
            stop_at = self._retrying(progress, "reading the newest date", lambda: self._stored_newest(code))
            return self._walk(code, progress, start_key=None, stop_at=stop_at, resumable=stop_at is None)
        if full or plan.stop_at is None:
            progress.full = True
            self._emit(progress, EventKind.START, "full crawl")
            return self._walk(code, progress, start_key=None, stop_at=None, resumable=True)
        self._emit(progress, EventKind.START, f"incremental crawl down to {plan.stop_at}")
        return self._walk(code, progress, start_key=None, stop_at=plan.stop_at, resumable=False)

    def _restart(self, code: str, cursor: str, refusal: RequestError, progress: _Progress) -> date | None:
        """Walk the whole history from the newest page after the gateway refused the stored cursor."""
        message = f"the gateway refused the stored page key {cursor!r} ({refusal.ret_msg}); restarting from the top"
        log.warning("%s: %s", code, message)
        progress.resumed_from = None
        self._emit(progress, EventKind.START, message)
        return self._walk(code, progress, start_key=None, stop_at=None, resumable=True)

    def _plan(self, code: str) -> _Plan:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # The attempt stamp is all this transaction writes, and a database crash that lost it would cost
                # nothing: its commit need not wait for the disk, one flush fewer per code.
                conn.execute(_ASYNC_COMMIT)
            state = mark_attempt(conn, code)
            stored = newest_trade_date(conn, code)
        if state.full_crawl_cursor:
            return _Plan(state.full_crawl_cursor, None)
        if state.newest_trade_date is None or stored is None:
            return _Plan(None, None)
        return _Plan(None, min(state.newest_trade_date, stored))

    def _walk(
        self,
        code: str,
        progress: _Progress,
        *,
        start_key: str | None,
        stop_at: date | None,
        resumable: bool,
        finish: bool = True,
    ) -> date | None:
        """Fetch and store pages from `start_key` until the history ends or a page reaches `stop_at`.

        With `finish` the walk ends the crawl: its last page commits with the crawl's success (`_finish`),
        and the newest stored trade date is returned.
        """
        walk = PageWalk(code, start_key)
        key = start_key
        while True:
            page = self._retrying(
                progress,
                f"fetching page {progress.pages + 1}",
                partial(self.client.get_short_interest_page, code, key, PAGE_SIZE),
                uses_gateway=True,
            )
            next_key = walk.next_key(page)
            done = next_key is None or (stop_at is not None and _oldest(page) <= stop_at)
            cursor = None if done else next_key
            written, newest = self._retrying(
                progress,
                f"writing page {progress.pages + 1}",
                partial(self._write_page, code, page, cursor, resumable, finish=done and finish),
            )
            progress.pages += 1
            progress.rows = progress.rows + written
            self._emit(progress, EventKind.PAGE)
            if done:
                return newest
            key = next_key

    def _write_page(
        self, code: str, page: Page, cursor: str | None, resumable: bool, *, finish: bool
    ) -> tuple[UpsertResult, date | None]:
        """Store a page, with its resume cursor or, for the crawl's last page, the crawl's success."""
        with self.engine.begin() as conn:
            written = upsert_rows(conn, page.rows)
            if finish:
                return written, self._finish(conn, code)
            if resumable:
                save_cursor(conn, code, cursor)
        return written, None

    def _stored_newest(self, code: str) -> date | None:
        with read_connection(self.engine) as conn:
            return newest_trade_date(conn, code)

    def _finish(self, conn: sa.Connection, code: str) -> date | None:
        """Record the crawl's success in its last page's transaction: the crawl is done when that page is."""
        newest = newest_trade_date(conn, code)
        mark_success(conn, code, newest, self.client.endpoint)  # which also clears the resume cursor
        return newest

    def _retrying(self, progress: _Progress, what: str, action: Callable[[], T], *, uses_gateway: bool = False) -> T:
        """Run `action`, riding out outages and retrying transient failures; the last failure propagates.

        An outage costs no attempt: after a gateway outage the same request goes again; after a warehouse
        outage the code starts over from its saved state (_WarehouseReturned), under a fresh crawl lock.
        Every action uses the warehouse (page requests through the shared limiter); `uses_gateway` says a
        success also proves the gateway answers.
        """
        failures = 0
        while True:
            self._wait_until_up()
            try:
                result = action()
            except Exception as exc:
                if self.gateway.is_outage(exc):
                    if self.leave_gateway is not None and self.leave_gateway(exc):
                        reason = describe_gateway_outage(exc, describe_failure)
                        raise GatewayLostError(reason, self._counts(progress)) from exc
                    self.gateway.ride_out(exc)
                    continue
                if self.warehouse.is_outage(exc):
                    self.warehouse.ride_out(exc)
                    raise _WarehouseReturned from exc
                if not is_transient(exc):
                    raise
                failures += 1
                if failures >= self.retry.attempts:
                    raise
                delay = self.retry.backoff(failures, self._rng)
                message = (
                    f"{what}: {describe_failure(exc)}; retry {failures} of {self.retry.attempts - 1} in {delay:.1f} s"
                )
                log.info("%s: %s", progress.code, message)
                self._emit(progress, EventKind.RETRY, message, backoff=delay)
                time.sleep(delay)
                continue
            if uses_gateway:
                self.gateway.answered()
            self.warehouse.answered()
            return result

    def _record_error(self, code: str, message: str) -> None:
        try:
            with self.engine.begin() as conn:
                mark_error(conn, code, message)
        except Exception as exc:  # the database may be what failed; the result still carries the error
            log.warning("could not record the failure of %s in the warehouse: %s", code, exc)

    def _emit(self, progress: _Progress, kind: EventKind, message: str | None = None, **extra: float) -> None:
        if self.on_event is None:
            return
        event = CrawlEvent(
            code=progress.code,
            kind=kind,
            pages=progress.pages,
            inserted=progress.rows.inserted,
            updated=progress.rows.updated,
            unchanged=progress.rows.unchanged,
            waited=self._counts(progress).waited_seconds,
            message=message,
            **extra,
        )
        try:
            self.on_event(event)
        except Exception:  # a broken progress display must not fail a load
            log.exception("progress callback failed on %s", event)

    def _counts(self, progress: _Progress) -> CrawlCounts:
        """The code's crawl so far: this attempt's deltas of the client's and limiter's counters plus `before`."""
        before = progress.before
        return CrawlCounts(
            pages=progress.pages,  # pages and rows start from `before`'s
            requests=before.requests + self.client.requests_sent - progress.requests_before,
            rows=progress.rows,
            waited_seconds=before.waited_seconds + self.limiter.waited_seconds - progress.waited_before,
            elapsed_seconds=before.elapsed_seconds + time.monotonic() - progress.started,
        )

    def _result(self, progress: _Progress, market: Market | None, newest: date | None, error: str | None) -> CodeResult:
        counts = self._counts(progress)
        return CodeResult(
            code=progress.code,
            market=market,
            full=progress.full,
            pages=counts.pages,
            requests=counts.requests,
            inserted=counts.rows.inserted,
            updated=counts.rows.updated,
            unchanged=counts.rows.unchanged,
            waited_seconds=counts.waited_seconds,
            elapsed_seconds=counts.elapsed_seconds,
            newest_trade_date=newest,
            error=error,
            resumed_from=progress.resumed_from,
            gateway=self.client.endpoint,
        )


@contextmanager
def open_crawler(
    settings: Settings,
    *,
    on_event: Callable[[CrawlEvent], None] | None = None,
    on_outage: Callable[[str], None] | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    wait_at_start: bool = False,
) -> Iterator[Crawler]:
    """A Crawler on the configured warehouse and (first) gateway, every request throttled by its bucket of
    the shared limiter.

    Raises WarehouseNotMigratedError for a warehouse not at head, GatewayConnectionError (saying how to
    start the demo gateway) when nothing answers at the gateway's address, EncryptionError when the link's
    encryption settings disagree with the gateway's, and QuoteLoginError when the gateway is not logged in
    to the quote server, before any crawling: a gateway or database that never answered is more likely a
    setting to fix than an outage to wait for. `wait_at_start` waits for them as for an outage instead (a
    retried run, which knows they answered before). `on_outage` receives the few lines an outage is worth
    (default: this module's log).
    """
    with (
        open_warehouse(settings, on_outage=on_outage, wait_at_start=wait_at_start) as warehouse,
        crawler_on(
            settings.all_gateways[0],
            settings,
            warehouse,
            on_event=on_event,
            on_outage=on_outage,
            retry=retry,
            wait_at_start=wait_at_start,
        ) as crawler,
    ):
        yield crawler


@dataclass(frozen=True, slots=True)
class Warehouse:
    """The warehouse's engine and its outage Dependency, shared by every crawler of a load."""

    engine: sa.Engine
    dependency: Dependency


@contextmanager
def open_warehouse(
    settings: Settings, *, on_outage: Callable[[str], None] | None = None, wait_at_start: bool = False
) -> Iterator[Warehouse]:
    """The configured warehouse, checked to be at the head revision (waited for with `wait_at_start`)."""
    policy = OutagePolicy.waiting_at_most(settings.outage_timeout)
    engine = create_engine_for(settings.database_url)
    try:
        warehouse = warehouse_dependency(engine, policy, notify=on_outage or _log_outage, describe=describe_failure)
        if wait_at_start:
            warehouse.call(lambda: ensure_migrated(engine))
        else:
            ensure_migrated(engine)
        yield Warehouse(engine, warehouse)
    finally:
        engine.dispose()


@contextmanager
def crawler_on(
    gateway: Gateway,
    settings: Settings,
    warehouse: Warehouse,
    *,
    on_event: Callable[[CrawlEvent], None] | None = None,
    on_outage: Callable[[str], None] | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    wait_at_start: bool = False,
    leave_gateway: Callable[[BaseException], bool] | None = None,
) -> Iterator[Crawler]:
    """A Crawler on `gateway`, connected (or waited for, with `wait_at_start`), booking that gateway's bucket."""
    policy = OutagePolicy.waiting_at_most(settings.outage_timeout)
    limiter = SharedRateLimiter(warehouse.engine, gateway.rate_limit, bucket=gateway.bucket)
    client = OpenDClient(
        gateway.host,
        gateway.port,
        reply_timeout=settings.reply_timeout,
        throttle=limiter.acquire,
        rsa_key_file=settings.rsa_key_file,
        check_quote_login=True,
        settings_proven=wait_at_start,  # a retried run: these settings connected before
    )
    dependency = gateway_dependency(client, policy, notify=on_outage or _log_outage, describe=describe_failure)
    try:
        if wait_at_start:
            dependency.call(client.connect)
        else:
            client.connect()
        yield Crawler(
            warehouse.engine,
            client,
            limiter,
            retry=retry,
            on_event=on_event,
            gateway=dependency,
            warehouse=warehouse.dependency,
            leave_gateway=leave_gateway,
        )
    finally:
        client.close()


def _log_outage(line: str) -> None:
    log.warning("%s", line)


def describe_failure(exc: BaseException) -> str:
    """A one-line reason for a person: the gateway's own words for refused requests."""
    if isinstance(exc, RequestError):
        if exc.is_unknown_security:
            return f"the gateway does not know this code: {exc.ret_msg}"
        return f"the gateway refused the request: {exc.ret_msg or exc}"
    if isinstance(exc, sa.exc.SQLAlchemyError):
        return f"warehouse database error: {first_line(exc)}"
    text = first_line(exc)
    if _is_expected(exc) or text == type(exc).__name__:
        return text
    return f"{type(exc).__name__}: {text}"


def _is_expected(exc: BaseException) -> bool:
    return isinstance(
        exc,
        OpenDError | WarehouseError | sa.exc.SQLAlchemyError | InvalidCodeError | RateLimiterError | CodeLockTimeout,
    )


def _oldest(page: Page) -> date:
    return min(row.trade_date for row in page.rows)
