"""Paging one code's history with opaque page keys, refusing a gateway that pages in a loop.

The API documents nextKey only as a page marker: it is sent back byte for byte and never parsed (the
vendor's examples show a timestamp, but nothing promises one). A gateway that pages in a loop is caught
by what can be checked without reading a key: a key already used in this walk, or a page that is not
older than the one before. Either way the walk stops at the first page that comes round again, before it is
stored: a loop back over k pages costs k + 1 requests.
"""

from __future__ import annotations

from proto_client.errors import PagingLoopError
from proto_client.records import Page


class PageWalk:
    """The keys of one walk from `start_key` (None: the newest page) down to the end of the history."""

    __slots__ = ("_code", "_previous_oldest", "_seen")

    def __init__(self, code: str, start_key: str | None = None) -> None:
        self._code = code
        self._seen: set[str] = set() if start_key is None else {start_key}
        self._previous_oldest: int | None = None

    def next_key(self, page: Page) -> str | None:
        """The key that asks for the page after `page`, or None when the history is done."""
        if page.rows:
            timestamps = [row.timestamp for row in page.rows]
            newest, oldest = max(timestamps), min(timestamps)
            if self._previous_oldest is not None and newest >= self._previous_oldest:
                raise PagingLoopError(
                    f"{self._code}: the gateway answered a next page that is not older than the one before "
                    f"(its newest row {page.rows[timestamps.index(newest)].trade_date} is not before "
                    "the previous page's oldest); refusing to page in a loop"
                )
            self._previous_oldest = oldest
        if page.is_last:
            return None
        key = page.next_key
        if key in self._seen:
            raise PagingLoopError(
                f"{self._code}: the gateway handed back next_key {key!r}, already used in this walk; "
                "refusing to page in a loop"
            )
        self._seen.add(key)
        return key
