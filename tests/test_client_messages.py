"""Reply bodies -> typed rows: time zones, 64-bit counts, absent values, and refusing inconsistent replies."""

from __future__ import annotations

import re
from datetime import date

import pytest

from proto_client.errors import ProtocolError, RequestError
from proto_client.messages import (
    PROTO_GET_SHORT_INTEREST,
    TradeDays,
    check_page_args,
    parse_global_state_reply,
    parse_init_connect_reply,
    parse_short_interest_reply,
    short_interest_request,
)
from proto_client.pb import get_global_state_pb2, init_connect_pb2, qot_get_short_interest_pb2
from proto_client.records import END_OF_DATA, HkShortInterestRow, UsShortInterestRow, trade_date_of
from proto_client.security import Market, parse_code

Response = qot_get_short_interest_pb2.Response


def _reply(**s2c: object) -> Response:
    response = Response(retType=0)
    response.s2c.SetInParent()
    for name, value in s2c.items():
        if name in ("usItemList", "hkItemList"):
            getattr(response.s2c, name).extend(value)  # type: ignore[arg-type]
        else:
            setattr(response.s2c, name, value)
    return response


def test_hk_row_uses_the_hong_kong_trade_date_from_the_spec_example() -> None:
    item = qot_get_short_interest_pb2.HkShortInterestItem(
        timestamp=1777478400,
        timestampStr="2026-04-30",
        closePrice=467.8,
        lastClosePrice=479.2,
        aggregatedShort=51480638,
        aggregatedShortRatio=0.56,
    )
    page = parse_short_interest_reply(
        _reply(hkItemList=[item], nextKey="1777478400").SerializeToString(), parse_code("HK.00700")
    )
    assert page.rows == (
        HkShortInterestRow(
            code="HK.00700",
            trade_date=date(2026, 4, 30),  # 2026-04-29 in UTC: the market's zone decides
            timestamp=1777478400,
            aggregated_short=51480638,
            aggregated_short_ratio=0.56,
            close_price=467.8,
            last_close_price=479.2,
        ),
    )
    assert page.next_key == "1777478400"
    assert not page.is_last


def test_us_row_keeps_counts_above_two_to_the_31_and_absent_values_as_none() -> None:
    # 2026-04-15 00:00 America/New_York
    item = qot_get_short_interest_pb2.UsShortInterestItem(
        timestamp=1776225600, timestampStr="2026-04-15", sharesShort=9_876_543_210_123, shortPercent=0.81
    )
    page = parse_short_interest_reply(
        _reply(usItemList=[item], nextKey=END_OF_DATA).SerializeToString(), parse_code("US.AAPL")
    )
    (row,) = page.rows
    assert row == UsShortInterestRow(
        code="US.AAPL",
        trade_date=date(2026, 4, 15),
        timestamp=1776225600,
        shares_short=9_876_543_210_123,
        short_percent=0.81,
        avg_daily_share_volume=None,
        days_to_cover=None,
        close_price=None,
        last_close_price=None,
    )
    assert page.is_last


def test_zero_values_are_kept_not_mistaken_for_absent() -> None:
    item = qot_get_short_interest_pb2.HkShortInterestItem(
        timestamp=1777478400, aggregatedShort=0, aggregatedShortRatio=0.0
    )
    (row,) = parse_short_interest_reply(_reply(hkItemList=[item]).SerializeToString(), parse_code("HK.00700")).rows
    assert isinstance(row, HkShortInterestRow)
    assert row.aggregated_short == 0
    assert row.aggregated_short_ratio == 0.0
    assert row.close_price is None


def test_absent_next_key_means_end_of_data() -> None:
    page = parse_short_interest_reply(_reply().SerializeToString(), parse_code("US.AAPL"))
    assert page.rows == ()
    assert page.next_key == END_OF_DATA
    assert page.is_last


def test_timestamp_str_disagreeing_with_timestamp_is_refused_naming_both() -> None:
    # The UTC date of this HK timestamp: what a client converting through UTC would have written.
    item = qot_get_short_interest_pb2.HkShortInterestItem(timestamp=1777478400, timestampStr="2026-04-29")
    with pytest.raises(ProtocolError) as info:
        parse_short_interest_reply(_reply(hkItemList=[item]).SerializeToString(), parse_code("HK.00700"))
    message = str(info.value)
    assert "HK.00700" in message
    assert "2026-04-29" in message
    assert "2026-04-30" in message


def test_remembered_trade_days_still_check_every_rows_timestamp_str() -> None:
    trade_days = TradeDays()
    good = qot_get_short_interest_pb2.HkShortInterestItem(timestamp=1777478400, timestampStr="2026-04-30")
    page = parse_short_interest_reply(_reply(hkItemList=[good]).SerializeToString(), parse_code("HK.00700"), trade_days)
    assert page.rows[0].trade_date == date(2026, 4, 30)
    # Same timestamp on the next page, now with the UTC date as its text: remembered, and still refused.
    bad = qot_get_short_interest_pb2.HkShortInterestItem(timestamp=1777478400, timestampStr="2026-04-29")
    with pytest.raises(ProtocolError, match="disagrees"):
        parse_short_interest_reply(_reply(hkItemList=[bad]).SerializeToString(), parse_code("HK.00939"), trade_days)


@pytest.mark.parametrize("hk_first", [True, False])
def test_remembered_trade_days_are_per_market(hk_first: bool) -> None:
    # 2026-04-30 00:00 in Hong Kong is still 2026-04-29 in New York: one timestamp, two trade dates.
    trade_days = TradeDays()
    hk = qot_get_short_interest_pb2.HkShortInterestItem(timestamp=1777478400, timestampStr="2026-04-30")
    us = qot_get_short_interest_pb2.UsShortInterestItem(timestamp=1777478400, timestampStr="2026-04-29")
    pages = [
        ("HK.00700", _reply(hkItemList=[hk]).SerializeToString()),
        ("US.AAPL", _reply(usItemList=[us]).SerializeToString()),
    ]
    dates = {}
    for code, body in pages if hk_first else reversed(pages):
        dates[code] = parse_short_interest_reply(body, parse_code(code), trade_days).rows[0].trade_date
    assert dates == {"HK.00700": date(2026, 4, 30), "US.AAPL": date(2026, 4, 29)}


def test_trade_days_start_over_at_their_limit() -> None:
    trade_days = TradeDays(limit=2)
    stamps = [1776225600 + day * 86_400 for day in range(5)]  # 2026-04-15 .. 19, no clock change
    for stamp in stamps:
        item = qot_get_short_interest_pb2.UsShortInterestItem(
            timestamp=stamp, timestampStr=trade_date_of(stamp, Market.US).isoformat()
        )
        (row,) = parse_short_interest_reply(
            _reply(usItemList=[item]).SerializeToString(), parse_code("US.AAPL"), trade_days
        ).rows
        assert row.trade_date == trade_date_of(stamp, Market.US)
        assert len(trade_days.of(Market.US)) <= 2
    with pytest.raises(ValueError, match="limit"):
        TradeDays(limit=0)


def test_row_without_timestamp_is_refused() -> None:
    item = qot_get_short_interest_pb2.UsShortInterestItem(timestampStr="2026-04-15", sharesShort=1)
    with pytest.raises(ProtocolError, match=re.escape("US.TSLA")):
        parse_short_interest_reply(_reply(usItemList=[item]).SerializeToString(), parse_code("US.TSLA"))


@pytest.mark.parametrize(
    ("code", "field", "item"),
    [
        ("US.AAPL", "hkItemList", qot_get_short_interest_pb2.HkShortInterestItem(timestamp=1777478400)),
        ("HK.00700", "usItemList", qot_get_short_interest_pb2.UsShortInterestItem(timestamp=1776225600)),
    ],
)
def test_rows_of_the_wrong_market_are_refused(code: str, field: str, item: object) -> None:
    with pytest.raises(ProtocolError, match=re.escape(code)):
        parse_short_interest_reply(_reply(**{field: [item]}).SerializeToString(), parse_code(code))


def test_failed_reply_becomes_request_error_with_its_fields() -> None:
    body = Response(retType=-1, retMsg="unknown stock US.NOPE", errCode=7).SerializeToString()
    with pytest.raises(RequestError) as info:
        parse_short_interest_reply(body, parse_code("US.NOPE"))
    error = info.value
    assert (error.proto_id, error.ret_type, error.ret_msg, error.err_code) == (
        PROTO_GET_SHORT_INTEREST,
        -1,
        "unknown stock US.NOPE",
        7,
    )
    assert error.is_unknown_security


def test_success_without_s2c_and_garbage_bodies_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="no s2c"):
        parse_short_interest_reply(Response(retType=0).SerializeToString(), parse_code("US.AAPL"))
    with pytest.raises(ProtocolError, match="undecodable"):
        parse_short_interest_reply(b"\xff\xff\xff\xff", parse_code("US.AAPL"))


def test_request_carries_market_symbol_key_and_num() -> None:
    request = qot_get_short_interest_pb2.Request()
    request.ParseFromString(short_interest_request(parse_code("US.BRK.B"), "1776225600", 50))
    assert request.c2s.security.market == 11
    assert request.c2s.security.code == "BRK.B"
    assert request.c2s.nextKey == "1776225600"
    assert request.c2s.num == 50
    first = qot_get_short_interest_pb2.Request()
    first.ParseFromString(short_interest_request(parse_code("HK.00700"), None, 1))
    assert first.c2s.security.market == 1
    assert not first.c2s.HasField("nextKey")


@pytest.mark.parametrize("num", [0, 51, -1, True, 10.0, "50"])
def test_page_size_outside_one_to_fifty_is_refused_naming_it(num: object) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(num))):
        check_page_args(None, num)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["", 1776225600])
def test_next_key_must_be_a_non_empty_string(key: object) -> None:
    with pytest.raises(ValueError, match="next_key"):
        check_page_args(key, 50)  # type: ignore[arg-type]


def test_init_connect_and_global_state_replies() -> None:
    init = init_connect_pb2.Response(retType=0)
    init.s2c.serverVer = 1011
    init.s2c.loginUserID = 42
    init.s2c.connID = 2**63 + 5
    init.s2c.connAESKey = "0123456789ABCDEF"
    init.s2c.keepAliveInterval = 10
    info = parse_init_connect_reply(init.SerializeToString())
    assert (info.conn_id, info.server_ver, info.login_user_id, info.keepalive_interval) == (2**63 + 5, 1011, 42, 10)

    state = get_global_state_pb2.Response(retType=0)
    s2c = state.s2c
    s2c.marketHK = s2c.marketUS = s2c.marketSH = s2c.marketSZ = s2c.marketHKFuture = 0
    s2c.qotLogined = True
    s2c.trdLogined = False
    s2c.serverVer = 1011
    s2c.serverBuildNo = 1
    s2c.time = 1777478400
    global_state = parse_global_state_reply(state.SerializeToString())
    assert (global_state.qot_logined, global_state.server_ver, global_state.time) == (True, 1011, 1777478400)


def test_a_timestamp_outside_the_calendar_is_refused_naming_it() -> None:
    item = qot_get_short_interest_pb2.UsShortInterestItem(timestamp=2**62)
    with pytest.raises(ProtocolError, match=str(2**62)):
        parse_short_interest_reply(_reply(usItemList=[item]).SerializeToString(), parse_code("US.AAPL"))


@pytest.mark.parametrize("code", ["US.AAPL", "HK.00700"])
def test_trade_dates_match_trade_date_of_across_daylight_saving_changes(code: str) -> None:
    security = parse_code(code)
    market = security.market
    # Midnights around the 2026 New York DST switches, and a few arbitrary instants.
    stamps = [1772946000, 1773028800, 1793505600, 1793595600, 0, 1777478400, 1777521599]
    field = "usItemList" if market.prefix == "US" else "hkItemList"
    item_type = (
        qot_get_short_interest_pb2.UsShortInterestItem
        if field == "usItemList"
        else qot_get_short_interest_pb2.HkShortInterestItem
    )
    page = parse_short_interest_reply(
        _reply(**{field: [item_type(timestamp=ts) for ts in stamps]}).SerializeToString(), security
    )
    assert [row.trade_date for row in page.rows] == [trade_date_of(ts, market) for ts in stamps]
