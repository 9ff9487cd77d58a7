"""Validation of a large batch straight into key-sorted numpy columns, ready for binary COPY.

A backfill hands over a million rows at once; per-row Python work then costs more than storing them. The
checks here are the ones of `validation` done on whole columns; only when one fails does the row-by-row
pass run, so the error names the same row, date and field whichever path the batch took.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.warehouse.binary_copy import CopyColumn, PgType, pg_days
from pipelines.warehouse.validation import code_ok, raise_first_invalid, stamps_match_dates
from proto_client.records import ShortInterestRow
from proto_client.security import Market

_INT_TYPES = frozenset({int, type(None)})
_FLOAT_TYPES = frozenset({float, int, type(None)})


def sorted_valid_columns(
    rows: Sequence[ShortInterestRow], fields: Sequence[str], pg_types: Sequence[PgType], market: Market
) -> list[CopyColumn]:
    """`rows` as one CopyColumn per field (code, trade_date, timestamp first), sorted by key, all validated.

    Raises InvalidRowError naming the first bad row.
    """
    if tuple(fields[:3]) != ("code", "trade_date", "timestamp") or tuple(pg_types[:3]) != ("text", "date", "int8"):
        raise ValueError(f"fields must start with code, trade_date, timestamp, got {fields!r} as {pg_types!r}")
    columns = [list(map(attrgetter(name), rows)) for name in fields]
    encoded = _encode_if_valid(columns, pg_types, market)
    if encoded is None:
        raise_first_invalid(rows, market)
    return encoded


def _encode_if_valid(columns: list[list[Any]], pg_types: Sequence[PgType], market: Market) -> list[CopyColumn] | None:
    codes, dates, stamps = columns[0], columns[1], columns[2]
    if set(map(type, codes)) != {str} or set(map(type, dates)) != {date} or set(map(type, stamps)) != {int}:
        return None
    if not all(code_ok(code, market) for code in set(codes)) or not stamps_match_dates(stamps, dates, market):
        return None
    encoded = [
        CopyColumn("text", np.array(codes, dtype=np.bytes_)),
        CopyColumn("date", pg_days(dates)),
        CopyColumn("int8", np.array(stamps, dtype=np.int64)),  # in range: each matched its trade_date
    ]
    for pg_type, column in zip(pg_types[3:], columns[3:], strict=True):
        as_numpy = _count_column(column) if pg_type == "int8" else _float_column(column)
        if as_numpy is None:
            return None
        encoded.append(as_numpy)
    if not _strictly_increasing(encoded[0].values, encoded[1].values):
        order = np.lexsort((encoded[1].values, encoded[0].values))
        encoded = [column.take(order) for column in encoded]
        if not _strictly_increasing(encoded[0].values, encoded[1].values):
            return None  # a key appears twice
    return encoded


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
            values = np.array(column, dtype=np.int64)
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
        values = np.array(column, dtype=np.float64)
    except OverflowError:
        return None
    not_finite = ~np.isfinite(values)
    nones = column.count(None) if type(None) in types else 0
    if int(not_finite.sum()) != nones:
        return None
    return CopyColumn("float8", values, not_finite if nones else None)


def _strictly_increasing(codes: npt.NDArray[np.bytes_], days: npt.NDArray[np.int32]) -> bool:
    """Whether (code, day) keys strictly increase; byte order of ASCII codes is the database's "C" order."""
    if len(codes) < 2:
        return True
    code_less = codes[:-1] < codes[1:]
    same_code_later_day = (codes[:-1] == codes[1:]) & (days[:-1] < days[1:])
    return bool(np.all(code_less | same_code_later_day))
