"""Validation of a large batch into key-sorted numpy columns, a chunk at a time, ready for binary COPY.

A backfill hands over a million rows at once; per-row Python work then costs about as much as storing them.
So only the key is checked and sorted up front (it decides the write order and which rows are new); the
other fields are validated and converted one chunk at a time while the server stores the previous chunk.
The checks are those of `validation` done on whole columns; when one fails, the row-by-row pass runs over
the whole batch as given, so the error names the same row, date and field whichever path the batch took.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import compress
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.warehouse.binary_copy import CopyColumn, PgType, concatenate_columns, pg_days
from pipelines.warehouse.validation import LocalDays, code_ok, local_days, raise_first_invalid, stamps_match_dates
from proto_client.records import ShortInterestRow
from proto_client.security import Market

# Rows validated and encoded per step: small enough that the server starts early and finishes soon after
# the last step, large enough that numpy's per-call overhead stays negligible.
ROWS_PER_CHUNK = 10_000

_KEY_FIELDS = ("code", "trade_date", "timestamp")
_KEY_TYPES = ("text", "date", "int8")
_INT_TYPES = frozenset({int, type(None)})
_FLOAT_TYPES = frozenset({float, int, type(None)})


@dataclass(frozen=True, slots=True)
class KeySortedBatch:
    """Rows in key order whose keys are valid and unique; the other fields are checked by `column_chunks`.

    code_names: the batch's distinct codes, sorted; code_ids: per row, its code's index in code_names.
    given: the batch as the caller passed it, which the row-by-row error pass walks, so a bad row is
    reported exactly as the small-batch path reports it.
    local_days: the market's day boundaries over the batch's dates, to check timestamps in numpy (None:
    check them pair by pair).
    """

    rows: Sequence[ShortInterestRow]
    code_names: list[str]
    code_ids: npt.NDArray[np.int64]
    days: npt.NDArray[np.int32]
    dates: Sequence[date]
    fields: tuple[str, ...]
    pg_types: tuple[PgType, ...]
    market: Market
    given: Sequence[ShortInterestRow]
    local_days: LocalDays | None

    def __len__(self) -> int:
        return len(self.rows)

    def select(self, mask: npt.NDArray[np.bool_]) -> KeySortedBatch:
        """The rows where `mask` is true, still in key order."""
        keep = mask.tolist()
        return KeySortedBatch(
            list(compress(self.rows, keep)),
            self.code_names,
            self.code_ids[mask],
            self.days[mask],
            list(compress(self.dates, keep)),
            self.fields,
            self.pg_types,
            self.market,
            self.given,
            self.local_days,
        )

    def keys(self) -> npt.NDArray[np.int64]:
        """Each row's (code, trade_date) as one increasing int64, as `row_keys` computes it."""
        return row_keys(self.code_ids, self.days)

    def columns(self) -> list[CopyColumn]:
        """Every field of every row (at least one) as one CopyColumn, validated as `column_chunks` validates."""
        return concatenate_columns(list(self.column_chunks()))

    def column_chunks(self, rows_per_chunk: int = ROWS_PER_CHUNK) -> Iterator[list[CopyColumn]]:
        """One CopyColumn per field for each run of `rows_per_chunk` rows, validated as they are produced.

        Raises InvalidRowError (from the row-by-row pass over `given`) at the first chunk that fails.
        """
        code_bytes = np.array(self.code_names, dtype=np.bytes_)  # ASCII: every code parsed
        for start in range(0, len(self.rows), rows_per_chunk):
            stop = min(start + rows_per_chunk, len(self.rows))
            columns = self._chunk_columns(start, stop, code_bytes)
            if columns is None:
                raise_first_invalid(self.given, self.market)
            yield columns

    def _chunk_columns(self, start: int, stop: int, code_bytes: npt.NDArray[np.bytes_]) -> list[CopyColumn] | None:
        rows = self.rows[start:stop]
        stamps = [row.timestamp for row in rows]
        if set(map(type, stamps)) != {int}:
            return None
        try:
            stamp_values = np.fromiter(stamps, dtype=np.int64, count=len(stamps))
        except OverflowError:
            return None
        days = self.days[start:stop]
        if self.local_days is not None:
            if not self.local_days.contain(days, stamp_values):
                return None
        elif not stamps_match_dates(stamps, self.dates[start:stop], self.market):
            return None
        encoded = [
            CopyColumn("text", code_bytes[self.code_ids[start:stop]]),
            CopyColumn("date", days),
            CopyColumn("int8", stamp_values),
        ]
        for name, pg_type in zip(self.fields[3:], self.pg_types[3:], strict=True):
            values = list(map(attrgetter(name), rows))
            column = _count_column(values) if pg_type == "int8" else _float_column(values)
            if column is None:
                return None
            encoded.append(column)
        return encoded


def key_sorted_batch(
    rows: Sequence[ShortInterestRow], fields: Sequence[str], pg_types: Sequence[PgType], market: Market
) -> KeySortedBatch:
    """`rows` in key order after checking codes, dates and key uniqueness; sorts only if they are not in order.

    Raises InvalidRowError naming the first bad row.
    """
    if tuple(fields[:3]) != _KEY_FIELDS or tuple(pg_types[:3]) != _KEY_TYPES:
        raise ValueError(f"fields must start with code, trade_date, timestamp, got {fields!r} as {pg_types!r}")
    codes = [row.code for row in rows]
    dates = [row.trade_date for row in rows]
    if set(map(type, codes)) != {str} or set(map(type, dates)) != {date}:
        raise_first_invalid(rows, market)
    # Sorted distinct codes and each row's index among them: the key then fits one int64 per row, and
    # ASCII codes sort the same in Python as in the database's "C" byte order.
    code_names = sorted(set(codes))
    if not all(code_ok(code, market) for code in code_names):
        raise_first_invalid(rows, market)
    index = {code: i for i, code in enumerate(code_names)}
    code_ids = np.fromiter(map(index.__getitem__, codes), dtype=np.int64, count=len(codes))
    days = pg_days(dates)
    ordered: Sequence[ShortInterestRow] = rows
    keys = row_keys(code_ids, days)
    if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        if not bool(np.all(keys[1:] > keys[:-1])):
            raise_first_invalid(rows, market)  # a key appears twice
        positions = order.tolist()
        code_ids, days = code_ids[order], days[order]
        ordered = [rows[i] for i in positions]
        dates = [dates[i] for i in positions]
    bounds = local_days(days, market)
    return KeySortedBatch(
        ordered, code_names, code_ids, days, dates, tuple(fields), tuple(pg_types), market, rows, bounds
    )


def row_keys(code_ids: npt.NDArray[np.int64], days: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
    """(code index, days since 2000-01-01) packed into one int64 that sorts as the key does."""
    return (code_ids.astype(np.int64) << 32) + (days.astype(np.int64) + 2**31)


def _count_column(column: list[Any]) -> CopyColumn | None:
    """Non-negative BIGINTs, or None if any value is not one."""
    types = set(map(type, column))
    if not types <= _INT_TYPES:
        return None
    nulls = None
    try:
        if type(None) in types:
            boxed = np.array(column, dtype=object)
            nulls = np.equal(boxed, None)
            boxed[nulls] = 0
            values = boxed.astype(np.int64)
        else:
            values = np.fromiter(column, dtype=np.int64, count=len(column))  # faster than np.array on a list
    except OverflowError:
        return None
    if len(values) and values.min() < 0:
        return None
    return CopyColumn("int8", values, nulls)


def _float_column(column: list[Any]) -> CopyColumn | None:
    """Finite doubles, or None if any value is not one (None becomes NaN first, so count NaNs against Nones)."""
    types = set(map(type, column))
    if not types <= _FLOAT_TYPES:
        return None
    try:
        if type(None) in types:
            values = np.array(column, dtype=np.float64)
        else:
            values = np.fromiter(column, dtype=np.float64, count=len(column))
    except OverflowError:
        return None
    not_finite = ~np.isfinite(values)
    nones = column.count(None) if type(None) in types else 0
    if int(not_finite.sum()) != nones:
        return None
    return CopyColumn("float8", values, not_finite if nones else None)
