"""OpenQuoteContext.get_short_interest against the official futu-api 10.11 client, on one simulated gateway.

The contract is the official client's own behaviour: every frame equal with check_exact (dtypes, column order,
index, NaN included) and equal attrs, for every kind of answer the call can give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from proto_client import RET_ERROR, RET_OK, Market, OpenQuoteContext, parse_code
from proto_client.frames import page_frames
from proto_client.messages import parse_short_interest_reply
from proto_client.pb import qot_get_short_interest_pb2
from proto_client.records import END_OF_DATA
from proto_client.simulator.demo_data import rows_for
from tests.support.futu_api import futu_encrypting
from tests.support.gateway import GatewayProcess, start_gateway
from tests.support.rsa_keys import make_key

AS_OF = date(2026, 4, 30)
EARLY = date(2019, 12, 6)  # HK.09988 listed on 2019-11-26: its first report (29 Nov) is published 6 Dec


def _gateway(as_of: date) -> Iterator[GatewayProcess]:
    process = start_gateway(["--rate", "off", "--as-of", as_of.isoformat()])
    yield process
    process.stop()


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayProcess]:
    yield from _gateway(AS_OF)


@pytest.fixture(scope="module")
def early_gw() -> Iterator[GatewayProcess]:
    yield from _gateway(EARLY)


class Pair:
    """The official context and ours on the same gateway; `call` runs both and checks they agree."""

    def __init__(self, futu: Any, gateway: GatewayProcess, rsa_key_file: Path | None = None) -> None:
        encrypt = rsa_key_file is not None
        self.theirs = futu.OpenQuoteContext(host=gateway.host, port=gateway.port, is_encrypt=encrypt)
        self.ours = OpenQuoteContext(gateway.host, gateway.port, is_encrypt=encrypt, rsa_key_file=rsa_key_file)

    def close(self) -> None:
        self.theirs.close()
        self.ours.close()

    def call(self, *args: Any, **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Both clients' (us_df, hk_df) for a call that succeeds, asserted identical."""
        theirs = self.theirs.get_short_interest(*args, **kwargs)
        ours = self.ours.get_short_interest(*args, **kwargs)
        assert theirs[0] == RET_OK, theirs[1]
        assert ours[0] == RET_OK, ours[1]
        for their_df, our_df in zip(theirs[1:], ours[1:], strict=True):
            pd.testing.assert_frame_equal(our_df, their_df, check_exact=True)
            assert our_df.attrs == their_df.attrs
        return ours[1], ours[2]

    def both_fail(self, *args: Any, **kwargs: Any) -> tuple[str, str]:
        """Both clients' error messages for a call that fails: (RET_ERROR, message, None) from each."""
        theirs = self.theirs.get_short_interest(*args, **kwargs)
        ours = self.ours.get_short_interest(*args, **kwargs)
        assert theirs[0] == RET_ERROR and theirs[2] is None, theirs
        assert ours[0] == RET_ERROR and ours[2] is None, ours
        assert isinstance(ours[1], str)
        return theirs[1], ours[1]


@pytest.fixture(scope="module")
def pair(futu: Any, gw: GatewayProcess) -> Iterator[Pair]:
    both = Pair(futu, gw)
    yield both
    both.close()


@pytest.mark.parametrize("code", ["HK.00700", "US.AAPL"])
def test_first_page_with_the_default_size(pair: Pair, code: str) -> None:
    us_df, hk_df = pair.call(code)
    df, other = (hk_df, us_df) if code.startswith("HK.") else (us_df, hk_df)
    assert len(df) == 10 and other.empty and list(other.columns)
    assert df["timestamp_str"].iloc[0] == rows_for(code, AS_OF)[0].trade_date.isoformat()


@pytest.mark.parametrize("code", ["HK.00939", "US.TSLA"])
def test_two_rows_then_the_page_after_them(pair: Pair, code: str) -> None:
    first = pair.call(code, num=2)
    key = first[0].attrs["next_key"]
    assert key != END_OF_DATA
    pair.call(code, next_key=key, num=2)
    pair.call(code, key, 2)  # positional, as scripts call it


@pytest.mark.parametrize("code", ["HK.00700", "US.AAPL"])
def test_walk_at_fifty_to_the_end(pair: Pair, code: str) -> None:
    next_key: str | None = None
    pages = 0
    while next_key != END_OF_DATA:
        us_df, _ = pair.call(code, next_key=next_key, num=50)
        next_key = us_df.attrs["next_key"]
        pages += 1
        assert pages <= 20
    assert pages == -(-len(rows_for(code, AS_OF)) // 50)
    pair.call(code, next_key=END_OF_DATA, num=50)  # past the end: both empty, "-1"


@pytest.mark.parametrize("code", ["HK.02800", "US.SPY", "US.QQQ"])
def test_funds(pair: Pair, code: str) -> None:
    pair.call(code, num=50)


def test_an_empty_next_key_is_the_first_page(pair: Pair) -> None:
    pair.call("US.MSFT", next_key="", num=3)


@pytest.mark.slow
def test_a_code_with_a_single_row(futu: Any, early_gw: GatewayProcess) -> None:
    early = Pair(futu, early_gw)
    try:
        _, hk_df = early.call("HK.09988", num=50)
        assert len(hk_df) == 1 and hk_df.attrs["next_key"] == END_OF_DATA
        early.call("HK.09988")
    finally:
        early.close()


def test_an_unknown_code_fails_with_the_gateways_words(pair: Pair) -> None:
    theirs, ours = pair.both_fail("HK.99999", num=50)
    assert ours == theirs == "unknown security HK.99999"


@pytest.mark.parametrize("code", ["HK.0070", "AAPL", "US.aapl", "SH.600000", "hk.00700", ""])
def test_a_malformed_code_fails_naming_it(pair: Pair, code: str) -> None:
    _, ours = pair.both_fail(code)
    assert repr(code) in ours


@pytest.mark.parametrize("num", [0, 51, -3])
def test_num_outside_one_to_fifty_fails_on_both(pair: Pair, num: int) -> None:
    theirs, ours = pair.both_fail("US.AAPL", num=num)
    assert str(num) in theirs and str(num) in ours


def test_ours_refuses_without_a_request(pair: Pair) -> None:
    """The official client sends a malformed code or num to the gateway; ours spends no request on it."""
    sent = pair.ours.client.requests_sent
    assert pair.ours.get_short_interest("US.AAPL", num=51)[0] == RET_ERROR
    assert pair.ours.get_short_interest("HK.0070")[0] == RET_ERROR
    assert pair.ours.get_short_interest("US.AAPL", num=True)[0] == RET_ERROR  # type: ignore[arg-type]
    assert pair.ours.client.requests_sent == sent


def test_a_gateway_that_is_not_there_is_an_error_not_an_exception(gw: GatewayProcess) -> None:
    with OpenQuoteContext(host="127.0.0.1", port=1, connect_timeout=2.0) as ctx:
        ret, message, hk_df = ctx.get_short_interest("HK.00700")
    assert ret == RET_ERROR and hk_df is None
    assert "127.0.0.1:1" in message


@pytest.mark.parametrize("code", ["HK.00700", "US.AAPL"])
def test_history_is_the_official_pages_end_to_end(pair: Pair, code: str) -> None:
    pages = []
    next_key: str | None = None
    while next_key != END_OF_DATA:
        ret, us_df, hk_df = pair.theirs.get_short_interest(code, next_key=next_key, num=50)
        assert ret == RET_OK
        pages.append(hk_df if code.startswith("HK.") else us_df)
        next_key = us_df.attrs["next_key"]
    history = pair.ours.get_short_interest_history(code)
    pd.testing.assert_frame_equal(history, pd.concat(pages, ignore_index=True), check_exact=True)
    assert history.attrs == {"code": code}


def _official_frames(futu: Any, code: str, body: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """futu-api's frames for a reply body, through its own get_short_interest with its transport cut out."""
    from futu.common.pb.Qot_GetShortInterest_pb2 import Response

    response = Response()
    response.ParseFromString(body)
    ctx = object.__new__(futu.OpenQuoteContext)  # no connection: the reply is handed straight to its unpacker
    ctx._get_sync_query_processor = lambda _pack, unpack: lambda **_kwargs: unpack(response)
    ctx.get_sync_conn_id = lambda: 0
    ret, us_df, hk_df = ctx.get_short_interest(code)
    assert ret == RET_OK
    return us_df, hk_df


def _reply(items: list[dict[str, Any]], *, hk: bool, next_key: str | None) -> bytes:
    s2c = qot_get_short_interest_pb2.S2C()
    for item in items:
        (s2c.hkItemList if hk else s2c.usItemList).add(**item)
    if next_key is not None:
        s2c.nextKey = next_key
    return qot_get_short_interest_pb2.Response(retType=0, s2c=s2c).SerializeToString()


_US_DAY = {"timestamp": 1777521600, "timestampStr": "2026-04-30"}
_HK_DAY = {"timestamp": 1777478400, "timestampStr": "2026-04-30"}
_US_OLDER = {"timestamp": 1776139200, "timestampStr": "2026-04-14"}


@pytest.mark.parametrize(
    ("code", "items", "next_key"),
    [
        ("US.AAPL", [_US_DAY | {"sharesShort": 2**40, "shortPercent": 0.5}, _US_OLDER | {"closePrice": 1.5}], "9"),
        ("US.AAPL", [_US_DAY, _US_OLDER], None),  # values and nextKey all absent
        ("HK.00700", [_HK_DAY | {"aggregatedShort": 7}], "-1"),
        ("HK.00700", [], None),
    ],
)
def test_absent_values_become_what_the_official_frames_hold(
    futu: Any, code: str, items: list[dict[str, Any]], next_key: str | None
) -> None:
    security = parse_code(code)
    body = _reply(items, hk=security.market is Market.HK, next_key=next_key)
    page = parse_short_interest_reply(body, security)
    ours = page_frames(security.market, page.rows, page.next_key)
    for our_df, their_df in zip(ours, _official_frames(futu, code, body), strict=True):
        pd.testing.assert_frame_equal(our_df, their_df, check_exact=True)
        assert our_df.attrs == their_df.attrs


@pytest.mark.parametrize("extra", [[], ["--aes", "ecb"]])
def test_through_an_encrypting_gateway_with_opaque_keys(
    futu: Any, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path, extra: list[str]
) -> None:
    key = make_key(tmp_path / "opend_rsa.pem")
    gateway = gateway_factory(
        "--rate", "off", "--as-of", AS_OF.isoformat(), "--rsa-key", str(key), "--opaque-keys", *extra
    )
    with futu_encrypting(futu, key):
        both = Pair(futu, gateway, key)
        try:
            next_key: str | None = None
            while next_key != END_OF_DATA:
                us_df, _ = both.call("US.AAPL", next_key=next_key, num=50)
                next_key = us_df.attrs["next_key"]
            assert len(both.ours.get_short_interest_history("HK.00700")) == len(rows_for("HK.00700", AS_OF))
        finally:
            both.close()


def test_encryption_options_must_agree(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rsa_key_file"):
        OpenQuoteContext(is_encrypt=True)
    with pytest.raises(ValueError, match="contradicts"):
        OpenQuoteContext(is_encrypt=False, rsa_key_file=tmp_path / "key.pem")
