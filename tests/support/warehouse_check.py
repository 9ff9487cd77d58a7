"""The warehouse compared row by row with what the demo gateway serves: the verdict of every fault test.

A fault test passes only if, after the dust settles, each data table holds exactly the gateway's rows
for the codes loaded: every column, both markets, no key missing and none extra. Row counts alone would
miss a page stored twice under shifted dates or a value mangled on the way in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from pipelines.warehouse import crawl_state, create_engine_for
from pipelines.warehouse.schema import AUDIT_COLUMNS, DATA_TABLES, value_columns
from proto_client.records import HkShortInterestRow, UsShortInterestRow
from proto_client.security import parse_code
from proto_client.simulator.demo_data import rows_for

PAGE_SIZE = 50

Key = tuple[str, str, date]  # (table, code, trade_date)
Values = dict[str, object]

# Row fields whose warehouse column has another name.
_COLUMN_FOR_FIELD = {"timestamp": "source_timestamp"}


@dataclass(frozen=True, slots=True)
class CodeCrawlState:
    cursor: str | None
    newest_trade_date: date | None
    last_error: str | None
    gateway: str | None = None  # the gateway that last loaded the code cleanly


def row_values(row: UsShortInterestRow | HkShortInterestRow) -> Values:
    """A gateway row as the warehouse columns it must land in (key columns excluded)."""
    table = DATA_TABLES[row.market]
    fields = {_COLUMN_FOR_FIELD.get(name, name): getattr(row, name) for name in row.__dataclass_fields__}
    missing = [column for column in value_columns(table) if column not in fields]
    if missing:
        raise AssertionError(f"{table.name} columns {missing} have no counterpart in {type(row).__name__}")
    return {column: fields[column] for column in value_columns(table)}


def expected_rows(codes: Iterable[str], as_of: date, revision: int = 0) -> dict[Key, Values]:
    expected: dict[Key, Values] = {}
    for code in codes:
        for row in rows_for(code, as_of, revision):
            expected[(DATA_TABLES[row.market].name, row.code, row.trade_date)] = row_values(row)
    return expected


def stored_rows(database_url: str) -> dict[Key, Values]:
    """Every row of both data tables; audit stamps are checked for presence, not compared."""
    engine = create_engine_for(database_url)
    stored: dict[Key, Values] = {}
    try:
        with engine.connect() as conn:
            for table in DATA_TABLES.values():
                for row in conn.execute(sa.select(table)).mappings():
                    key = (table.name, row["code"], row["trade_date"])
                    if key in stored:
                        raise AssertionError(f"{key} stored twice")
                    for column in AUDIT_COLUMNS:
                        if row[column] is None:
                            raise AssertionError(f"{key}: {column} is NULL")
                    if row["updated_at"] < row["first_loaded_at"]:
                        raise AssertionError(f"{key}: updated_at precedes first_loaded_at")
                    stored[key] = {column: row[column] for column in value_columns(table)}
    finally:
        engine.dispose()
    return stored


def diff_rows(expected: dict[Key, Values], stored: dict[Key, Values], *, limit: int = 5) -> list[str]:
    """Human-readable differences, at most `limit` of each kind."""
    missing = sorted(expected.keys() - stored.keys())
    extra = sorted(stored.keys() - expected.keys())
    changed = sorted(k for k in expected.keys() & stored.keys() if expected[k] != stored[k])
    problems: list[str] = []
    if missing:
        problems.append(f"{len(missing)} rows missing, e.g. {missing[:limit]}")
    if extra:
        problems.append(f"{len(extra)} rows that the gateway does not serve, e.g. {extra[:limit]}")
    for key in changed[:limit]:
        columns = [c for c in expected[key] if expected[key][c] != stored[key].get(c)]
        detail = ", ".join(f"{c}: expected {expected[key][c]!r}, stored {stored[key].get(c)!r}" for c in columns)
        problems.append(f"{key} differs: {detail}")
    if len(changed) > limit:
        problems.append(f"... and {len(changed) - limit} more rows differ")
    return problems


def assert_warehouse_matches_gateway(database_url: str, codes: Iterable[str], as_of: date, revision: int = 0) -> None:
    """Both data tables hold exactly rows_for(code, as_of, revision) of `codes`, and nothing else."""
    codes = list(codes)
    expected = expected_rows(codes, as_of, revision)
    assert expected, f"no demo rows for {codes} as of {as_of}: the comparison would prove nothing"
    problems = diff_rows(expected, stored_rows(database_url))
    assert not problems, f"warehouse differs from the gateway's data for {codes} as of {as_of}:\n" + "\n".join(problems)


def read_crawl_state(database_url: str, code: str) -> CodeCrawlState | None:
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(crawl_state).where(crawl_state.c.code == code)).mappings().one_or_none()
    finally:
        engine.dispose()
    if row is None:
        return None
    return CodeCrawlState(row["full_crawl_cursor"], row["newest_trade_date"], row["last_error"], row["last_gateway"])


def stored_count(database_url: str, code: str) -> int:
    table = DATA_TABLES[parse_code(code).market]
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(table.c.code == code)).scalar_one())
    finally:
        engine.dispose()


def assert_whole_pages_with_cursor(database_url: str, code: str, as_of: date, *, opaque: bool = False) -> int:
    """An interrupted full crawl left whole pages, newest first, and a cursor right after the last one.

    Returns the number of rows stored. A page is committed together with the cursor of the next page, so
    anything else (a partial page, a gap, a cursor that skips or repeats rows) is a broken transaction.
    An `opaque` gateway's cursor cannot be read here: ask the gateway for its page instead.
    """
    history = rows_for(code, as_of)
    stored = {key: values for key, values in stored_rows(database_url).items() if key[1] == code}
    count = len(stored)
    table = DATA_TABLES[parse_code(code).market].name
    newest = {(table, row.code, row.trade_date): row_values(row) for row in history[:count]}
    problems = diff_rows(newest, stored)
    assert not problems, f"{code}: stored rows are not the newest {count} of its history:\n" + "\n".join(problems)
    state = read_crawl_state(database_url, code)
    if count == len(history):
        return count
    assert count % PAGE_SIZE == 0, f"{code}: {count} rows stored, not a whole number of {PAGE_SIZE}-row pages"
    if count:
        assert state is not None, f"{code}: {count} rows stored but no crawl_state row"
        if opaque:
            assert state.cursor and not state.cursor.isdigit(), f"{code}: cursor {state.cursor!r} is not opaque"
            return count
        assert state.cursor == str(history[count - 1].timestamp), (
            f"{code}: cursor {state.cursor!r} does not follow the last stored row "
            f"({history[count - 1].trade_date}, timestamp {history[count - 1].timestamp})"
        )
    return count


def assert_crawl_completed(database_url: str, codes: Iterable[str], as_of: date) -> None:
    """Every code's bookkeeping says: done, no resume pending, newest date known, no error left."""
    for code in codes:
        state = read_crawl_state(database_url, code)
        assert state is not None, f"{code}: no crawl_state row"
        assert state.cursor is None, f"{code}: full-crawl cursor {state.cursor!r} left behind by a finished load"
        assert state.newest_trade_date == rows_for(code, as_of)[0].trade_date, (
            f"{code}: crawl_state.newest_trade_date is {state.newest_trade_date}"
        )
        assert state.last_error is None, f"{code}: last_error still set: {state.last_error}"
