"""Replies to each proto the gateway serves, as protobuf Response messages.

Pure request-to-reply logic: rate limits and faults are the server's business, not this module's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from google.protobuf.message import Message

from proto_client.encryption import PacketEncAlgo
from proto_client.pb import (
    get_global_state_pb2,
    init_connect_pb2,
    keep_alive_pb2,
    notify_pb2,
    qot_get_short_interest_pb2,
)
from proto_client.records import HkShortInterestRow, ShortInterestRow
from proto_client.simulator.book import DemoBook, SecurityLookupError
from proto_client.simulator.page_keys import OpaqueKeys
from proto_client.simulator.paging import PagingError, select_page

PROTO_INIT_CONNECT = 1001
PROTO_GET_GLOBAL_STATE = 1002
PROTO_NOTIFY = 1003
PROTO_KEEP_ALIVE = 1004
PROTO_GET_SHORT_INTEREST = 3249

SERVED_PROTOS = (PROTO_INIT_CONNECT, PROTO_GET_GLOBAL_STATE, PROTO_KEEP_ALIVE, PROTO_GET_SHORT_INTEREST)
REQUEST_TYPES: dict[int, type[Message]] = {
    PROTO_INIT_CONNECT: init_connect_pb2.Request,
    PROTO_GET_GLOBAL_STATE: get_global_state_pb2.Request,
    PROTO_KEEP_ALIVE: keep_alive_pb2.Request,
    PROTO_GET_SHORT_INTEREST: qot_get_short_interest_pb2.Request,
}

RET_OK, RET_FAILED, RET_INVALID = 0, -1, -500
SERVER_VERSION = 1011  # what OpenD 10.11 reports
SERVER_BUILD_NO = 7108
DEMO_LOGIN_USER_ID = 10_086_001
MARKET_STATE_CLOSED = 6  # QotMarketState_Closed: a demo gateway has no live session
# What a gateway whose quote login is down answers quote requests with.
NOT_LOGGED_IN_MESSAGE = "行情未登录 (quote server not logged in)"
NOTIFY_CONN_STATUS = 3
NOTIFY_GTW_EVENT = 1
GTW_EVENT_LOGIN_FAILED = 4


@dataclass(frozen=True, slots=True)
class Session:
    """What InitConnect negotiated for one connection."""

    conn_id: int
    aes_key: str
    keepalive_interval: int
    aes_iv: str | None = None  # set when the link is encrypted in AES-CBC
    push_proto_fmt: int = 0


def wants_cbc(request: init_connect_pb2.Request) -> bool:
    """OpenD encrypts in AES-CBC when the client asks for it, else in its own FTAES-ECB."""
    return request.c2s.HasField("packetEncAlgo") and request.c2s.packetEncAlgo == PacketEncAlgo.AES_CBC


def failure(ret_msg: str, ret_type: int = RET_FAILED) -> Message:
    """A failed reply. Every Response shares fields 1-3, so one type serves any proto id."""
    return keep_alive_pb2.Response(retType=ret_type, retMsg=ret_msg, errCode=0)


def init_connect(session: Session) -> init_connect_pb2.Response:
    """The reply; a gateway without an RSA key talks in the clear whatever the client asks for."""
    s2c = init_connect_pb2.S2C(
        serverVer=SERVER_VERSION,
        loginUserID=DEMO_LOGIN_USER_ID,
        connID=session.conn_id,
        connAESKey=session.aes_key,
        keepAliveInterval=session.keepalive_interval,
    )
    if session.aes_iv is not None:
        s2c.aesCBCiv = session.aes_iv
    return init_connect_pb2.Response(retType=RET_OK, retMsg="", errCode=0, s2c=s2c)


def notify(n: int, *, qot_logined: bool) -> notify_pb2.Response:
    """The n-th push of `--notify-every`: connection status and gateway events, in turn."""
    s2c = notify_pb2.S2C(type=NOTIFY_CONN_STATUS)
    if n % 2:
        s2c.connectStatus.qotLogined = qot_logined
        s2c.connectStatus.trdLogined = False
    else:
        s2c.type = NOTIFY_GTW_EVENT
        s2c.event.eventType = GTW_EVENT_LOGIN_FAILED if not qot_logined else 0
        s2c.event.desc = "quote login failed" if not qot_logined else "gateway running"
    return notify_pb2.Response(retType=RET_OK, retMsg="", errCode=0, s2c=s2c)


def keep_alive(request: keep_alive_pb2.Request) -> keep_alive_pb2.Response:
    del request
    return keep_alive_pb2.Response(retType=RET_OK, s2c=keep_alive_pb2.S2C(time=int(time.time())))


def global_state(
    request: get_global_state_pb2.Request, session: Session, *, qot_logined: bool = True
) -> get_global_state_pb2.Response:
    del request
    now = time.time()
    return get_global_state_pb2.Response(
        retType=RET_OK,
        s2c=get_global_state_pb2.S2C(
            marketHK=MARKET_STATE_CLOSED,
            marketUS=MARKET_STATE_CLOSED,
            marketSH=MARKET_STATE_CLOSED,
            marketSZ=MARKET_STATE_CLOSED,
            marketHKFuture=MARKET_STATE_CLOSED,
            marketUSFuture=MARKET_STATE_CLOSED,
            qotLogined=qot_logined,
            trdLogined=False,
            serverVer=SERVER_VERSION,
            serverBuildNo=SERVER_BUILD_NO,
            time=int(now),
            localTime=now,
            connID=session.conn_id,
        ),
    )


def requested_code(request: qot_get_short_interest_pb2.Request, book: DemoBook) -> str:
    """The code a 3249 request names (`HK.00700`), for accounting; raises for refused markets."""
    security = request.c2s.security
    return book.code_of(security.market, security.code)


def short_interest(
    request: qot_get_short_interest_pb2.Request,
    book: DemoBook,
    *,
    lazy_end: bool,
    keys: OpaqueKeys | None = None,
    loop_code: str | None = None,
) -> qot_get_short_interest_pb2.Response:
    """One page. With `keys`, page keys are opaque tokens; `loop_code` answers every page of that code
    with its first page again (a gateway paging in a loop)."""
    c2s = request.c2s
    try:
        code = requested_code(request, book)
        next_key = c2s.nextKey if c2s.HasField("nextKey") else None
        if keys is not None and next_key:
            next_key = keys.decode(code, next_key)
        if code == loop_code:
            next_key = None
        page = select_page(book.rows(code), next_key, c2s.num if c2s.HasField("num") else None, lazy_end=lazy_end)
    except (SecurityLookupError, PagingError) as exc:
        return qot_get_short_interest_pb2.Response(retType=RET_FAILED, retMsg=str(exc), errCode=0)
    s2c = qot_get_short_interest_pb2.S2C(nextKey=keys.encode(code, page.next_key) if keys else page.next_key)
    for row in page.rows:
        _append_item(s2c, row)
    return qot_get_short_interest_pb2.Response(retType=RET_OK, retMsg="", errCode=0, s2c=s2c)


def _append_item(s2c: qot_get_short_interest_pb2.S2C, row: ShortInterestRow) -> None:
    day = row.trade_date.isoformat()
    if isinstance(row, HkShortInterestRow):
        s2c.hkItemList.add(
            timestamp=row.timestamp,
            timestampStr=day,
            closePrice=row.close_price,
            lastClosePrice=row.last_close_price,
            aggregatedShort=row.aggregated_short,
            aggregatedShortRatio=row.aggregated_short_ratio,
        )
    else:
        s2c.usItemList.add(
            timestamp=row.timestamp,
            timestampStr=day,
            sharesShort=row.shares_short,
            shortPercent=row.short_percent,
            avgDailyShareVolume=row.avg_daily_share_volume,
            daysToCover=row.days_to_cover,
            closePrice=row.close_price,
            lastClosePrice=row.last_close_price,
        )
