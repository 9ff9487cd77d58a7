"""The project's own client for the Futu/moomoo OpenD gateway, and a simulated gateway for tests and demos.

`OpenQuoteContext`, `RET_OK` and `RET_ERROR` (the vendor-compatible call, built on pandas) load on first use,
so the gateway and the loaders do not pay pandas' import time.
"""

from typing import TYPE_CHECKING, Any

from proto_client.client import OpenDClient
from proto_client.encryption import KeyFileError
from proto_client.errors import (
    EncryptionError,
    GatewayConnectionError,
    InvalidCodeError,
    OpenDError,
    PagingLoopError,
    ProtocolError,
    QuoteLoginError,
    ReplyTimeoutError,
    RequestError,
)
from proto_client.messages import GlobalState
from proto_client.page_walk import PageWalk
from proto_client.records import (
    END_OF_DATA,
    HkShortInterestRow,
    Page,
    ShortInterestRow,
    UsShortInterestRow,
    trade_date_of,
)
from proto_client.security import Market, Security, parse_code

if TYPE_CHECKING:
    from proto_client.quote_context import RET_ERROR, RET_OK, OpenQuoteContext

_QUOTE_CONTEXT_NAMES = frozenset({"OpenQuoteContext", "RET_OK", "RET_ERROR"})


def __getattr__(name: str) -> Any:
    if name in _QUOTE_CONTEXT_NAMES:
        from proto_client import quote_context

        return getattr(quote_context, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "END_OF_DATA",
    "RET_ERROR",
    "RET_OK",
    "EncryptionError",
    "GatewayConnectionError",
    "GlobalState",
    "HkShortInterestRow",
    "InvalidCodeError",
    "KeyFileError",
    "Market",
    "OpenDClient",
    "OpenDError",
    "OpenQuoteContext",
    "Page",
    "PageWalk",
    "PagingLoopError",
    "ProtocolError",
    "QuoteLoginError",
    "ReplyTimeoutError",
    "RequestError",
    "Security",
    "ShortInterestRow",
    "UsShortInterestRow",
    "parse_code",
    "trade_date_of",
]
