"""The official futu-api client against the simulated gateway: the proof it speaks the real protocol.

futu-api is imported through tests.support.futu_api, and every context is closed before the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from proto_client import frames
from proto_client.records import END_OF_DATA, HkShortInterestRow, ShortInterestRow
from proto_client.simulator.demo_data import rows_for
from tests.support.futu_api import futu_encrypting
from tests.support.gateway import GatewayProcess, start_gateway
from tests.support.rsa_keys import make_key

AS_OF = date(2026, 4, 30)
HK_COLUMNS = list(frames.HK_COLUMNS)
US_COLUMNS = list(frames.US_COLUMNS)


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayProcess]:
    process = start_gateway(["--rate", "off", "--as-of", AS_OF.isoformat()])
    yield process
    process.stop()


@pytest.fixture
def quote_ctx(futu: Any, gw: GatewayProcess) -> Iterator[Any]:
    ctx = futu.OpenQuoteContext(host=gw.host, port=gw.port, is_encrypt=False)
    try:
        yield ctx
    finally:
        ctx.close()


def _expected(row: ShortInterestRow) -> dict[str, object]:
    common = {"timestamp": row.timestamp, "timestamp_str": row.trade_date.isoformat()}
    if isinstance(row, HkShortInterestRow):
        return common | {
            "aggregated_short": row.aggregated_short,
            "aggregated_short_ratio": row.aggregated_short_ratio,
            "close_price": row.close_price,
            "last_close_price": row.last_close_price,
        }
    return common | {
        "shares_short": row.shares_short,
        "short_percent": row.short_percent,
        "avg_daily_share_volume": row.avg_daily_share_volume,
        "days_to_cover": row.days_to_cover,
        "close_price": row.close_price,
        "last_close_price": row.last_close_price,
    }


@pytest.mark.parametrize(("code", "columns"), [("HK.00700", HK_COLUMNS), ("US.AAPL", US_COLUMNS)])
def test_futu_pages_a_full_history_to_the_end(futu: Any, quote_ctx: Any, code: str, columns: list[str]) -> None:
    is_hk = code.startswith("HK.")
    records: list[dict[str, object]] = []
    next_key: str | None = None
    pages = 0
    while next_key != END_OF_DATA:
        ret, us_df, hk_df = quote_ctx.get_short_interest(code, next_key=next_key, num=50)
        assert ret == futu.RET_OK, us_df
        pages += 1
        df, other = (hk_df, us_df) if is_hk else (us_df, hk_df)
        assert list(df.columns) == columns
        assert other.empty
        next_key = df.attrs["next_key"]
        records.extend(df.to_dict("records"))
        assert pages < 100
    expected = [_expected(r) for r in rows_for(code, AS_OF)]
    assert [{k: _plain(v) for k, v in r.items()} for r in records] == expected
    assert pages == -(-len(expected) // 50)


def _plain(value: object) -> object:
    """numpy scalars from the DataFrame as the Python values they hold."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def test_futu_sees_uint64_counts_intact(futu: Any, quote_ctx: Any) -> None:
    ret, _us_df, hk_df = quote_ctx.get_short_interest("HK.00939", num=50)
    assert ret == futu.RET_OK
    expected = [r.aggregated_short for r in rows_for("HK.00939", AS_OF)[:50]]
    assert [int(v) for v in hk_df["aggregated_short"]] == expected
    assert max(expected) > 2**31


def test_futu_reports_unknown_codes_and_markets(futu: Any, quote_ctx: Any) -> None:
    ret, message, hk_df = quote_ctx.get_short_interest("HK.99999", num=50)
    assert ret != futu.RET_OK
    assert message == "unknown security HK.99999"
    assert hk_df is None
    ret, message, _ = quote_ctx.get_short_interest("SH.600000", num=50)
    assert ret != futu.RET_OK
    assert "unsupported market CNSH" in message
    ret, message, _ = quote_ctx.get_short_interest("US.AAPL", num=51)
    assert ret != futu.RET_OK
    assert "num 51" in message


def test_futu_global_state(futu: Any, quote_ctx: Any) -> None:
    ret, state = quote_ctx.get_global_state()
    assert ret == futu.RET_OK, state
    assert state["qot_logined"] is True


@pytest.fixture
def futu_encrypted(futu: Any, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """futu-api switched to encrypted links with a fresh key; its process-wide settings restored afterwards."""
    key = make_key(tmp_path / "opend_rsa.pem")
    with futu_encrypting(futu, key):
        yield futu, key


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--aes", "ecb"], ["--opaque-keys", "--notify-every", "1"]])
def test_futu_pages_through_the_encrypting_gateway(
    futu_encrypted: tuple[Any, Path], gateway_factory: Callable[..., GatewayProcess], extra: list[str]
) -> None:
    """futu-api's own encryption (PyCryptodome, AES-CBC or OpenD's FTAES-ECB) reads the simulator's links."""
    futu, key = futu_encrypted
    gw = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat(), "--rsa-key", str(key), *extra)
    ctx = futu.OpenQuoteContext(host=gw.host, port=gw.port)
    try:
        for code in ("HK.00700", "US.AAPL"):
            records: list[dict[str, object]] = []
            next_key: str | None = None
            while next_key != END_OF_DATA:
                ret, us_df, hk_df = ctx.get_short_interest(code, next_key=next_key, num=50)
                assert ret == futu.RET_OK, us_df
                df = hk_df if code.startswith("HK.") else us_df
                next_key = df.attrs["next_key"]
                records.extend(df.to_dict("records"))
                assert len(records) < 5000
            expected = [_expected(r) for r in rows_for(code, AS_OF)]
            assert [{k: _plain(v) for k, v in r.items()} for r in records] == expected
        ret, state = ctx.get_global_state()
        assert ret == futu.RET_OK and state["qot_logined"] is True
    finally:
        ctx.close()
