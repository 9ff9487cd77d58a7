"""Replies to the four listing protos (3222 groups, 3213 a group's securities, 3205 a plate's, 3202 static info)."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import Message

from proto_client.pb import (
    qot_common_pb2,
    qot_get_plate_security_pb2,
    qot_get_static_info_pb2,
    qot_get_user_security_group_pb2,
    qot_get_user_security_pb2,
)
from proto_client.simulator.listings import Listing, ListingBook, ListingError
from proto_client.static_info import (
    MARKET_PREFIXES,
    PROTO_GET_PLATE_SECURITY,
    PROTO_GET_STATIC_INFO,
    PROTO_GET_USER_SECURITY,
    PROTO_GET_USER_SECURITY_GROUP,
    code_of,
)

REQUEST_TYPES: dict[int, type[Message]] = {
    PROTO_GET_STATIC_INFO: qot_get_static_info_pb2.Request,
    PROTO_GET_PLATE_SECURITY: qot_get_plate_security_pb2.Request,
    PROTO_GET_USER_SECURITY: qot_get_user_security_pb2.Request,
    PROTO_GET_USER_SECURITY_GROUP: qot_get_user_security_group_pb2.Request,
}
_GROUP_ALL = 3
_QOT_MARKETS = {prefix: number for number, prefix in MARKET_PREFIXES.items()}


def _code(security: qot_common_pb2.Security) -> str:
    return code_of(security.market, security.code)


def _market_number(code: str) -> tuple[int, str]:
    prefix, _, symbol = code.partition(".")
    return _QOT_MARKETS.get(prefix, 0), symbol


def _fill(info: qot_common_pb2.SecurityStaticInfo, listing: Listing) -> None:
    basic = info.basic
    basic.security.market, basic.security.code = _market_number(listing.code)
    basic.id = listing.stock_id
    basic.lotSize = listing.lot_size
    basic.secType = listing.sec_type
    basic.name = listing.name
    basic.listTime = listing.listed.isoformat()
    basic.delisting = listing.delisted
    if listing.exch_type:
        basic.exchType = listing.exch_type
    if listing.owner is not None:
        info.warrantExData.type = listing.warrant_type
        info.warrantExData.owner.market, info.warrantExData.owner.code = _market_number(listing.owner)


def _static_list(s2c: Message, listings: Iterable[Listing]) -> None:
    for listing in listings:
        _fill(s2c.staticInfoList.add(), listing)  # type: ignore[attr-defined]


def answer(proto_id: int, request: Message, book: ListingBook) -> Message:
    """The reply to one listing request; a group, plate or code the book does not list is a failed reply."""
    response_type = {
        PROTO_GET_STATIC_INFO: qot_get_static_info_pb2.Response,
        PROTO_GET_PLATE_SECURITY: qot_get_plate_security_pb2.Response,
        PROTO_GET_USER_SECURITY: qot_get_user_security_pb2.Response,
        PROTO_GET_USER_SECURITY_GROUP: qot_get_user_security_group_pb2.Response,
    }[proto_id]
    response = response_type(retType=0, retMsg="", errCode=0)
    c2s = request.c2s  # type: ignore[attr-defined]
    try:
        if proto_id == PROTO_GET_USER_SECURITY_GROUP:
            s2c = response.s2c  # type: ignore[attr-defined]
            for name, group_type, _ in book.groups():
                if c2s.groupType in (_GROUP_ALL, group_type):
                    s2c.groupList.add(groupName=name, groupType=group_type)
        elif proto_id == PROTO_GET_USER_SECURITY:
            _static_list(response.s2c, book.group(c2s.groupName))  # type: ignore[attr-defined]
        elif proto_id == PROTO_GET_PLATE_SECURITY:
            listings = book.plate(_code(c2s.plate))
            if c2s.HasField("ascend") and not c2s.ascend:
                listings.reverse()
            _static_list(response.s2c, listings)  # type: ignore[attr-defined]
        elif c2s.securityList:
            _static_list(response.s2c, book.lookup(_code(s) for s in c2s.securityList))  # type: ignore[attr-defined]
        else:
            _static_list(response.s2c, book.market(c2s.market, c2s.secType))  # type: ignore[attr-defined]
    except ListingError as exc:
        return response_type(retType=-1, retMsg=str(exc), errCode=0)
    response.s2c.SetInParent()  # type: ignore[attr-defined]
    return response
