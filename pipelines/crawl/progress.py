"""What `shortinterest load` prints while it works: a line per code, and how far the whole load has come.

On a terminal one live bar (rich) shows codes done of all, requests, rows, elapsed and time left, with
each code's line printed above it. Scheduled runs write to logs, where a redrawn bar is noise: there each
code keeps its line and a summary line with the same figures follows every `summary_every` seconds.

Time left comes from what the gateway's budget allows, not from the pace so far: the requests still
needed (each code's planned cost, pages for histories of unknown length guessed from the full crawls
done so far) at the rate limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from pipelines.crawl.crawler import CodeResult
from pipelines.crawl.estimate import LoadEstimate, seconds_for
from pipelines.crawl.events import CrawlEvent, EventKind
from pipelines.crawl.gateway_pool import GatewayUsage
from pipelines.crawl.outage import format_duration
from pipelines.tables import format_table

SUMMARY_EVERY_SECONDS = 60.0


class LoadProgress:
    """Receives crawl events (`on_event`), per-code results (`finished`) and load-wide notes (`note`).

    The bar is drawn inside `running(estimate)`; lines before it are plain. Safe to call from several threads.
    """

    def __init__(
        self,
        out: TextIO,
        *,
        live: bool,
        summary_every: float = SUMMARY_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        show_gateway: bool = False,
    ) -> None:
        self.out = out
        self.live = live
        self.show_gateway = show_gateway  # several gateways load at once: say which one served each code
        self.summary_every = summary_every
        self._clock = clock
        self._lock = threading.Lock()
        self.estimate: LoadEstimate | None = None
        self._started = self._last_summary = clock()
        self._cost: dict[str, int | None] = {}
        self._done: dict[str, CodeResult] = {}
        self._pages_now: dict[str, int] = {}  # pages so far of the codes being crawled
        self._rows_now: dict[str, int] = {}
        self._bar: Progress | None = None
        self._task = TaskID(0)

    @property
    def total(self) -> int:
        return len(self._cost)

    @contextmanager
    def running(self, estimate: LoadEstimate) -> Iterator[LoadProgress]:
        """Show the load's progress against `estimate` (the live bar on a terminal) until the block ends."""
        with self._lock:
            self.estimate = estimate
            self._cost = {c.code: c.requests for c in estimate.costs}
            self._started = self._last_summary = self._clock()
            if self.live:
                self._bar = Progress(
                    TextColumn("[bold]loading"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("codes, {task.fields[figures]},"),
                    TimeElapsedColumn(),
                    TextColumn("{task.fields[left]}"),
                    console=Console(file=self.out, force_terminal=True),
                    transient=True,
                )
                self._task = self._bar.add_task("load", total=self.total, figures="", left="")
                self._bar.start()
        try:
            yield self
        finally:
            with self._lock:
                if self._bar is not None:
                    self._bar.stop()
                    self._bar = None

    def starting(self, code: str, gateway: str = "") -> None:
        with self._lock:
            self._pages_now[code] = 0
            self._rows_now[code] = 0
            self._refresh()

    def on_event(self, event: CrawlEvent) -> None:
        with self._lock:
            if event.kind is EventKind.PAGE:
                self._pages_now[event.code] = event.pages
                self._rows_now[event.code] = event.rows
                self._refresh()
            elif event.kind in (EventKind.RETRY, EventKind.WAIT):
                self._print(f"{self._position()} {event.code} {event.message}")

    def note(self, line: str) -> None:
        """A line about the load as a whole, such as an outage beginning or ending."""
        with self._lock:
            self._print(line)

    def finished(self, result: CodeResult) -> None:
        with self._lock:
            self._done[result.code] = result
            self._pages_now.pop(result.code, None)
            self._rows_now.pop(result.code, None)
            via = f" via {result.gateway}" if self.show_gateway and result.gateway else ""
            if result.ok:
                pages = f"{result.pages} page{'s' if result.pages != 1 else ''}"
                self._print(
                    f"{self._position(finished=True)} {result.code} {result.mode}{via}: {pages}, "
                    f"{result.inserted} new, {result.updated} updated, {result.unchanged} unchanged, "
                    f"waited {result.waited_seconds:.1f} s, {result.elapsed_seconds:.1f} s"
                )
            else:
                self._print(f"{self._position(finished=True)} {result.code} FAILED{via}: {result.error}")
            self._refresh()

    # What the bar and the summary lines say.

    def requests_done(self) -> int:
        return sum(r.requests for r in self._done.values()) + sum(self._pages_now.values())

    def rows_done(self) -> int:
        return sum(r.inserted + r.updated + r.unchanged for r in self._done.values()) + sum(self._rows_now.values())

    def requests_left(self) -> int:
        full = [r for r in self._done.values() if r.mode == "full" and r.ok]
        guess = max(1, round(sum(r.requests for r in full) / len(full))) if full else 1
        left = 0
        for code, cost in self._cost.items():
            if code in self._done:
                continue
            left += max(0, (cost if cost is not None else guess) - self._pages_now.get(code, 0))
        return left

    def seconds_left(self) -> float:
        return seconds_for(self.requests_left(), self.estimate.rate) if self.estimate else 0.0

    def figures(self) -> str:
        return f"{self.requests_done():,} requests, {self.rows_done():,} rows"

    def summary_line(self) -> str:
        elapsed = format_duration(self._clock() - self._started)
        return (
            f"progress: {len(self._done)}/{self.total} codes, {self.figures()}, elapsed {elapsed}, "
            f"about {format_duration(self.seconds_left())} left"
        )

    def _position(self, finished: bool = False) -> str:
        """`[n/total]`: a finished code's place in the order codes finished, else the place it will take."""
        width = len(str(self.total))
        return f"[{len(self._done) + (0 if finished else 1):>{width}}/{self.total}]"

    def _refresh(self) -> None:
        if self._bar is not None:
            left = f"~{format_duration(self.seconds_left())} left"
            self._bar.update(self._task, completed=len(self._done), figures=self.figures(), left=left)
            return
        now = self._clock()
        if self.estimate is not None and now - self._last_summary >= self.summary_every:
            self._last_summary = now
            self._write(self.summary_line())

    def _print(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self._write(text)

    def _write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def summary(results: Sequence[CodeResult], gateways: Sequence[GatewayUsage] = ()) -> str:
    """The end-of-load table, a totals line, each gateway's share, and every failed code with its reason."""
    headers = [
        "code",
        "gateway",
        "mode",
        "pages",
        "requests",
        "new",
        "updated",
        "unchanged",
        "waited s",
        "time s",
        "newest",
        "result",
    ]
    rows = [
        [
            r.code,
            r.gateway or "-",
            r.mode,
            r.pages,
            r.requests,
            r.inserted,
            r.updated,
            r.unchanged,
            f"{r.waited_seconds:.1f}",
            f"{r.elapsed_seconds:.1f}",
            r.newest_trade_date.isoformat() if r.newest_trade_date else "-",
            "ok" if r.ok else "FAILED",
        ]
        for r in results
    ]
    lines = [format_table(headers, rows, right=range(3, 10))]
    failed = [r for r in results if not r.ok]
    lines.append(
        f"{len(results) - len(failed)} of {len(results)} codes loaded: {sum(r.requests for r in results)} requests, "
        f"{sum(r.inserted for r in results)} new rows, {sum(r.updated for r in results)} updated, "
        f"{sum(r.waited_seconds for r in results):.1f} s waited for the rate limit"
    )
    for gateway in gateways:
        line = (
            f"gateway {gateway.name}: {gateway.codes} code{'s' if gateway.codes != 1 else ''}, "
            f"{gateway.requests} requests, {gateway.waited_seconds:.1f} s waited for its rate limit"
        )
        if gateway.lost:
            line += f"; LOST: {gateway.lost} (its codes went to the other gateways)"
        lines.append(line)
    if failed:
        lines.append(f"{len(failed)} code{'s' if len(failed) != 1 else ''} failed:")
        lines.extend(f"  {r.code}: {r.error}" for r in failed)
    return "\n".join(lines)
