from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import PACKAGED_WATCHLIST, AlertSettings, ConfigError, Gateway, RateLimit, Settings


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


def test_several_gateways_replace_host_and_port() -> None:
    s = Settings.from_env(
        {
            "OPEND_HOST": "ignored",
            "OPEND_GATEWAYS": " 10.0.0.5:11111, opend-b:22222@20/30 ,[::1]:33333",
            "OPEND_RATE_LIMIT": "6/3",
        }
    )
    assert s.all_gateways == (
        Gateway("10.0.0.5", 11111, RateLimit(6, 3.0)),
        Gateway("opend-b", 22222, RateLimit(20, 30.0)),
        Gateway("::1", 33333, RateLimit(6, 3.0)),
    )
    assert [g.bucket for g in s.all_gateways][:2] == [
        "opend:10.0.0.5:11111:Qot_GetShortInterest",
        "opend:opend-b:22222:Qot_GetShortInterest",
    ]


def test_one_gateway_without_the_list() -> None:
    s = Settings.from_env({"OPEND_HOST": "10.0.0.5", "OPEND_PORT": "22222", "OPEND_GATEWAYS": " "})
    assert s.all_gateways == (Gateway("10.0.0.5", 22222, RateLimit(30, 30.0)),)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("opend-a", "'opend-a' is not HOST:PORT"),
        ("opend-a:11111,,opend-b:11111", "'' is not HOST:PORT"),
        ("opend-a:port", "'opend-a:port' is not HOST:PORT"),
        ("opend-a:1111²", "'opend-a:1111²' is not HOST:PORT"),
        ("opend-a:0", "'opend-a:0' has port 0"),
        ("opend-a:11111@fast", "OPEND_GATEWAYS entry opend-a:11111='fast'"),
        ("opend-a:11111,opend-a:11111@5/5", "opend-a:11111 is listed twice"),
    ],
)
def test_bad_gateway_lists_name_the_entry(value: str, named: str) -> None:
    with pytest.raises(ConfigError, match="OPEND_GATEWAYS") as raised:
        Settings.from_env({"OPEND_GATEWAYS": value})
    assert named in str(raised.value)


def test_alert_settings_are_off_by_default_and_refuse_half_configured_mail() -> None:
    assert not AlertSettings.from_env({}).enabled
    settings = AlertSettings.from_env(
        {
            "SHORTINTEREST_ALERT_EMAIL_TO": "a@example.com, b@example.com",
            "SHORTINTEREST_SMTP_HOST": "smtp.example.com",
            "SHORTINTEREST_SMTP_PASSWORD": "hunter2",
            "SHORTINTEREST_UI_URL": "http://ui:3000/",
        }
    )
    assert settings.enabled and settings.email_to == ("a@example.com", "b@example.com")
    assert (settings.smtp_port, settings.ui_url, settings.secrets) == (587, "http://ui:3000", ("hunter2",))
    assert "hunter2" not in repr(settings)
    with pytest.raises(ConfigError, match="SHORTINTEREST_SMTP_HOST is not"):
        AlertSettings.from_env({"SHORTINTEREST_ALERT_EMAIL_TO": "a@example.com"})
    with pytest.raises(ConfigError, match="SHORTINTEREST_ALERT_WEBHOOK_URL") as refused:
        AlertSettings.from_env({"SHORTINTEREST_ALERT_WEBHOOK_URL": "hooks.example.com/secret-token"})
    assert "secret-token" not in str(refused.value)
