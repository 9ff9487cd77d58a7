"""What `shortinterest load` prints while it works: a line per code, and a live line on a terminal.

Scheduled runs write to logs, where a line rewritten in place is noise, so the live line (pages and
rows so far, seconds waited for the rate limit) appears only when the output is a TTY.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from pipelines.crawl.crawler import CodeResult
from pipelines.crawl.events import CrawlEvent, EventKind
from pipelines.crawl.table import format_table

_CLEAR_LINE = "\r\x1b[K"


class LoadProgress:
    """Receives crawl events (`on_event`) and per-code results (`finished`) and writes them to `out`."""

    def __init__(self, out: TextIO, total: int, *, live: bool) -> None:
        self.out = out
        self.total = total
        self.live = live
        self._index = 0
        self._live_shown = False

    def starting(self, index: int, code: str) -> None:
        self._index = index
        if self.live:
            self._show_live(f"{self._position()} {code} starting")

    def on_event(self, event: CrawlEvent) -> None:
        if event.kind is EventKind.PAGE and self.live:
            self._show_live(
                f"{self._position()} {event.code} page {event.pages}: {event.inserted} new, {event.updated} updated, "
                f"{event.unchanged} unchanged, waited {event.waited:.1f} s for the rate limit"
            )
        elif event.kind is EventKind.RETRY:
            self._print(f"{self._position()} {event.code} {event.message}")

    def note(self, line: str) -> None:
        """A line about the load as a whole, such as an outage beginning or ending."""
        self._print(line)

    def finished(self, result: CodeResult) -> None:
        if result.ok:
            pages = f"{result.pages} page{'s' if result.pages != 1 else ''}"
            self._print(
                f"{self._position()} {result.code} {result.mode}: {pages}, {result.inserted} new, "
                f"{result.updated} updated, {result.unchanged} unchanged, waited {result.waited_seconds:.1f} s, "
                f"{result.elapsed_seconds:.1f} s"
            )
        else:
            self._print(f"{self._position()} {result.code} FAILED: {result.error}")

    def _position(self) -> str:
        width = len(str(self.total))
        return f"[{self._index + 1:>{width}}/{self.total}]"

    def _show_live(self, text: str) -> None:
        self.out.write(_CLEAR_LINE + text)
        self.out.flush()
        self._live_shown = True

    def _print(self, text: str) -> None:
        if self._live_shown:
            self.out.write(_CLEAR_LINE)
            self._live_shown = False
        self.out.write(text + "\n")
        self.out.flush()


def summary(results: Sequence[CodeResult]) -> str:
    """The end-of-load table, a totals line, and every failed code with its reason."""
    headers = [
        "code",
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
    lines = [format_table(headers, rows, right=range(2, 9))]
    failed = [r for r in results if not r.ok]
    lines.append(
        f"{len(results) - len(failed)} of {len(results)} codes loaded: {sum(r.requests for r in results)} requests, "
        f"{sum(r.inserted for r in results)} new rows, {sum(r.updated for r in results)} updated, "
        f"{sum(r.waited_seconds for r in results):.1f} s waited for the rate limit"
    )
    if failed:
        lines.append(f"{len(failed)} code{'s' if len(failed) != 1 else ''} failed:")
        lines.extend(f"  {r.code}: {r.error}" for r in failed)
    return "\n".join(lines)
