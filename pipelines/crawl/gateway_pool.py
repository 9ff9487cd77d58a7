"""One load over several gateways: a worker per gateway, all taking codes from one shared queue.

Each gateway is an OpenD logged into its own account, with its own budget (its own bucket in the
shared limiter), so N gateways load about N times as fast as one. The rules:

* Every worker has its own connection, limiter bucket and Crawler, and takes the next code from the
  queue when it is done with the last; a code is in one worker's hands at a time, and the per-code
  crawl lock keeps other processes off it.
* A gateway that goes down mid-load (unreachable, dropping the connection even after the client's
  reconnect, no reply, or logged out of the quote server: an outage, pipelines.crawl.retry) is lost:
  its worker hands the code back to the queue and takes no more, and the other workers finish the
  load. A code handed back resumes from the cursor its pages were committed with, and carries what
  the lost gateway did for it (GatewayLostError.done), so its result counts every attempt and the
  codes' requests add up to the gateways'.
* Only the last gateway standing waits an outage out, as a load over one gateway does
  (pipelines.crawl.outage); past the outage bound the load stops with DependencyDownError.
* A gateway that does not answer when the load starts (or refuses InitConnect) is left out and
  reported; the load fails before any request only when none answers.
* Results are yielded in the caller's thread as codes finish; crawl events are passed on one at a
  time, so a progress display need not be thread-safe.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from pipelines.config import Gateway, RateLimit, Settings
from pipelines.crawl.crawler import (
    DEFAULT_RETRY,
    CodeResult,
    CrawlCounts,
    Crawler,
    GatewayLostError,
    crawler_on,
    describe_failure,
    open_warehouse,
)
from pipelines.crawl.dependencies import describe_gateway_outage
from pipelines.crawl.events import CrawlEvent
from pipelines.crawl.retry import RetryPolicy
from proto_client.errors import GatewayConnectionError, QuoteLoginError

log = logging.getLogger(__name__)

# How often a waiting caller looks up from the result queue, so Ctrl-C is not held up.
_POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class GatewayUsage:
    """What one gateway did in a load: the load summary's per-gateway lines."""

    name: str
    codes: int  # codes it finished, loaded or failed
    requests: int
    waited_seconds: float
    lost: str | None  # why it was retired mid-load (or never answered); None while it served to the end

    @property
    def served(self) -> bool:
        return self.lost is None


@dataclass(frozen=True, slots=True)
class _Message:
    """From a worker to the caller's thread: a code taken, a code finished, or the worker's exit."""

    kind: Literal["start", "result", "error", "exit"]
    code: str = ""
    gateway: str = ""
    result: CodeResult | None = None
    error: BaseException | None = None


class CodeQueue:
    """The codes still to crawl, shared by the workers; a code handed back goes to the front, with what
    its crawl had done so far.

    `take` returns a code and what earlier attempts did for it; it waits while the queue is empty but
    codes are still in flight (one may be handed back), and returns None once every code is done or
    the queue is closed.
    """

    def __init__(self, codes: Sequence[str]) -> None:
        self._waiting: deque[tuple[str, CrawlCounts]] = deque((code, CrawlCounts()) for code in codes)
        self._in_flight = 0
        self._closed = False
        self._changed = threading.Condition()

    def take(self) -> tuple[str, CrawlCounts] | None:
        with self._changed:
            while not self._waiting and self._in_flight and not self._closed:
                self._changed.wait()
            if self._closed or not self._waiting:
                return None
            self._in_flight += 1
            return self._waiting.popleft()

    def done(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def give_back(self, code: str, done: CrawlCounts) -> None:
        with self._changed:
            self._in_flight -= 1
            self._waiting.appendleft((code, done))
            self._changed.notify_all()

    def close(self) -> list[str]:
        """Stop handing out codes; returns those never taken."""
        with self._changed:
            self._closed = True
            left, self._waiting = [code for code, _ in self._waiting], deque()
            self._changed.notify_all()
            return left


class _Worker:
    """One gateway's crawler (set once it is connected) and its running totals."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.crawler: Crawler
        self.codes = 0
        self.lost: str | None = None

    def usage(self) -> GatewayUsage:
        return GatewayUsage(
            self.gateway.name,
            self.codes,
            self.crawler.client.requests_sent,
            self.crawler.limiter.waited_seconds,
            self.lost,
        )


class GatewayPool:
    """Crawlers on every reachable gateway; `crawl` spreads codes over them. Open with `open_gateway_pool`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine  # the warehouse every worker writes to
        self._workers: list[_Worker] = []
        self._unreachable: dict[str, str] = {}
        self._retire_lock = threading.Lock()
        self._live = 0

    def _add(self, worker: _Worker) -> None:
        self._workers.append(worker)
        self._live += 1

    def _leave_out(self, gateway: Gateway, reason: str) -> None:
        log.warning("gateway %s does not answer: %s", gateway.name, reason)
        self._unreachable[gateway.name] = reason

    def leave(self, worker: _Worker) -> Callable[[BaseException], bool]:
        """The crawler's question when its gateway goes down: True retires it, when another can take the code."""
        return lambda exc: self._retire(worker, describe_gateway_outage(exc, describe_failure))

    @property
    def gateways(self) -> list[str]:
        """Every configured gateway's name, reachable or not."""
        return [w.gateway.name for w in self._workers] + list(self._unreachable)

    def usage(self) -> list[GatewayUsage]:
        """Per gateway: codes, requests, seconds waited for its budget, and why it was lost if it was."""
        found = [w.usage() for w in self._workers]
        found += [GatewayUsage(name, 0, 0, 0.0, reason) for name, reason in self._unreachable.items()]
        return found

    def lost(self) -> list[GatewayUsage]:
        return [u for u in self.usage() if not u.served]

    def crawl(
        self, codes: Sequence[str], *, full: bool = False, on_start: Callable[[str, str], None] | None = None
    ) -> Iterator[CodeResult]:
        """Crawl `codes` over every gateway, yielding each code's result as it finishes (in finishing order).

        `on_start(code, gateway)` is called, in the caller's thread, as each code is taken. Closing the
        iterator early stops handing out codes; the workers finish the codes they hold.
        """
        pending = CodeQueue(codes)
        messages: queue.Queue[_Message] = queue.Queue()
        threads = [
            threading.Thread(
                target=self._work,
                args=(worker, pending, messages, full),
                name=f"crawl-{worker.gateway.name}",
                daemon=True,
            )
            for worker in self._workers
            if worker.lost is None
        ]
        for thread in threads:
            thread.start()
        running = len(threads)
        error: BaseException | None = None
        try:
            while running:
                try:
                    message = messages.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    continue
                if message.kind == "start" and on_start is not None:
                    on_start(message.code, message.gateway)
                elif message.kind == "result" and message.result is not None:
                    yield message.result
                elif message.kind == "error" and error is None:
                    error = message.error
                elif message.kind == "exit":
                    running -= 1
        except BaseException:
            # Ctrl-C or the caller stopped iterating: hand out no more codes and do not wait for the codes
            # in hand; each page is committed with its cursor, so the next load resumes them.
            pending.close()
            raise
        for thread in threads:
            thread.join()
        if error is not None:
            raise error

    def _work(
        self,
        worker: _Worker,
        pending: CodeQueue,
        messages: queue.Queue[_Message],
        full: bool,
    ) -> None:
        try:
            while (taken := pending.take()) is not None:
                code, before = taken
                messages.put(_Message("start", code, worker.gateway.name))
                try:
                    result = worker.crawler.crawl_code(code, full=full, before=before)
                except GatewayLostError as lost:  # the crawler asked `leave`, which retired the worker
                    self._hand_back(worker, code, lost.done, pending)
                    return
                worker.codes += 1
                pending.done()
                messages.put(_Message("result", code, worker.gateway.name, result))
        except BaseException as exc:
            # Whatever stops a worker outside a code's own failure (an outage past its bound on the last
            # gateway, a warehouse outage) stops the load, as it would over one gateway.
            pending.close()
            messages.put(_Message("error", gateway=worker.gateway.name, error=exc))
        finally:
            messages.put(_Message("exit", gateway=worker.gateway.name))

    @staticmethod
    def _hand_back(worker: _Worker, code: str, done: CrawlCounts, pending: CodeQueue) -> None:
        log.warning(
            "gateway %s is lost (%s); %s goes back to the queue and the other gateways carry on",
            worker.gateway.name,
            worker.lost,
            code,
        )
        pending.give_back(code, done)

    def _retire(self, worker: _Worker, reason: str) -> bool:
        """Mark the worker's gateway lost, unless it is the last one serving (then it carries on)."""
        with self._retire_lock:
            if self._live <= 1:
                return False
            self._live -= 1
            worker.lost = reason
            return True


def combined_rate(gateways: Sequence[Gateway]) -> RateLimit:
    """What the gateways allow together, over the first one's window: what a load's time estimate runs on."""
    window = gateways[0].rate_limit.seconds
    return RateLimit(round(sum(g.rate_limit.requests * window / g.rate_limit.seconds for g in gateways)), window)


@contextmanager
def open_gateway_pool(
    settings: Settings,
    *,
    on_event: Callable[[CrawlEvent], None] | None = None,
    on_outage: Callable[[str], None] | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    wait_at_start: bool = False,
) -> Iterator[GatewayPool]:
    """A crawler on each configured gateway (OPEND_GATEWAYS, or OPEND_HOST/OPEND_PORT), one warehouse for all.

    With one gateway, raises as `open_crawler` does. With several, a gateway that does not answer is
    left out and reported by `lost()`; when none answers, raises GatewayConnectionError naming each
    (with `wait_at_start`, waits for the first instead, as for an outage). Raises
    WarehouseNotMigratedError for a warehouse not at head.
    """
    events_lock = threading.Lock()

    def one_at_a_time(event: CrawlEvent) -> None:
        assert on_event is not None
        with events_lock:
            on_event(event)

    gateways = settings.all_gateways
    options = {"on_event": one_at_a_time if on_event else None, "on_outage": on_outage, "retry": retry}
    with ExitStack() as stack:
        warehouse = stack.enter_context(open_warehouse(settings, on_outage=on_outage, wait_at_start=wait_at_start))
        pool = GatewayPool(warehouse.engine)
        for gateway in gateways:
            worker = _Worker(gateway)
            leave = pool.leave(worker)
            try:
                worker.crawler = stack.enter_context(
                    crawler_on(
                        gateway,
                        settings,
                        warehouse,
                        wait_at_start=wait_at_start and len(gateways) == 1,
                        leave_gateway=leave,
                        **options,  # type: ignore[arg-type]
                    )
                )
            except (GatewayConnectionError, QuoteLoginError) as exc:
                if len(gateways) == 1:
                    raise
                pool._leave_out(gateway, describe_failure(exc))
                continue
            pool._add(worker)
        if not pool._workers and wait_at_start:
            worker = _Worker(gateways[0])
            worker.crawler = stack.enter_context(
                crawler_on(gateways[0], settings, warehouse, wait_at_start=True, **options)  # type: ignore[arg-type]
            )
            del pool._unreachable[gateways[0].name]
            pool._add(worker)
        if not pool._workers:
            raise GatewayConnectionError(
                "no gateway answers: " + "; ".join(f"{name}: {why}" for name, why in pool._unreachable.items())
            )
        yield pool
