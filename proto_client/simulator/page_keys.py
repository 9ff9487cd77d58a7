"""Opaque page keys (`--opaque-keys`): nextKey tokens a client cannot read, as other gateways hand out.

The API documents nextKey only as a page marker. With this knob a key is base64 of the code, the
timestamp bound and a MAC under a secret drawn at start-up: a client that parses keys fails, a client
that alters one is refused, and keys stored before a gateway restart are refused like keys from
before an upgrade.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from proto_client.records import END_OF_DATA
from proto_client.simulator.paging import PagingError

_MAC_LEN = 6


class OpaqueKeys:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(16)

    def _mac(self, code: str, bound: str) -> bytes:
        return hmac.new(self._secret, f"{code}|{bound}".encode(), hashlib.sha256).digest()[:_MAC_LEN]

    def encode(self, code: str, key: str) -> str:
        """The opaque token for the plain timestamp key `key` of `code`; "-1" stays "-1"."""
        if key == END_OF_DATA:
            return key
        return base64.b64encode(f"{code}|{key}|".encode() + self._mac(code, key)).decode("ascii")

    def decode(self, code: str, token: str) -> str:
        """The plain timestamp key behind `token`; PagingError for a token this gateway did not hand out."""
        if token == END_OF_DATA:
            return token
        refused = PagingError(f"invalid nextKey {token!r}: pass the nextKey returned by the previous page")
        try:
            raw = base64.b64decode(token.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise refused from None
        text, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
        try:
            key_code, bound, rest = text.decode("ascii").split("|")
        except (UnicodeDecodeError, ValueError):
            raise refused from None
        if rest or key_code != code or not hmac.compare_digest(mac, self._mac(code, bound)):
            raise refused
        return bound
