from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import PACKAGED_WATCHLIST, ConfigError, RateLimit, Settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.opend_host, s.opend_port) == ("127.0.0.1", 11111)
    assert s.rate_limit == RateLimit(30, 30.0)
    assert s.database_url.startswith("sqlite:///")
    assert s.watchlist_path == PACKAGED_WATCHLIST
    assert s.reply_timeout == 15.0
    assert s.rsa_key_file is None


def test_values_from_environment() -> None:
    s = Settings.from_env(
        {
            "OPEND_HOST": "10.0.0.5",
            "OPEND_PORT": "22222",
            "OPEND_RATE_LIMIT": " 6 / 3 ",
            "SHORTINTEREST_DATABASE_URL": "postgresql://u@h/db",
            "SHORTINTEREST_WATCHLIST": "/etc/si/watch.yaml",
            "OPEND_REPLY_TIMEOUT": "2.5",
            "OPEND_RSA_KEY_FILE": "/etc/si/opend_rsa.pem",
        }
    )
    assert s.reply_timeout == 2.5
    assert s.rsa_key_file == Path("/etc/si/opend_rsa.pem")
    assert (s.opend_host, s.opend_port, s.rate_limit) == ("10.0.0.5", 22222, RateLimit(6, 3.0))
    assert s.database_url == "postgresql://u@h/db"
    assert s.watchlist_path == Path("/etc/si/watch.yaml")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPEND_PORT", "eleven"),
        ("OPEND_PORT", "70000"),
        ("OPEND_RATE_LIMIT", "30"),
        ("OPEND_RATE_LIMIT", "0/30"),
        ("OPEND_RATE_LIMIT", "30/0"),
        ("OPEND_RATE_LIMIT", "thirty/30"),
        ("OPEND_REPLY_TIMEOUT", "soon"),
        ("OPEND_REPLY_TIMEOUT", "0"),
        ("OPEND_REPLY_TIMEOUT", "inf"),
    ],
)
def test_bad_values_are_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert name in str(info.value) and repr(value) in str(info.value)
