"""`OpenQuoteContext.get_short_interest`, as the vendor's API page documents it, over this project's client.

A script written against futu / moomoo runs unchanged with `from proto_client import OpenQuoteContext,
RET_OK, RET_ERROR`: the call returns `(RET_OK, us_df, hk_df)` or `(RET_ERROR, message, None)`, never raises,
and its frames equal futu-api 10.11's (tests/test_quote_context_differential.py runs both against one
gateway). The four listing calls come from proto_client.listing_calls. Where the official client sends a
request the gateway can only refuse (a malformed code, num outside 1..50) this one refuses it locally,
naming the bad value, and spends no request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import TracebackType

import pandas as pd

from proto_client.client import OpenDClient
from proto_client.errors import InvalidCodeError, OpenDError, RequestError
from proto_client.frames import market_frame, page_frames
from proto_client.listing_calls import RET_ERROR, RET_OK, ListingCalls
from proto_client.messages import MAX_PAGE_SIZE
from proto_client.records import ShortInterestRow
from proto_client.security import parse_code

DEFAULT_NUM = 10  # the API page's default page size

Result = tuple[int, pd.DataFrame, pd.DataFrame] | tuple[int, str, None]


class OpenQuoteContext(ListingCalls):
    """A quote context serving `get_short_interest` and the listing calls (proto_client.listing_calls); open it
    as a context manager or call `close()`.

    The connection opens on the first request. For a gateway configured with an RSA key, pass the same key
    file as `rsa_key_file` (futu-api's `is_encrypt=True` with `SysConfig.set_init_rsa_file`). `throttle`, if
    given, is called before every short-interest request (pipelines.access.live builds one from
    OPEND_RATE_LIMIT or the warehouse's shared limiter); `listing_throttles` (proto id -> callable) before
    each listing call's.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 11111,
        is_encrypt: bool | None = None,
        *,
        rsa_key_file: str | os.PathLike[str] | None = None,
        throttle: Callable[[], object] | None = None,
        connect_timeout: float = 5.0,
        reply_timeout: float = 15.0,
        listing_throttles: Mapping[int, Callable[[], object]] | None = None,
    ) -> None:
        if is_encrypt and rsa_key_file is None:
            raise ValueError("is_encrypt=True needs the gateway's RSA key: pass rsa_key_file=PATH")
        if is_encrypt is False and rsa_key_file is not None:
            raise ValueError(f"is_encrypt=False contradicts rsa_key_file={str(rsa_key_file)!r}")
        self._client = OpenDClient(
            host,
            port,
            connect_timeout=connect_timeout,
            reply_timeout=reply_timeout,
            throttle=throttle,
            rsa_key_file=rsa_key_file,
            listing_throttles=listing_throttles,
        )

    def __repr__(self) -> str:
        return f"OpenQuoteContext({self._client.endpoint})"

    def __enter__(self) -> OpenQuoteContext:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def client(self) -> OpenDClient:
        return self._client

    def close(self) -> None:
        self._client.close()

    def get_short_interest(self, code: str, next_key: str | None = None, num: int | None = None) -> Result:
        """One page of `code`'s short-interest history, newest first: `(RET_OK, us_df, hk_df)` with
        `attrs['next_key']` on both frames ("-1": no more pages), or `(RET_ERROR, message, None)`."""
        try:
            security = parse_code(code)
        except InvalidCodeError as exc:
            return RET_ERROR, str(exc), None
        if num is None:
            num = DEFAULT_NUM
        if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_PAGE_SIZE:
            return RET_ERROR, f"invalid num {num!r}: must be an integer from 1 to {MAX_PAGE_SIZE}", None
        if next_key is not None and not isinstance(next_key, str):
            return RET_ERROR, f"invalid next_key {next_key!r}: pass the next_key of the previous page", None
        try:
            page = self._client.get_short_interest_page(security, next_key or None, num)
        except RequestError as exc:
            return RET_ERROR, exc.ret_msg or str(exc), None
        except OpenDError as exc:
            return RET_ERROR, str(exc), None
        us_df, hk_df = page_frames(security.market, page.rows, page.next_key)
        return RET_OK, us_df, hk_df

    def get_short_interest_history(self, code: str) -> pd.DataFrame:
        """`code`'s whole history, newest first, in its market's columns, read 50 rows a request.

        Raises InvalidCodeError for a malformed code and the client's OpenDError subclasses for a failed
        request, since there is no partial result worth returning. Stays within the rate limit only as far as
        the context's throttle does.
        """
        security = parse_code(code)
        rows: list[ShortInterestRow] = []
        for page in self._client.iter_short_interest(security, num=MAX_PAGE_SIZE):
            rows.extend(page.rows)
        frame = market_frame(security.market, rows)
        frame.attrs["code"] = security.code
        return frame
