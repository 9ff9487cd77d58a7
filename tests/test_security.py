"""parse_code: the one gate every code passes before it reaches the wire or the warehouse."""

from __future__ import annotations

import pytest

from proto_client.errors import InvalidCodeError
from proto_client.security import HK_CODE_RULE, Market, Security, parse_code


@pytest.mark.parametrize(
    ("code", "market", "symbol"),
    [
        ("US.AAPL", Market.US, "AAPL"),
        ("US.BRK.B", Market.US, "BRK.B"),
        ("US.SPY", Market.US, "SPY"),
        ("HK.00700", Market.HK, "00700"),
        ("HK.02800", Market.HK, "02800"),
    ],
)
def test_accepts_supported_codes(code: str, market: Market, symbol: str) -> None:
    security = parse_code(code)
    assert security == Security(market, symbol)
    assert security.code == code
    assert str(security) == code


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("AAPL", "no market prefix"),
        (".AAPL", "no market prefix"),
        ("US.", "no symbol"),
        ("SH.600000", "not supported"),
        ("SZ.000001", "not supported"),
        ("XX.1", "unknown market"),
        ("HK.700", f"{HK_CODE_RULE}: write HK.00700"),
        ("HK.007000", HK_CODE_RULE),
        ("HK.0070A", HK_CODE_RULE),
        (" US.AAPL", "whitespace"),
        ("US.AAPL ", "whitespace"),
        ("US.AA PL", "whitespace"),
        ("US.AAPL\n", "whitespace"),
        ("US.AAPL;DROP", "upper-case ticker"),
        ("US.aapl", "upper-case ticker"),
        ("us.AAPL", "must be upper case"),
        ("hk.00700", "must be upper case"),
        ("sh.600000", "must be upper case"),
        ("HK.\u0660\u0660700", "non-ASCII"),
        ("HK.00700\x00", "control"),
        ("", "no market prefix"),
    ],
)
def test_rejects_with_a_message_naming_the_code(code: str, reason: str) -> None:
    with pytest.raises(InvalidCodeError) as info:
        parse_code(code)
    assert repr(code) in str(info.value)
    assert reason in str(info.value)
    assert info.value.code == code


@pytest.mark.parametrize("code", [None, 700, b"US.AAPL", ["US.AAPL"], Security(Market.US, "AAPL")])
def test_rejects_non_strings(code: object) -> None:
    with pytest.raises(InvalidCodeError, match="expected a string") as info:
        parse_code(code)
    assert info.value.code is code


def test_invalid_code_error_is_a_value_error() -> None:
    """Callers validating user input catch ValueError; the code must not escape that net."""
    with pytest.raises(ValueError):
        parse_code("AAPL")


def test_market_wire_values_and_time_zones() -> None:
    assert Market.from_qot_market(1) is Market.HK
    assert Market.from_qot_market(11) is Market.US
    assert Market.HK.tz.key == "Asia/Hong_Kong"
    assert Market.US.tz.key == "America/New_York"
    with pytest.raises(ValueError, match="21"):
        Market.from_qot_market(21)
