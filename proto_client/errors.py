"""Errors raised by the OpenD client.

Callers decide between retrying and giving up by type, so every failure the client can meet maps to
exactly one of these classes: never a bare Exception, never a silent hang.
"""

from __future__ import annotations

import re

# The gateway has no dedicated code for "too many requests": it answers retType -1 with a message.
# Real OpenD wording varies by version and language ("请求频率太高", "request too frequent", ...).
_RATE_LIMIT_PATTERN = re.compile(r"frequen|too many|rate limit|频率|频繁", re.IGNORECASE)
# OpenD refuses quote requests while it is not logged in to the quote server ("行情未登录", ...).
_QUOTE_LOGIN_PATTERN = re.compile(r"not logged in|not login|未登录|未登陆", re.IGNORECASE)
_UNKNOWN_SECURITY_PATTERN = re.compile(
    r"unknown (stock|security|code)|not found|unsupported market|does not support|未知|不支持|找不到",
    re.IGNORECASE,
)


class OpenDError(Exception):
    """Base class of everything the OpenD client raises."""


class GatewayConnectionError(OpenDError):
    """The TCP connection could not be opened, was closed, or a reply did not arrive in time."""


class InitConnectRefusedError(GatewayConnectionError):
    """The gateway answered InitConnect with retType != 0 (a client version it does not accept, say).

    A connection error because no session exists: the gateway is unusable to this client, as if down,
    so a load over several leaves it out and one over a single gateway stops at start with its words.
    """

    def __init__(self, endpoint: object, ret_type: int, ret_msg: str, err_code: int = 0) -> None:
        self.ret_type = ret_type
        self.ret_msg = ret_msg
        self.err_code = err_code
        super().__init__(
            f"gateway at {endpoint} refused InitConnect: {ret_msg or '(no message)'} "
            f"(retType={ret_type}, errCode={err_code})"
        )


class ReplyTimeoutError(GatewayConnectionError):
    """No reply arrived within the client's timeout; the connection is dropped and may be retried."""


class EncryptionError(GatewayConnectionError):
    """InitConnect failed in a way that points at the link's encryption settings (OPEND_RSA_KEY_FILE).

    Not worth retrying: a key missing, extra or different on one side stays so until someone fixes it.
    """


class QuoteLoginError(OpenDError):
    """The gateway is up but not logged in to the quote server, so every quote request would be refused."""


class ProtocolError(OpenDError):
    """The peer sent bytes that are not a valid OpenD frame (bad magic, SHA-1, length, or body)."""


class PagingLoopError(ProtocolError):
    """The gateway handed back a page key already seen in this walk, or a page not older than the one before."""


class RequestError(OpenDError):
    """The gateway answered with retType != 0."""

    def __init__(self, proto_id: int, ret_type: int, ret_msg: str, err_code: int = 0) -> None:
        self.proto_id = proto_id
        self.ret_type = ret_type
        self.ret_msg = ret_msg
        self.err_code = err_code
        super().__init__(f"OpenD request {proto_id} failed: retType={ret_type} errCode={err_code} {ret_msg!r}")

    @property
    def is_rate_limited(self) -> bool:
        return self.ret_type == -1 and bool(_RATE_LIMIT_PATTERN.search(self.ret_msg))

    @property
    def is_unknown_security(self) -> bool:
        return self.ret_type == -1 and bool(_UNKNOWN_SECURITY_PATTERN.search(self.ret_msg))

    @property
    def is_quote_login_down(self) -> bool:
        return self.ret_type == -1 and bool(_QUOTE_LOGIN_PATTERN.search(self.ret_msg))

    @property
    def is_transient(self) -> bool:
        """Worth retrying: frequency rejections and gateway-side timeouts/disconnects."""
        return self.is_rate_limited or self.ret_type in (-100, -200)


class InvalidCodeError(ValueError):
    """A security code that is not `US.<symbol>` or `HK.<5 digits>` (inputs pad 1 to 5 digits to five); the
    message names the code."""

    def __init__(self, code: object, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"invalid security code {code!r}: {reason}")
