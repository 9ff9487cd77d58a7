"""Qot_GetShortInterest paging, exactly as the API page describes it.

Rows are newest first; a page's nextKey is the timestamp of its last row, and the next page holds the
rows strictly older than it. "-1" ends the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proto_client.records import END_OF_DATA, ShortInterestRow

DEFAULT_NUM = 10
MIN_NUM, MAX_NUM = 1, 50


class PagingError(ValueError):
    """A request's num or nextKey is out of bounds; the message is what the gateway answers."""


@dataclass(frozen=True, slots=True)
class PageSlice:
    rows: tuple[ShortInterestRow, ...]
    next_key: str


def page_size(num: int | None) -> int:
    if num is None:
        return DEFAULT_NUM
    if not MIN_NUM <= num <= MAX_NUM:
        raise PagingError(f"invalid num {num}: must be between {MIN_NUM} and {MAX_NUM}")
    return num


def _older_than(next_key: str | None) -> int | None:
    """The timestamp bound a key stands for; None for the first page."""
    if next_key is None or next_key == "":
        return None
    text = next_key.strip()
    if text != next_key or not text.lstrip("-").isdigit() or not text.isascii():
        raise PagingError(f"invalid nextKey {next_key!r}: pass the nextKey returned by the previous page")
    value = int(text)
    if value < 0 and next_key != END_OF_DATA:
        raise PagingError(f"invalid nextKey {next_key!r}: pass the nextKey returned by the previous page")
    return value


def select_page(
    rows: Sequence[ShortInterestRow], next_key: str | None, num: int | None, *, lazy_end: bool = False
) -> PageSlice:
    """The page a request asks for.

    Normally the page that exhausts the history carries "-1", so a full crawl costs ceil(rows/num)
    requests. With `lazy_end` an exactly full last page carries its own key instead and the following
    request gets an empty page with "-1", as some gateway versions do.
    """
    size = page_size(num)
    bound = _older_than(next_key)
    if next_key == END_OF_DATA:
        return PageSlice((), END_OF_DATA)
    start = 0
    if bound is not None:
        # Rows are newest first, so the first row older than the key starts the page.
        start = next((i for i, row in enumerate(rows) if row.timestamp < bound), len(rows))
    page = tuple(rows[start : start + size])
    more = start + size < len(rows)
    if page and (more or (lazy_end and len(page) == size)):
        return PageSlice(page, str(page[-1].timestamp))
    return PageSlice(page, END_OF_DATA)
