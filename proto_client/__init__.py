"""The project's own client for the Futu/moomoo OpenD gateway, and a simulated gateway for tests and demos."""

from proto_client.client import OpenDClient, next_key_after
from proto_client.errors import (
    GatewayConnectionError,
    InvalidCodeError,
    OpenDError,
    ProtocolError,
    ReplyTimeoutError,
    RequestError,
)
from proto_client.messages import GlobalState
from proto_client.records import (
    END_OF_DATA,
    HkShortInterestRow,
    Page,
    ShortInterestRow,
    UsShortInterestRow,
    trade_date_of,
)
from proto_client.security import Market, Security, parse_code

__all__ = [
    "END_OF_DATA",
    "GatewayConnectionError",
    "GlobalState",
    "HkShortInterestRow",
    "InvalidCodeError",
    "Market",
    "OpenDClient",
    "OpenDError",
    "Page",
    "ProtocolError",
    "ReplyTimeoutError",
    "RequestError",
    "Security",
    "ShortInterestRow",
    "UsShortInterestRow",
    "next_key_after",
    "parse_code",
    "trade_date_of",
]
