"""The listing calls: watchlist groups (3222), a group's securities (3213), a plate's (3205), static info (3202).

Pure conversion, bytes in and typed records out, as proto_client.messages does for the short-interest call.
A record keeps every field the vendor's DataFrames show, so proto_client.static_frames builds them exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proto_client.messages import _parse
from proto_client.pb import (
    qot_common_pb2,
    qot_get_plate_security_pb2,
    qot_get_static_info_pb2,
    qot_get_user_security_group_pb2,
    qot_get_user_security_pb2,
)

PROTO_GET_STATIC_INFO = 3202
PROTO_GET_PLATE_SECURITY = 3205
PROTO_GET_USER_SECURITY = 3213
PROTO_GET_USER_SECURITY_GROUP = 3222
LISTING_PROTOS = {
    PROTO_GET_STATIC_INFO: "Qot_GetStaticInfo",
    PROTO_GET_PLATE_SECURITY: "Qot_GetPlateSecurity",
    PROTO_GET_USER_SECURITY: "Qot_GetUserSecurity",
    PROTO_GET_USER_SECURITY_GROUP: "Qot_GetUserSecurityGroup",
}

# QotMarket <-> the code prefix the official client writes ("SH.600519", not "CNSH").
MARKET_PREFIXES = {
    0: "N/A", 1: "HK", 2: "HK_FUTURE", 11: "US", 21: "SH", 22: "SZ", 31: "SG", 41: "JP",
    51: "AU", 61: "MY", 71: "CA", 81: "FX", 91: "CC", 101: "EC",
}  # fmt: skip
QOT_MARKETS = {prefix: number for number, prefix in MARKET_PREFIXES.items()}
SECURITY_TYPES = {
    0: "N/A", 1: "BOND", 2: "BWRT", 3: "STOCK", 4: "ETF", 5: "WARRANT", 6: "IDX", 7: "PLATE", 8: "DRVT",
    9: "PLATESET", 10: "FUTURE", 11: "FOREX", 12: "CRYPTO",
}  # fmt: skip
SECURITY_TYPE_NUMBERS = {name: number for number, name in SECURITY_TYPES.items()}
GROUP_TYPES = {0: "N/A", 1: "CUSTOM", 2: "SYSTEM", 3: "ALL"}
GROUP_TYPE_NUMBERS = {name: number for number, name in GROUP_TYPES.items()}
WARRANT_TYPES = {0: "N/A", 1: "CALL", 2: "PUT", 3: "BULL", 4: "BEAR", 5: "INLINE"}
OPTION_TYPES = {0: "ALL", 1: "CALL", 2: "PUT"}
INDEX_OPTION_TYPES = {0: "N/A", 1: "NORMAL", 2: "SMALL"}
EXCHANGE_TYPES = {
    0: "N/A", 1: "HK_MAINBOARD", 2: "HK_GEMBOARD", 3: "HK_HKEX", 4: "US_NYSE", 5: "US_NASDAQ", 6: "US_PINK",
    7: "US_AMEX", 8: "US_OPTION", 9: "US_NYMEX", 10: "US_COMEX", 11: "US_CBOT", 12: "US_CME", 13: "US_CBOE",
    14: "CN_SH", 15: "CN_SZ", 16: "CN_STIB", 17: "SG_SGX", 18: "JP_OSE", 19: "CC_CRYPTO", 20: "MY_MYX",
    21: "JP_TSE", 22: "JP_NIKKEI",
}  # fmt: skip


def code_of(market: int, symbol: str) -> str:
    """`HK.00700` for (1, "00700"), as the official client merges market and symbol."""
    return f"{MARKET_PREFIXES.get(market, 'N/A')}.{symbol}"


@dataclass(frozen=True, slots=True)
class OptionData:
    type: int
    owner: str
    strike_time: str
    strike_price: float
    suspend: bool
    index_option_type: int


@dataclass(frozen=True, slots=True)
class StaticInfo:
    """One security's static information (Qot_Common.SecurityStaticInfo); absent optional fields are None."""

    code: str
    stock_id: int
    name: str
    lot_size: int
    sec_type: int | None
    list_time: str
    delisting: bool | None
    exch_type: int | None
    warrant_type: int | None = None  # set only with warrant data
    warrant_owner: str | None = None
    option: OptionData | None = None
    future_main_contract: bool = False
    future_last_trade_time: str = ""

    @property
    def market(self) -> str:
        return self.code.partition(".")[0]

    @property
    def type_name(self) -> str:
        """STOCK, ETF, WARRANT, ...: SecurityType as the official client names it."""
        return SECURITY_TYPES.get(self.sec_type, "N/A") if self.sec_type is not None else "N/A"


@dataclass(frozen=True, slots=True)
class WatchlistGroup:
    name: str
    group_type: int | None  # GroupType; None when the gateway left it out

    @property
    def type_name(self) -> str:
        return GROUP_TYPES.get(self.group_type, "N/A") if self.group_type is not None else "N/A"


def _record(info: qot_common_pb2.SecurityStaticInfo) -> StaticInfo:
    basic = info.basic
    option = None
    if info.HasField("optionExData"):
        ex = info.optionExData
        option = OptionData(
            ex.type, code_of(ex.owner.market, ex.owner.code), ex.strikeTime, ex.strikePrice, ex.suspend,
            ex.indexOptionType,
        )  # fmt: skip
    warrant = info.warrantExData if info.HasField("warrantExData") else None
    return StaticInfo(
        code=code_of(basic.security.market, basic.security.code),
        stock_id=basic.id,
        name=basic.name,
        lot_size=basic.lotSize,
        sec_type=basic.secType if basic.HasField("secType") else None,
        list_time=basic.listTime,
        delisting=basic.delisting if basic.HasField("delisting") else None,
        exch_type=basic.exchType if basic.HasField("exchType") else None,
        warrant_type=warrant.type if warrant is not None and warrant.HasField("type") else None,
        warrant_owner=code_of(warrant.owner.market, warrant.owner.code) if warrant is not None else None,
        option=option,
        future_main_contract=info.futureExData.isMainContract,
        future_last_trade_time=info.futureExData.lastTradeTime,
    )


def _records(infos: Iterable[qot_common_pb2.SecurityStaticInfo]) -> list[StaticInfo]:
    return [_record(info) for info in infos]


def user_security_group_request(group_type: int) -> bytes:
    request = qot_get_user_security_group_pb2.Request()
    request.c2s.groupType = group_type
    body: bytes = request.SerializeToString()
    return body


def parse_user_security_group_reply(body: bytes) -> list[WatchlistGroup]:
    s2c = _parse(PROTO_GET_USER_SECURITY_GROUP, body, qot_get_user_security_group_pb2.Response).s2c
    return [
        WatchlistGroup(item.groupName, item.groupType if item.HasField("groupType") else None) for item in s2c.groupList
    ]


def user_security_request(group_name: str) -> bytes:
    request = qot_get_user_security_pb2.Request()
    request.c2s.groupName = group_name
    body: bytes = request.SerializeToString()
    return body


def parse_user_security_reply(body: bytes) -> list[StaticInfo]:
    return _records(_parse(PROTO_GET_USER_SECURITY, body, qot_get_user_security_pb2.Response).s2c.staticInfoList)


def plate_security_request(market: int, plate: str, sort_field: int, ascend: bool) -> bytes:
    request = qot_get_plate_security_pb2.Request()
    request.c2s.plate.market = market
    request.c2s.plate.code = plate
    request.c2s.sortField = sort_field
    request.c2s.ascend = ascend
    body: bytes = request.SerializeToString()
    return body


def parse_plate_security_reply(body: bytes) -> list[StaticInfo]:
    return _records(_parse(PROTO_GET_PLATE_SECURITY, body, qot_get_plate_security_pb2.Response).s2c.staticInfoList)


def static_info_request(market: int, sec_type: int, securities: Sequence[tuple[int, str]] = ()) -> bytes:
    """A whole market's securities of one type, or (when `securities` is given) those securities only."""
    request = qot_get_static_info_pb2.Request()
    c2s = request.c2s
    if securities:
        c2s.market, c2s.secType = 0, 0
        for number, symbol in securities:
            c2s.securityList.add(market=number, code=symbol)
    else:
        c2s.market, c2s.secType = market, sec_type
    body: bytes = request.SerializeToString()
    return body


def parse_static_info_reply(body: bytes) -> list[StaticInfo]:
    return _records(_parse(PROTO_GET_STATIC_INFO, body, qot_get_static_info_pb2.Response).s2c.staticInfoList)
