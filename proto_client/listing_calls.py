"""`OpenQuoteContext`'s four listing calls with the vendor's signatures, return shapes and DataFrames.

`get_user_security_group`, `get_user_security`, `get_plate_stock` and `get_stock_basicinfo` return
`(RET_OK, DataFrame)` or `(RET_ERROR, message)` and never raise, as futu-api 10.11's do (tests/
test_listing_differential.py runs both against one gateway). Arguments the official client refuses locally
are refused here too, naming the bad value, without a request.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from proto_client.client import OpenDClient
from proto_client.errors import OpenDError, RequestError
from proto_client.static_frames import basic_info_frame, groups_frame, plate_frame, user_security_frame
from proto_client.static_info import GROUP_TYPE_NUMBERS, QOT_MARKETS, SECURITY_TYPE_NUMBERS

RET_OK = 0
RET_ERROR = -1
# SortField values the gateway sorts a plate by; the official client knows more, this one the common ones.
SORT_FIELDS = {"N/A": 0, "CODE": 1, "CUR_PRICE": 2, "CHANGE_RATE": 4, "VOLUME": 10, "TURNOVER": 11, "LIST_TIME": 21}

ListingResult = tuple[int, pd.DataFrame] | tuple[int, str]


def split_code(code: object) -> tuple[int, str] | None:
    """(QotMarket, symbol) of `HK.00700` or `HK.HSI Constituent` as the official client splits codes; None
    when there is no known market prefix or nothing after it."""
    text = str(code)
    prefix, dot, symbol = text.partition(".")
    if not dot or not symbol or prefix not in QOT_MARKETS:
        return None
    return QOT_MARKETS[prefix], symbol


def _bad_code(code: object) -> str:
    return f"format of code {code} is wrong. (US.AAPL, HK.00700, SZ.000001)"


class ListingCalls:
    """The listing calls over `self._client`; mixed into OpenQuoteContext."""

    _client: OpenDClient

    def _ask(self, call: Callable[[], pd.DataFrame]) -> ListingResult:
        try:
            return RET_OK, call()
        except RequestError as exc:
            return RET_ERROR, exc.ret_msg or str(exc)
        except OpenDError as exc:
            return RET_ERROR, str(exc)

    def get_user_security_group(self, group_type: str = "ALL") -> ListingResult:
        """The account's watchlist groups: columns group_name, group_type (CUSTOM / SYSTEM)."""
        number = GROUP_TYPE_NUMBERS.get(group_type) if isinstance(group_type, str) else None
        if number is None:
            return RET_ERROR, f"invalid group_type {group_type!r}: one of {', '.join(GROUP_TYPE_NUMBERS)}"
        return self._ask(lambda: groups_frame(self._client.get_watchlist_groups(number)))

    def get_user_security(self, group_name: str) -> ListingResult:
        """The securities of the watchlist group `group_name`."""
        if not isinstance(group_name, str):
            return RET_ERROR, "group_name need str"
        return self._ask(lambda: user_security_frame(self._client.get_watchlist(group_name)))

    def get_plate_stock(self, plate_code: str, sort_field: str = "CODE", ascend: bool = True) -> ListingResult:
        """A plate's securities, or an index's constituents ("HK.HSI Constituent")."""
        if not isinstance(plate_code, str):
            return RET_ERROR, f"invalid plate_code {plate_code!r}: a string such as HK.BK1001"
        sort = SORT_FIELDS.get(sort_field) if isinstance(sort_field, str) else None
        if sort is None:
            return RET_ERROR, f"invalid sort_field {sort_field!r}: one of {', '.join(SORT_FIELDS)}"
        plate = split_code(plate_code)
        if plate is None:
            return RET_ERROR, _bad_code(plate_code)
        market, symbol = plate
        return self._ask(lambda: plate_frame(self._client.get_plate_securities(market, symbol, sort, bool(ascend))))

    def get_stock_basicinfo(
        self, market: str, stock_type: str = "STOCK", code_list: list[str] | str | None = None
    ) -> ListingResult:
        """Static information of a market's securities of one type, or of `code_list` (market then ignored)."""
        if code_list is None:
            if not isinstance(market, str) or market not in QOT_MARKETS or market == "N/A":
                return RET_ERROR, f"invalid market {market!r}: one of {', '.join(list(QOT_MARKETS)[1:])}"
            sec_type = SECURITY_TYPE_NUMBERS.get(stock_type) if isinstance(stock_type, str) else None
            if sec_type is None:
                return RET_ERROR, f"invalid stock_type {stock_type!r}: one of {', '.join(SECURITY_TYPE_NUMBERS)}"
            number = QOT_MARKETS[market]
            return self._ask(lambda: basic_info_frame(self._client.get_static_info(number, sec_type)))
        if isinstance(code_list, str):
            code_list = code_list.split(",")
        if not isinstance(code_list, list):
            return RET_ERROR, "code list must be like ['HK.00001', 'HK.00700'] or 'HK.00001,HK.00700'"
        securities = []
        for code in dict.fromkeys(code_list):
            security = split_code(code)
            if security is None:
                return RET_ERROR, _bad_code(code)
            securities.append(security)
        if not securities:
            return RET_ERROR, "code_list is empty: pass codes, or None for the whole market"
        return self._ask(lambda: basic_info_frame(self._client.get_static_info(0, 0, securities)))
