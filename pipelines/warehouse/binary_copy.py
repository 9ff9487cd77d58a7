"""PostgreSQL binary COPY payloads encoded a whole column at a time.

Encoding a million rows one `write_row` call at a time costs the client more than the server spends storing
them. Here rows that share a layout (code length and which fields are NULL) are packed as one numpy
structured array, so the per-row work runs in C and the server becomes the bottleneck again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import numpy.typing as npt

PgType = Literal["text", "date", "int8", "float8"]

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

PG_EPOCH = date(2000, 1, 1)  # day 0 of the binary date format
_PG_EPOCH_ORDINAL = PG_EPOCH.toordinal()
_WIRE_DTYPES: dict[PgType, str] = {"date": ">i4", "int8": ">i8", "float8": ">f8"}


@dataclass(frozen=True, slots=True)
class CopyColumn:
    """One column of a batch: values as numpy, and where they are NULL.

    values: text as bytes ('S' dtype, ASCII), date as int32 days since 2000-01-01, int8 as int64,
    float8 as float64. nulls: a boolean mask, or None when the column has no NULLs.
    """

    pg_type: PgType
    values: npt.NDArray[np.generic]
    nulls: npt.NDArray[np.bool_] | None = None


def pg_days(dates: Sequence[date]) -> npt.NDArray[np.int32]:
    """Days since PostgreSQL's epoch (2000-01-01).

    One toordinal per date beats caching the distinct dates: hashing a date costs about as much as
    converting it, and a batch spread over many years has few repeats.
    """
    days = np.fromiter(map(date.toordinal, dates), dtype=np.int32, count=len(dates))
    days -= _PG_EPOCH_ORDINAL
    return days


def concatenate_columns(chunks: Sequence[Sequence[CopyColumn]]) -> list[CopyColumn]:
    """Runs of rows (as `column_chunks` yields them) joined into one CopyColumn per field."""
    if not chunks:
        raise ValueError("no chunks to concatenate")
    joined = []
    for parts in zip(*chunks, strict=True):
        values = np.concatenate([part.values for part in parts])
        nulls = None
        if any(part.nulls is not None for part in parts):
            nulls = np.concatenate(
                [np.zeros(len(part.values), dtype=bool) if part.nulls is None else part.nulls for part in parts]
            )
        joined.append(CopyColumn(parts[0].pg_type, values, nulls))
    return joined


def select_rows(columns: Sequence[CopyColumn], rows: npt.NDArray[np.bool_]) -> list[CopyColumn]:
    """The rows of `columns` where the mask `rows` is true, in order."""
    return [
        CopyColumn(column.pg_type, column.values[rows], None if column.nulls is None else column.nulls[rows])
        for column in columns
    ]


def split_rows(columns: Sequence[CopyColumn], rows_per_chunk: int) -> Iterator[list[CopyColumn]]:
    """`columns` as runs of at most `rows_per_chunk` rows, for `binary_copy_stream`."""
    count = len(columns[0].values) if columns else 0
    for start in range(0, count, rows_per_chunk):
        stop = start + rows_per_chunk
        yield [
            CopyColumn(c.pg_type, c.values[start:stop], None if c.nulls is None else c.nulls[start:stop])
            for c in columns
        ]


def binary_copy_stream(chunks: Iterable[Sequence[CopyColumn]]) -> Iterator[bytes]:
    """The complete COPY ... (FORMAT BINARY) payload of `chunks` (each a run of rows as columns), in order.

    Lazy, so the caller can produce the next chunk while the server stores the last one.
    """
    yield SIGNATURE
    for columns in chunks:
        count = len(columns[0].values)
        if any(len(column.values) != count for column in columns):
            raise ValueError("columns of a COPY payload differ in length")
        if count:
            yield _encode_rows(columns)
    yield TRAILER


def _encode_rows(columns: Sequence[CopyColumn]) -> bytes:
    layouts = _layout_keys(columns)
    kinds, inverse = np.unique(layouts, return_inverse=True)
    if len(kinds) == 1:
        return _pack(columns, np.arange(len(layouts)), int(kinds[0])).tobytes()
    # Several layouts: pack each, then put rows back in order inside a zero-padded grid and drop the padding.
    packed = [(np.flatnonzero(inverse == i), kind) for i, kind in enumerate(kinds)]
    arrays = [(rows, _pack(columns, rows, int(kind)).view(np.uint8).reshape(len(rows), -1)) for rows, kind in packed]
    widest = max(array.shape[1] for _, array in arrays)
    grid = np.zeros((len(layouts), widest), dtype=np.uint8)
    widths = np.empty(len(layouts), dtype=np.int64)
    for rows, array in arrays:
        grid[rows, : array.shape[1]] = array
        widths[rows] = array.shape[1]
    return grid[np.arange(widest) < widths[:, None]].tobytes()


def _layout_keys(columns: Sequence[CopyColumn]) -> npt.NDArray[np.int64]:
    """Per row: the text widths and NULL pattern that decide its byte layout, as one integer."""
    key = np.zeros(len(columns[0].values), dtype=np.int64)
    for column in columns:
        if column.pg_type == "text":
            key = key * 256 + np.char.str_len(column.values)
        if column.nulls is not None:
            key = key * 2 + column.nulls
    return key


def _pack(columns: Sequence[CopyColumn], rows: npt.NDArray[np.intp], layout: int) -> npt.NDArray[np.void]:
    """Rows of one layout as a packed big-endian structured array: field count, then (length, value) per field."""
    shapes: list[tuple[PgType, int | None]] = []  # per column: (type, value width or None for NULL)
    for column in reversed(columns):
        is_null = False
        if column.nulls is not None:
            layout, is_null = divmod(layout, 2)
        width = None
        if column.pg_type == "text":
            layout, width = divmod(layout, 256)
        elif not is_null:
            width = int(_WIRE_DTYPES[column.pg_type][-1])
        shapes.append((column.pg_type, None if is_null else width))
    shapes.reverse()
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i, (pg_type, width) in enumerate(shapes):
        fields.append((f"l{i}", ">i4"))
        if width is not None:
            fields.append((f"v{i}", f"S{width}" if pg_type == "text" else _WIRE_DTYPES[pg_type]))
    packed = np.empty(len(rows), dtype=np.dtype(fields))
    packed["count"] = len(columns)
    for i, (column, (_, width)) in enumerate(zip(columns, shapes, strict=True)):
        packed[f"l{i}"] = -1 if width is None else width
        if width is not None:
            packed[f"v{i}"] = column.values[rows]
    return packed
