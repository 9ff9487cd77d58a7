"""Watchlist sources (futu_groups, plates, markets, exclude): validated at load, resolved against a real gateway."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.config import RateLimit, Settings
from pipelines.crawl.rate_limiter import reservations
from pipelines.crawl.watchlist import WatchlistError, parse_watchlist_text
from pipelines.universe.errors import GatewayResolutionError, ShrinkRefusedError, UnknownGroupError, UnknownPlateError
from pipelines.universe.gateway import resolve_watchlist
from pipelines.universe.resolve import check_shrink
from proto_client.security import Market
from proto_client.simulator.listings import ListingBook
from tests.conftest import migrated_engine
from tests.support.crawl import read_stats
from tests.support.gateway import GatewayProcess

ALL_KINDS = """
codes: [HK.00700, US.AAPL]
futu_groups: [Shorts]
plates: ["HK.HSI Constituent"]
markets: [US]
exclude: [HK.09988, US.XAAB]
"""


def test_all_four_kinds_parse() -> None:
    wl = parse_watchlist_text(ALL_KINDS)
    assert wl.codes == ("HK.00700", "US.AAPL")
    assert wl.sources.futu_groups == ("Shorts",) and wl.sources.plates == ("HK.HSI Constituent",)
    assert wl.sources.markets == ("US",) and wl.sources.exclude == ("HK.09988", "US.XAAB")
    assert parse_watchlist_text("markets: [HK]\n").codes == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("markets: [JP]\n", "markets entry 1 'JP': unknown market; only HK and US are served"),
        ("plates: [HSI Constituent]\n", "plates entry 1 'HSI Constituent': no market prefix"),
        ("plates: [XX.BK1]\n", "plates entry 1 'XX.BK1': unknown market 'XX'"),
        ("futu_groups: [Shorts, 7]\n", "futu_groups entry 2 7: expected a non-empty string"),
        ("futu_groups: Shorts\n", "`futu_groups:` must be a list, found a str"),
        ("markets: [HK]\nexclude: [HK.ABC]\n", "exclude entry 1 'HK.ABC'"),
        ("markets: [HK]\nfutu_group: [Shorts]\n", "unknown key 'futu_group'"),
    ],
)
def test_malformed_sources_are_refused_naming_the_entry(text: str, fragment: str) -> None:
    with pytest.raises(WatchlistError) as info:
        parse_watchlist_text(text, "w.yaml")
    assert fragment in str(info.value)


def _resolve(gw: GatewayProcess, text: str, tmp_path: Path) -> tuple[object, sa.Engine]:
    settings = Settings(opend_host=gw.host, opend_port=gw.port)
    with migrated_engine(f"sqlite:///{tmp_path / 'w.db'}") as engine:
        return resolve_watchlist(settings, engine, parse_watchlist_text(text)), engine


def test_resolution_is_the_union_minus_exclude_with_only_served_securities(
    gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    gw = gateway_factory("--market-size", "300", "--listing-rate", "off")
    resolution, _ = _resolve(gw, ALL_KINDS, tmp_path)
    book = ListingBook(market_size=300)
    us = {x.code for x in book.market(Market.US.qot_market, 3) + book.market(Market.US.qot_market, 4)}
    hsi = {x.code for x in book.plate("HK.HSI Constituent")}
    shorts = {"HK.00700", "US.TSLA", next(x.code for x in book.market(11, 3) if x.delisted)}
    expected = (us | hsi | shorts | {"HK.00700", "US.AAPL"}) - {"HK.09988", "US.XAAB"}
    assert {m.code for m in resolution.members} == expected  # type: ignore[attr-defined]
    delisted = {x.code for x in book.market(11, 3) + book.market(11, 4) if x.delisted}
    assert set(resolution.codes) == expected - delisted  # type: ignore[attr-defined]
    by_code = {m.code: m for m in resolution.members}  # type: ignore[attr-defined]
    assert by_code["HK.00700"].name == "TENCENT" and by_code["HK.00700"].sources == (
        "codes",
        "group:Shorts",
        "plate:HK.HSI Constituent",
    )
    assert by_code["US.SPY"].security_type == "ETF" and by_code["US.SPY"].sources == ("market:US",)
    left_out = " ".join(resolution.left_out)  # type: ignore[attr-defined]
    assert "HK.13579" in left_out and "SH.600519" in left_out
    assert resolution.excluded == ("HK.09988", "US.XAAB")  # type: ignore[attr-defined]
    assert resolution.requests == 1 + 1 + 1 + 1 + 2  # type: ignore[attr-defined]  # names, groups, Shorts, plate, US x2


def test_unknown_group_and_plate_name_what_exists(gateway: GatewayProcess, tmp_path: Path) -> None:
    with pytest.raises(UnknownGroupError) as group:
        _resolve(gateway, "futu_groups: [Shorts, Longs]\n", tmp_path)
    assert "'Longs'" in str(group.value) and "'Shorts', 'Tech', 'All', 'US', 'HK'" in str(group.value)
    with pytest.raises(UnknownPlateError) as plate:
        _resolve(gateway, "plates: [HK.BK9999]\n", tmp_path)
    assert "HK.BK9999" in str(plate.value) and "HK.HSI Constituent" in str(plate.value)


def test_a_gateway_not_logged_in_or_unreachable_is_a_resolution_error(
    gateway_factory: Callable[..., GatewayProcess], tmp_path: Path, unused_port: int
) -> None:
    with pytest.raises(GatewayResolutionError, match="not logged in"):
        _resolve(gateway_factory("--not-logged-in"), "markets: [HK]\n", tmp_path)
    down = GatewayProcess("127.0.0.1", unused_port, None)  # type: ignore[arg-type]
    with pytest.raises(GatewayResolutionError, match="last resolution stays in force"):
        _resolve(down, "markets: [HK]\n", tmp_path)


def test_each_listing_call_books_its_own_bucket_per_gateway(
    gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    gw = gateway_factory("--listing-rate", "2/30")
    settings = Settings(opend_host=gw.host, opend_port=gw.port, listing_rate_limit=Settings().listing_rate_limit)
    with migrated_engine(f"sqlite:///{tmp_path / 'w.db'}") as engine:
        text = "futu_groups: [Shorts, Tech]\nplates: ['HK.HSI Constituent']\n"
        resolve_watchlist(settings, engine, parse_watchlist_text(text))
        with engine.connect() as conn:
            buckets = dict(
                conn.execute(sa.select(reservations.c.bucket, sa.func.count()).group_by(reservations.c.bucket)).all()
            )
    name = f"{gw.host}:{gw.port}"
    assert buckets == {
        f"opend:{name}:Qot_GetUserSecurityGroup": 1,
        f"opend:{name}:Qot_GetUserSecurity": 2,
        f"opend:{name}:Qot_GetPlateSecurity": 1,
    }


def test_shrink_guard() -> None:
    current = [f"US.X{i:03d}" for i in range(10)]
    check_shrink(current, current[:5], allow_shrink=False)  # half may go
    with pytest.raises(ShrinkRefusedError, match="would drop 6 of its 10 codes"):
        check_shrink(current, current[:4], allow_shrink=False)
    check_shrink(current, [], allow_shrink=True)
    check_shrink([], [], allow_shrink=False)


def test_a_gateway_refusing_the_connection_is_a_resolution_error(
    gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    refusing = gateway_factory("--refuse-init-connect", "client version too old")
    with pytest.raises(GatewayResolutionError, match="client version too old"):
        _resolve(refusing, "markets: [HK]\n", tmp_path)


@pytest.mark.slow
def test_the_limiter_waits_out_a_listing_window_instead_of_being_refused(
    gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    gw = gateway_factory("--listing-rate", "2/3", "--stats-file", str(tmp_path / "stats.json"))
    settings = Settings(opend_host=gw.host, opend_port=gw.port, listing_rate_limit=RateLimit(2, 3.0))
    text = "futu_groups: [Shorts, Tech, All, US]\n"  # four 3213 requests: two windows of two
    with migrated_engine(f"sqlite:///{tmp_path / 'w.db'}") as engine:
        started = time.monotonic()
        resolution = resolve_watchlist(settings, engine, parse_watchlist_text(text))
        waited = time.monotonic() - started
    stats = read_stats(tmp_path / "stats.json")
    assert resolution.requests == 5 and waited >= 3.0
    assert stats["listing_accepted"] == {"3213": 4, "3222": 1} and stats["listing_rejected"] == {}
