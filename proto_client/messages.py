"""Protobuf bodies <-> typed values for the four OpenD calls the client makes.

Everything here is pure (bytes in, dataclasses out), so the conversion rules the warehouse depends on
(market time zones, 64-bit counts, absent values as None, refusing inconsistent rows) are testable
without a socket, and the client keeps only transport concerns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from proto_client.encryption import PacketEncAlgo
from proto_client.errors import ProtocolError, RequestError
from proto_client.pb import (
    get_global_state_pb2,
    init_connect_pb2,
    keep_alive_pb2,
    notify_pb2,
    qot_get_short_interest_pb2,
)
from proto_client.records import (
    END_OF_DATA,
    HkShortInterestRow,
    Page,
    UsShortInterestRow,
    trade_date_of,
)
from proto_client.security import Market, Security

PROTO_INIT_CONNECT = 1001
PROTO_GET_GLOBAL_STATE = 1002
PROTO_NOTIFY = 1003
PROTO_KEEP_ALIVE = 1004
PROTO_GET_SHORT_INTEREST = 3249

CLIENT_VER = 100
MAX_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """What InitConnect tells a client about its new connection."""

    conn_id: int
    server_ver: int
    login_user_id: int
    keepalive_interval: int  # seconds; keep-alives go out at about 4/5 of this while idle
    # The AES key (and CBC IV) the gateway handed out; used only when the link is encrypted, never shown.
    aes_key: str = field(default="", repr=False)
    aes_iv: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class GlobalState:
    """Gateway health: whether it is logged in to the quote server, its version and clock."""

    qot_logined: bool
    server_ver: int
    time: int  # gateway clock, Unix seconds


class TradeDays:
    """trade_date_of per market, remembered: a crawl meets the same few hundred report dates on every code,
    and converting a timestamp in the market's zone costs a third of decoding a row.

    Starts a market over once it holds `limit` timestamps, so a long-lived client stays small.
    """

    __slots__ = ("_known", "_limit")

    def __init__(self, limit: int = 50_000) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._limit = limit
        self._known: dict[Market, dict[int, tuple[date, str]]] = {market: {} for market in Market}

    def of(self, market: Market) -> dict[int, tuple[date, str]]:
        """timestamp -> (trade date, its ISO text) for `market`, for the row loops to read and fill."""
        known = self._known[market]
        if len(known) >= self._limit:
            known.clear()
        return known


_R = TypeVar("_R", bound=Message)
_fromtimestamp = datetime.fromtimestamp
_Item = qot_get_short_interest_pb2.UsShortInterestItem | qot_get_short_interest_pb2.HkShortInterestItem


def _parse(proto_id: int, body: bytes, response_type: Callable[[], _R]) -> _R:
    """Decode a Response; retType != 0 becomes RequestError, an undecodable body ProtocolError."""
    response = response_type()
    try:
        response.ParseFromString(body)
    except DecodeError as exc:
        raise ProtocolError(f"undecodable reply body for proto {proto_id}: {exc}") from exc
    ret_type: int = response.retType  # type: ignore[attr-defined]
    if ret_type != 0:
        raise RequestError(proto_id, ret_type, response.retMsg, response.errCode)  # type: ignore[attr-defined]
    if not response.HasField("s2c"):
        raise ProtocolError(f"reply for proto {proto_id} reports success but carries no s2c")
    return response


def init_connect_request(
    client_id: str, *, client_ver: int = CLIENT_VER, packet_enc_algo: PacketEncAlgo = PacketEncAlgo.NONE
) -> bytes:
    request = init_connect_pb2.Request()
    c2s = request.c2s
    c2s.clientVer = client_ver
    c2s.clientID = client_id
    c2s.recvNotify = False
    c2s.packetEncAlgo = packet_enc_algo
    c2s.pushProtoFmt = 0
    c2s.programmingLanguage = "Python"
    return request.SerializeToString()


def parse_init_connect_reply(body: bytes) -> ConnectionInfo:
    s2c = _parse(PROTO_INIT_CONNECT, body, init_connect_pb2.Response).s2c
    return ConnectionInfo(
        conn_id=s2c.connID,
        server_ver=s2c.serverVer,
        login_user_id=s2c.loginUserID,
        keepalive_interval=s2c.keepAliveInterval,
        aes_key=s2c.connAESKey,
        aes_iv=s2c.aesCBCiv if s2c.HasField("aesCBCiv") else None,
    )


def keep_alive_request(now: int) -> bytes:
    request = keep_alive_pb2.Request()
    request.c2s.time = now
    return request.SerializeToString()


def parse_keep_alive_reply(body: bytes) -> int:
    return _parse(PROTO_KEEP_ALIVE, body, keep_alive_pb2.Response).s2c.time


def global_state_request() -> bytes:
    request = get_global_state_pb2.Request()
    request.c2s.userID = 0
    return request.SerializeToString()


def parse_global_state_reply(body: bytes) -> GlobalState:
    s2c = _parse(PROTO_GET_GLOBAL_STATE, body, get_global_state_pb2.Response).s2c
    return GlobalState(qot_logined=s2c.qotLogined, server_ver=s2c.serverVer, time=s2c.time)


_NOTIFY_TYPES = {1: "gateway event", 2: "program status", 3: "connection status", 4: "quote rights", 6: "API quota"}


def describe_notify(body: bytes) -> str:
    """A log line for a Notify push (proto 1003); pushes are never taken for replies, only reported."""
    notify = notify_pb2.Response()
    try:
        notify.ParseFromString(body)
    except DecodeError:
        return f"undecodable Notify push ({len(body)} bytes), skipped"
    s2c = notify.s2c
    kind = _NOTIFY_TYPES.get(s2c.type, f"type {s2c.type}")
    if s2c.HasField("event"):
        return f"Notify ({kind}): event {s2c.event.eventType} {s2c.event.desc!r}"
    if s2c.HasField("connectStatus"):
        status = s2c.connectStatus
        return f"Notify ({kind}): quote login {'up' if status.qotLogined else 'DOWN'}"
    return f"Notify ({kind})"


def check_page_args(next_key: str | None, num: int) -> None:
    """Refuse arguments the gateway would reject, before any I/O or rate-limit token is spent."""
    if isinstance(num, bool) or not isinstance(num, int):
        raise ValueError(f"num must be an integer from 1 to {MAX_PAGE_SIZE}, got {num!r}")
    if not 1 <= num <= MAX_PAGE_SIZE:
        raise ValueError(f"num must be from 1 to {MAX_PAGE_SIZE}, got {num}")
    if next_key is not None and (not isinstance(next_key, str) or not next_key):
        raise ValueError(f"next_key must be None or a key returned by a previous page, got {next_key!r}")


def short_interest_request(security: Security, next_key: str | None, num: int) -> bytes:
    request = qot_get_short_interest_pb2.Request()
    c2s = request.c2s
    c2s.security.market = security.market.qot_market
    c2s.security.code = security.symbol
    if next_key is not None:
        c2s.nextKey = next_key
    c2s.num = num
    return request.SerializeToString()


# The row loops below are the client's hot path (50 rows a page), so they read each row's trade date from the
# TradeDays memo, converting (as trade_date_of does; tests hold the two equal) only on a miss, and build rows
# positionally in the records' field order. The memo only saves the conversion: every row's timestampStr is
# still checked.


def _bad_timestamp(code: str, market: Market, item: _Item) -> ProtocolError:
    if not item.HasField("timestamp"):
        return ProtocolError(f"{code}: short-interest row without a timestamp")
    timestamp = item.timestamp
    try:
        trade_date = trade_date_of(timestamp, market)
    except (OverflowError, OSError, ValueError) as exc:
        return ProtocolError(f"{code}: row timestamp {timestamp} is not a valid date: {exc}")
    return ProtocolError(
        f"{code}: row timestampStr {item.timestampStr!r} disagrees with timestamp {timestamp}, "
        f"which is {trade_date.isoformat()} in {market.tz_name}"
    )


def _remember_day(days: dict[int, tuple[date, str]], code: str, market: Market, item: _Item) -> tuple[date, str]:
    """The trade date of a timestamp not yet in `days`, and its ISO text, now remembered there."""
    timestamp = item.timestamp
    try:
        trade_date = _fromtimestamp(timestamp, market.tz).date()
    except (OverflowError, OSError, ValueError):
        raise _bad_timestamp(code, market, item) from None
    known = days[timestamp] = (trade_date, trade_date.isoformat())
    return known


def _us_rows(
    code: str, items: Iterable[qot_get_short_interest_pb2.UsShortInterestItem], days: dict[int, tuple[date, str]]
) -> list[UsShortInterestRow]:
    rows = []
    for item in items:
        has = item.HasField
        timestamp = item.timestamp
        trade_date, day = days.get(timestamp) or _remember_day(days, code, Market.US, item)
        if not has("timestamp") or (has("timestampStr") and item.timestampStr != day):
            raise _bad_timestamp(code, Market.US, item)
        rows.append(
            UsShortInterestRow(
                code,
                trade_date,
                timestamp,
                item.sharesShort if has("sharesShort") else None,
                item.shortPercent if has("shortPercent") else None,
                item.avgDailyShareVolume if has("avgDailyShareVolume") else None,
                item.daysToCover if has("daysToCover") else None,
                item.closePrice if has("closePrice") else None,
                item.lastClosePrice if has("lastClosePrice") else None,
            )
        )
    return rows


def _hk_rows(
    code: str, items: Iterable[qot_get_short_interest_pb2.HkShortInterestItem], days: dict[int, tuple[date, str]]
) -> list[HkShortInterestRow]:
    rows = []
    for item in items:
        has = item.HasField
        timestamp = item.timestamp
        trade_date, day = days.get(timestamp) or _remember_day(days, code, Market.HK, item)
        if not has("timestamp") or (has("timestampStr") and item.timestampStr != day):
            raise _bad_timestamp(code, Market.HK, item)
        rows.append(
            HkShortInterestRow(
                code,
                trade_date,
                timestamp,
                item.aggregatedShort if has("aggregatedShort") else None,
                item.aggregatedShortRatio if has("aggregatedShortRatio") else None,
                item.closePrice if has("closePrice") else None,
                item.lastClosePrice if has("lastClosePrice") else None,
            )
        )
    return rows


def parse_short_interest_reply(body: bytes, security: Security, trade_days: TradeDays | None = None) -> Page:
    """One page for `security`; rows of the other market's list mean the gateway answered the wrong query.

    Pass the same `trade_days` for every page of a crawl to convert each report date once.
    """
    s2c = _parse(PROTO_GET_SHORT_INTEREST, body, qot_get_short_interest_pb2.Response).s2c
    code = security.code
    days = (trade_days or TradeDays()).of(security.market)
    if security.market is Market.US:
        if s2c.hkItemList:
            raise ProtocolError(f"{code}: reply carries {len(s2c.hkItemList)} HK rows for a US security")
        rows: tuple[UsShortInterestRow | HkShortInterestRow, ...] = tuple(_us_rows(code, s2c.usItemList, days))
    else:
        if s2c.usItemList:
            raise ProtocolError(f"{code}: reply carries {len(s2c.usItemList)} US rows for an HK security")
        rows = tuple(_hk_rows(code, s2c.hkItemList, days))
    # futu-api reads an absent nextKey as the end of the data; so does this client.
    next_key = s2c.nextKey if s2c.HasField("nextKey") else END_OF_DATA
    return Page(code=code, rows=rows, next_key=next_key)
