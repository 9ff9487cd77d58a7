"""A large batch's stored counterparts read back as numpy columns, to find the rows a re-load would not change.

Re-loading a backfill mostly re-sends rows the warehouse already holds. Sending them through the stage
table only for the merge to drop them costs a COPY and a join per row; reading the stored values back
costs the server less and runs while the client validates the batch, and the comparison is a few numpy
passes. Only rows that are new or differ go on to the merge, which still decides every row it writes (IS
DISTINCT FROM, ON CONFLICT): a row judged identical here is one the merge would have dropped at this
snapshot, so counts, audit stamps and concurrency stay as they were.

The comparison is never looser than SQL's IS DISTINCT FROM: NULL equals only NULL, and doubles compare as
float8 does (-0.0 equals 0.0). A NaN, which validation refuses anyway, would compare unequal here, which
merely sends the row on to the merge to decide.

The server packs each code's rows into one bytea of fixed-width big-endian records, so the reply is one
COPY message per code: a message per row costs the client more than the server spends on the whole query.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from pipelines.warehouse.binary_copy import SIGNATURE, CopyColumn, PgType
from pipelines.warehouse.bulk_columns import KeySortedBatch, row_keys
from pipelines.warehouse.errors import WarehouseError

_SEND: dict[PgType, tuple[str, str]] = {"int8": ("int8send", ">i8"), "float8": ("float8send", ">f8")}
_ROW_HEAD = struct.Struct("!hiqi")  # field count, then the code id (length, int8), then the records' length
_TRAILER = struct.Struct("!h")


@dataclass(frozen=True, slots=True)
class StoredColumns:
    """Stored rows in key order.

    keys: as KeySortedBatch.keys computes them; values: one array per value column, 0 where NULL;
    nulls: per row, bit j set when value column j is NULL.
    """

    keys: npt.NDArray[np.int64]
    values: tuple[npt.NDArray[np.generic], ...]
    nulls: npt.NDArray[np.int32]


def read_stored_columns(
    connection: psycopg.Connection[Any], table: str, value_columns: Sequence[str], batch: KeySortedBatch
) -> StoredColumns:
    """The stored rows of `table` with the codes of `batch`, each code limited to the batch's dates for it.

    `value_columns` are the batch's fields after the key (the batch's pg_types[2:] give their types).
    Uses `connection` directly, so it may run in a thread while the caller's thread does no database work.
    """
    value_types = batch.pg_types[2:]
    if len(value_columns) != len(value_types) or len(value_columns) > 31:
        raise ValueError(f"value columns {value_columns!r} do not match the batch's types {value_types!r}")
    record = np.dtype([("day", ">i4"), *((f"v{j}", _send(t)[1]) for j, t in enumerate(value_types)), ("nulls", ">i4")])
    ids, starts = np.unique(batch.code_ids, return_index=True)
    last = np.append(starts[1:], len(batch)) - 1
    params = (
        [batch.code_names[i] for i in ids.tolist()],
        ids.tolist(),
        batch.days[starts].tolist(),
        batch.days[last].tolist(),
    )
    with connection.cursor() as cursor, cursor.copy(_readback_sql(table, value_columns, value_types), params) as copy:
        payload = b"".join(copy)
    return _decode(payload, record, table)


def unchanged_rows(
    batch_keys: npt.NDArray[np.int64], batch_values: Sequence[CopyColumn], stored: StoredColumns
) -> npt.NDArray[np.bool_]:
    """Per batch row: whether a stored row has its key and values not distinct from its own."""
    if len(batch_values) != len(stored.values):
        raise ValueError(f"{len(batch_values)} batch value columns against {len(stored.values)} stored")
    if not len(stored.keys):
        return np.zeros(len(batch_keys), dtype=bool)
    at = np.minimum(np.searchsorted(stored.keys, batch_keys), len(stored.keys) - 1)
    same = stored.keys[at] == batch_keys
    stored_nulls = stored.nulls[at]
    for j, (column, values) in enumerate(zip(batch_values, stored.values, strict=True)):
        stored_null = (stored_nulls & (1 << j)) != 0
        equal = column.values == values[at]
        if column.nulls is None:
            same &= ~stored_null & equal
        else:
            same &= np.where(column.nulls | stored_null, column.nulls & stored_null, equal)
    return same


def _send(pg_type: PgType) -> tuple[str, str]:
    try:
        return _SEND[pg_type]
    except KeyError:
        raise TypeError(f"stored {pg_type} values cannot be read back for comparison") from None


def _readback_sql(table: str, value_columns: Sequence[str], value_types: Sequence[PgType]) -> str:
    fields = " || ".join(
        [
            "int4send(t.trade_date - DATE '2000-01-01')",
            *(f"{_send(t)[0]}(coalesce(t.{c}, 0))" for c, t in zip(value_columns, value_types, strict=True)),
            "int4send(" + " | ".join(f"((t.{c} IS NULL)::int << {j})" for j, c in enumerate(value_columns)) + ")",
        ]
    )
    return f"""
        COPY (
            SELECT c.id, s.records
              FROM unnest(CAST(%s AS text[]), CAST(%s AS int8[]), CAST(%s AS int4[]), CAST(%s AS int4[]))
                   AS c(code, id, first_day, last_day)
             CROSS JOIN LATERAL (
                SELECT string_agg({fields}, '') AS records
                  FROM {table} t
                 WHERE t.code = c.code
                   AND t.trade_date BETWEEN DATE '2000-01-01' + c.first_day AND DATE '2000-01-01' + c.last_day
             ) s
        ) TO STDOUT (FORMAT BINARY)"""


def _decode(payload: bytes, record: np.dtype[np.void], table: str) -> StoredColumns:
    """Parse the COPY reply: per code, its id and its rows' records (NULL when it has none in range)."""
    if not payload.startswith(SIGNATURE):
        raise WarehouseError(f"read-back of {table}: the COPY reply does not start with the binary signature")
    view = memoryview(payload)
    position = len(SIGNATURE)
    ids: list[int] = []
    counts: list[int] = []
    pieces: list[memoryview] = []
    try:
        while _TRAILER.unpack_from(payload, position)[0] != -1:
            fields, id_length, code_id, length = _ROW_HEAD.unpack_from(payload, position)
            position += _ROW_HEAD.size
            if fields != 2 or id_length != 8:
                raise WarehouseError(f"read-back of {table}: unexpected row layout in the COPY reply")
            if length == -1:  # no stored rows of this code in the batch's dates
                continue
            if length % record.itemsize or position + length > len(payload):
                raise WarehouseError(f"read-back of {table}: a code's records do not fit the reply")
            ids.append(code_id)
            counts.append(length // record.itemsize)
            pieces.append(view[position : position + length])
            position += length
    except struct.error:
        raise WarehouseError(f"read-back of {table}: the COPY reply ends early") from None
    rows = np.frombuffer(b"".join(pieces), dtype=record)
    days = rows["day"].astype(np.int32)
    keys = row_keys(np.repeat(np.array(ids, dtype=np.int64), counts), days)
    order = None
    if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        order = np.argsort(keys, kind="stable")  # the server owes no order inside a code's aggregate
        keys = keys[order]
    values = []
    for name in record.names[1:-1]:
        column = rows[name].astype(record[name].newbyteorder("="))
        values.append(column if order is None else column[order])
    nulls = rows["nulls"].astype(np.int32)
    return StoredColumns(keys, tuple(values), nulls if order is None else nulls[order])
