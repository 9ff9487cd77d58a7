"""The four listing calls of OpenQuoteContext against the official futu-api 10.11 client, on one simulated gateway.

Frames equal with check_exact (dtypes, column order, index, NaN included) for every kind of answer; a failure
fails in both with the gateway's message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from proto_client import RET_ERROR, RET_OK, OpenQuoteContext
from tests.support.gateway import GatewayProcess, start_gateway


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayProcess]:
    process = start_gateway(["--rate", "off", "--listing-rate", "off", "--as-of", "2026-04-30"])
    yield process
    process.stop()


class Pair:
    def __init__(self, futu: Any, gateway: GatewayProcess) -> None:
        self.theirs = futu.OpenQuoteContext(host=gateway.host, port=gateway.port)
        self.ours = OpenQuoteContext(gateway.host, gateway.port)

    def close(self) -> None:
        self.theirs.close()
        self.ours.close()

    def call(self, name: str, *args: Any, **kwargs: Any) -> pd.DataFrame:
        theirs = getattr(self.theirs, name)(*args, **kwargs)
        ours = getattr(self.ours, name)(*args, **kwargs)
        assert theirs[0] == RET_OK, theirs[1]
        assert ours[0] == RET_OK, ours[1]
        assert len(ours) == len(theirs) == 2
        pd.testing.assert_frame_equal(ours[1], theirs[1], check_exact=True)
        return ours[1]

    def both_fail(self, name: str, *args: Any) -> str:
        theirs = getattr(self.theirs, name)(*args)
        ours = getattr(self.ours, name)(*args)
        assert theirs[0] == RET_ERROR and ours[0] == RET_ERROR, (theirs, ours)
        assert ours[1] == theirs[1]
        return str(ours[1])


@pytest.fixture(scope="module")
def pair(futu: Any, gw: GatewayProcess) -> Iterator[Pair]:
    both = Pair(futu, gw)
    yield both
    both.close()


@pytest.mark.parametrize("group_type", ["ALL", "CUSTOM", "SYSTEM"])
def test_groups(pair: Pair, group_type: str) -> None:
    df = pair.call("get_user_security_group", group_type)
    assert len(df) and set(df["group_type"]) <= {"CUSTOM", "SYSTEM"}


def test_groups_by_default(pair: Pair) -> None:
    assert list(pair.call("get_user_security_group")["group_name"]) == ["Shorts", "Tech", "All", "US", "HK"]


def test_a_group_with_a_warrant_a_delisted_stock_and_another_market(pair: Pair) -> None:
    df = pair.call("get_user_security", "Shorts")
    warrant = df[df["stock_type"] == "WARRANT"].iloc[0]
    assert warrant["stock_owner"] == "HK.00700" and warrant["stock_child_type"] == "CALL"
    assert df["delisting"].sum() == 1
    assert "SH.600519" in set(df["code"])


def test_a_group_with_an_index(pair: Pair) -> None:
    assert "IDX" in set(pair.call("get_user_security", "Tech")["stock_type"])


def test_index_constituents(pair: Pair) -> None:
    df = pair.call("get_plate_stock", "HK.HSI Constituent")
    assert len(df) == 80 and df["code"].is_monotonic_increasing
    assert df["stock_owner"].isna().all()
    descending = pair.call("get_plate_stock", "HK.HSI Constituent", ascend=False)
    assert list(descending["code"]) == list(reversed(df["code"]))


@pytest.mark.parametrize(("market", "stock_type"), [("HK", "STOCK"), ("US", "ETF"), ("HK", "WARRANT"), ("SH", "STOCK")])
def test_whole_market(pair: Pair, market: str, stock_type: str) -> None:
    df = pair.call("get_stock_basicinfo", market, stock_type)
    assert market == "SH" or len(df)


def test_listed_codes(pair: Pair) -> None:
    df = pair.call("get_stock_basicinfo", "HK", "STOCK", ["US.SPY", "HK.13579", "SH.600519", "US.SPY"])
    assert list(df["code"]) == ["US.SPY", "HK.13579", "SH.600519"]
    pair.call("get_stock_basicinfo", "US", code_list="HK.00700,US.AAPL")


def test_unknown_group_plate_and_code(pair: Pair) -> None:
    assert "Nope" in pair.both_fail("get_user_security", "Nope")
    assert "HK.BK9999" in pair.both_fail("get_plate_stock", "HK.BK9999")
    assert "HK.99999" in pair.both_fail("get_stock_basicinfo", "HK", "STOCK", ["HK.99999"])


def test_local_refusals_spend_no_request(gw: GatewayProcess) -> None:
    with OpenQuoteContext(gw.host, gw.port) as ctx:
        assert ctx.get_user_security(7)[0] == RET_ERROR  # type: ignore[arg-type]
        assert ctx.get_plate_stock("BK1001")[0] == RET_ERROR
        assert ctx.get_stock_basicinfo("XX")[0] == RET_ERROR
        assert ctx.get_user_security_group("MINE")[0] == RET_ERROR
        assert ctx.client.listing_requests_sent == 0


def test_groups_file_is_read_on_every_request(tmp_path: Path) -> None:
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"Shorts": ["HK.00700", "US.AAPL"]}))
    gateway = start_gateway(["--groups-file", str(groups), "--listing-rate", "off"])
    try:
        with OpenQuoteContext(gateway.host, gateway.port) as ctx:
            assert list(ctx.get_user_security("Shorts")[1]["code"]) == ["HK.00700", "US.AAPL"]  # type: ignore[index]
            groups.write_text(json.dumps({"Shorts": ["HK.00700"], "Longs": ["US.TSLA"]}))
            assert list(ctx.get_user_security("Shorts")[1]["code"]) == ["HK.00700"]  # type: ignore[index]
            assert ctx.get_user_security_group("CUSTOM")[1]["group_name"].tolist() == ["Shorts", "Longs"]  # type: ignore[index]
            groups.write_text("not json")
            ret, message = ctx.get_user_security("Shorts")
            assert ret == RET_ERROR and str(groups) in str(message)
    finally:
        gateway.stop()
