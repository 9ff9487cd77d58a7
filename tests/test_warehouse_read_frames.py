"""read_short_interest: stored rows as DataFrames with fixed dtypes, on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.warehouse import upsert_batch
from pipelines.warehouse.read import iter_short_interest_frames, read_short_interest
from proto_client.errors import InvalidCodeError
from proto_client.simulator.demo_data import rows_for
from tests.conftest import migrated_engine
from tests.support.databases import fresh_postgres_database
from tests.test_warehouse_upsert import hk_row, us_row

AS_OF = date(2026, 4, 30)
BOTH = {
    "market": "str",
    "code": "str",
    "trade_date": "datetime64[ns]",
    "aggregated_short": "Int64",
    "aggregated_short_ratio": "float64",
    "close_price": "float64",
    "last_close_price": "float64",
    "shares_short": "Int64",
    "short_percent": "float64",
    "avg_daily_share_volume": "Int64",
    "days_to_cover": "float64",
    "name": "string",
}
US_ONLY = ["market", "code", "trade_date", "shares_short", "short_percent", "avg_daily_share_volume"]
US_ONLY += ["days_to_cover", "close_price", "last_close_price", "name"]


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    """One warehouse per database for the module's tests, which only read."""
    with ExitStack() as stack:
        if request.param == "postgres":
            url = stack.enter_context(fresh_postgres_database())
        else:
            url = f"sqlite:///{tmp_path_factory.mktemp('read') / 'warehouse.db'}"
        engine = stack.enter_context(migrated_engine(url))
        for code in ("US.AAPL", "HK.00700", "HK.02800"):
            upsert_batch(engine, rows_for(code, AS_OF))
        upsert_batch(engine, [us_row("US.MSFT", date(2024, 1, 2), shares_short=None, days_to_cover=None)])
        yield engine


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.dtypes.items()}


def test_every_stored_row_in_fixed_dtypes_ordered_by_market_code_and_date(loaded: sa.Engine) -> None:
    frame = read_short_interest(engine=loaded)
    assert _dtypes(frame) == BOTH
    counts = frame.groupby("code").size().to_dict()
    assert counts == {c: len(rows_for(c, AS_OF)) for c in ("US.AAPL", "HK.00700", "HK.02800")} | {"US.MSFT": 1}
    assert list(frame["market"].unique()) == ["HK", "US"]
    assert frame.equals(frame.sort_values(["market", "code", "trade_date"], ignore_index=True))
    assert frame.index.equals(pd.RangeIndex(len(frame)))

    newest = rows_for("US.AAPL", AS_OF)[0]
    row = frame[(frame["code"] == "US.AAPL")].iloc[-1]
    assert row["trade_date"] == pd.Timestamp(newest.trade_date)
    assert (row["shares_short"], row["days_to_cover"]) == (newest.shares_short, newest.days_to_cover)
    assert pd.isna(row["aggregated_short"])
    msft = frame[frame["code"] == "US.MSFT"].iloc[0]
    assert msft["shares_short"] is pd.NA and pd.isna(msft["days_to_cover"]) and msft["close_price"] == 185.64


def test_codes_and_dates_narrow_the_read_and_choose_the_columns(loaded: sa.Engine) -> None:
    with pytest.warns(UserWarning, match=r"no stored rows for US\.MSFT$"):
        frame = read_short_interest(["US.AAPL", "US.MSFT"], since="2025-01-01", until=date(2025, 12, 31), engine=loaded)
    assert list(frame.columns) == US_ONLY
    assert set(frame["code"]) == {"US.AAPL"}
    assert frame["trade_date"].min() >= pd.Timestamp("2025-01-01")
    assert frame["trade_date"].max() <= pd.Timestamp("2025-12-31")
    assert len(frame) == sum(1 for r in rows_for("US.AAPL", AS_OF) if r.trade_date.year == 2025)

    hk = read_short_interest(market="HK", engine=loaded)
    assert set(hk["code"]) == {"HK.00700", "HK.02800"}
    assert "shares_short" not in hk.columns


def test_nothing_matched_is_an_empty_frame_with_the_columns_and_dtypes(loaded: sa.Engine) -> None:
    with pytest.warns(UserWarning, match=r"no stored rows for US\.NONE, HK\.09988"):
        frame = read_short_interest(["US.NONE", "HK.09988"], market="US", engine=loaded)
    assert frame.empty
    assert list(frame.columns) == US_ONLY
    assert _dtypes(frame) == {name: BOTH[name] for name in US_ONLY}
    with pytest.warns(UserWarning, match="US.AAPL"):
        assert read_short_interest(["US.AAPL"], market="HK", engine=loaded).empty
    with pytest.raises(ValueError, match="'CN'"):
        read_short_interest(market="CN", engine=loaded)


def test_chunks_add_up_to_the_whole_read(loaded: sa.Engine) -> None:
    chunks = list(iter_short_interest_frames(loaded, chunk_rows=100))
    assert all(len(chunk) <= 100 for chunk in chunks)
    assert len({tuple(_dtypes(chunk).items()) for chunk in chunks}) == 1  # one schema, even for an all-null column
    whole = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(whole, read_short_interest(engine=loaded), check_exact=True)


def test_a_malformed_code_is_refused_by_name(loaded: sa.Engine) -> None:
    with pytest.raises(InvalidCodeError, match=r"'US\.aapl'"):
        read_short_interest(["US.AAPL", "US.aapl"], engine=loaded)


def test_hk_rows_with_absent_values(warehouse_engine: sa.Engine) -> None:
    upsert_batch(warehouse_engine, [hk_row(aggregated_short=None, close_price=None)])
    frame = read_short_interest(engine=warehouse_engine)
    assert frame["aggregated_short"].iloc[0] is pd.NA
    assert pd.isna(frame["close_price"].iloc[0])
    assert frame["aggregated_short_ratio"].iloc[0] == 0.56
