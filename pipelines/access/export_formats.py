"""Writers that take an export chunk by chunk: CSV, a JSON array, or Parquet, never holding more than one chunk.

Dates are written as dates (YYYY-MM-DD text; Parquet DATE), counts as integers with empty/null for a missing
value, and every chunk under the one schema read_short_interest fixes, so a file is the same however it was
chunked.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("csv", "parquet", "json")
BINARY_FORMATS = frozenset({"parquet"})


class ChunkWriter(Protocol):
    def write(self, chunk: pd.DataFrame) -> None: ...

    def close(self) -> None: ...


# Date columns of an export: trade_date always, published_on in an as-of export.
_DATES = ("trade_date", "published_on")
_MOMENTS = ("version_recorded_at",)


def _dates_as_text(chunk: pd.DataFrame) -> pd.DataFrame:
    dates = {c: chunk[c].dt.strftime("%Y-%m-%d") for c in _DATES if c in chunk}
    moments = {c: chunk[c].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for c in _MOMENTS if c in chunk}
    return chunk.assign(**dates, **moments)


class CsvWriter:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._header = True

    def write(self, chunk: pd.DataFrame) -> None:
        _dates_as_text(chunk).to_csv(self._stream, index=False, header=self._header, lineterminator="\n")
        self._header = False

    def close(self) -> None:
        self._stream.flush()


class JsonWriter:
    """A JSON array of row objects, one per line; a missing value is null."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._first = True
        stream.write("[")

    def write(self, chunk: pd.DataFrame) -> None:
        if chunk.empty:
            return
        lines = _dates_as_text(chunk).to_json(orient="records", lines=True).rstrip("\n")
        self._stream.write(("\n" if self._first else ",\n") + lines.replace("\n", ",\n"))
        self._first = False

    def close(self) -> None:
        self._stream.write("\n]\n" if not self._first else "]\n")
        self._stream.flush()


class ParquetWriter:
    """One row group per chunk, under a schema fixed by the first chunk's dtypes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, chunk: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(chunk, preserve_index=False)
        if self._writer is None or self._schema is None:
            fields = [pa.field(f.name, pa.date32()) if f.name in _DATES else f for f in table.schema]
            self._schema = pa.schema(fields, metadata=table.schema.metadata)  # pandas' dtypes, for reading back
            self._writer = pq.ParquetWriter(self._path, self._schema)
        self._writer.write_table(table.cast(self._schema))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
