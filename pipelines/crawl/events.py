"""Progress events the crawler emits, so the CLI and Dagster can show a crawl as it happens."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    START = "start"  # a code's crawl begins (message says full / incremental / resumed)
    PAGE = "page"  # a page was written (counters are the code's running totals)
    RETRY = "retry"  # a transient failure; the crawler waits `backoff` seconds and tries again
    WAIT = "wait"  # the rate limit holds the next request back for a while; `message` says how long and why
    DONE = "done"  # the code finished cleanly
    FAILED = "failed"  # the code gave up; `message` says why


@dataclass(frozen=True, slots=True)
class CrawlEvent:
    code: str
    kind: EventKind
    pages: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    waited: float = 0.0
    message: str | None = None
    backoff: float | None = None

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.unchanged
