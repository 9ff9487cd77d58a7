"""`shortinterest watchlist` and `shortinterest load` with a watchlist of groups, plates and markets, against a
real gateway process: the securities table, joins and leaves with names, the shrink guard, names in the views."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.warehouse import create_engine_for, read_short_interest, upgrade
from tests.support.crawl import expected_rows, run_cli, stored_rows
from tests.support.gateway import GatewayProcess

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

AS_OF = "2026-04-30"


def _setup(tmp_path: Path, gateway_factory: Callable[..., GatewayProcess], url: str, watchlist: str,
           groups: dict[str, list[str]]) -> tuple[dict[str, str], Path]:  # fmt: skip
    groups_file = tmp_path / "groups.json"
    groups_file.write_text(json.dumps(groups))
    gw = gateway_factory("--rate", "off", "--listing-rate", "off", "--as-of", AS_OF, "--market-size", "40",
                         "--groups-file", str(groups_file))  # fmt: skip
    path = tmp_path / "watchlist.yaml"
    path.write_text(watchlist)
    upgrade(url)
    return {**gw.env(), "SHORTINTEREST_DATABASE_URL": url, "SHORTINTEREST_WATCHLIST": str(path)}, groups_file


def _securities(url: str) -> dict[str, tuple[object, ...]]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT code, name, in_watchlist, left_at IS NOT NULL, delisted FROM securities")
            )
            return {row[0]: tuple(row[1:]) for row in rows}
    finally:
        engine.dispose()


def test_watchlist_command_resolves_shows_changes_and_keeps_who_leaves(
    tmp_path: Path, gateway_factory: Callable[..., GatewayProcess], sqlite_url: str
) -> None:
    env, groups = _setup(tmp_path, gateway_factory, sqlite_url, "codes: [US.AAPL]\nfutu_groups: [Shorts]\n",
                         {"Shorts": ["HK.00700", "US.TSLA", "HK.13579", "US.XAAR"]})  # fmt: skip
    dry = run_cli("watchlist", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "HK.00700  TENCENT" in dry.stdout and "dry run: nothing was written" in dry.stdout
    assert "HK.13579 TENCENT CALL WARRANT (WARRANT, from group:Shorts)" in dry.stdout
    assert _securities(sqlite_url) == {}
    first = run_cli("watchlist", env=env)
    assert first.returncode == 0, first.stderr
    assert "joined (3):\n  HK.00700 TENCENT\n  US.AAPL Apple\n  US.TSLA Tesla" in first.stdout
    rows = _securities(sqlite_url)
    assert rows["US.XAAR"][1:] == (False, True, True)  # delisted: a member, not in the watchlist
    assert rows["HK.00700"] == ("TENCENT", True, False, False)
    groups.write_text(json.dumps({"Shorts": ["HK.00700", "US.TSLA", "US.NVDA"]}))
    second = run_cli("watchlist", env=env)
    assert second.returncode == 0, second.stderr
    assert "joined (1):\n  US.NVDA NVIDIA" in second.stdout and "left: none" in second.stdout
    groups.write_text(json.dumps({"Shorts": ["US.NVDA"]}))
    third = run_cli("watchlist", env=env)
    assert "left (2):\n  HK.00700 TENCENT\n  US.TSLA Tesla" in third.stdout, third.stdout
    assert _securities(sqlite_url)["HK.00700"] == ("TENCENT", False, True, False)


def test_shrink_and_unknown_group_are_refused_and_change_nothing(
    tmp_path: Path, gateway_factory: Callable[..., GatewayProcess], sqlite_url: str
) -> None:
    env, groups = _setup(tmp_path, gateway_factory, sqlite_url, "futu_groups: [Shorts]\n",
                         {"Shorts": ["HK.00700", "US.TSLA", "US.AAPL"]})  # fmt: skip
    assert run_cli("watchlist", env=env).returncode == 0
    before = _securities(sqlite_url)
    groups.write_text(json.dumps({"Shorts": ["US.AAPL"]}))
    refused = run_cli("watchlist", env=env)
    assert refused.returncode == 1 and "would drop 2 of its 3 codes" in refused.stderr, refused.stderr
    assert "--allow-shrink" in refused.stderr and _securities(sqlite_url) == before
    groups.write_text(json.dumps({"Longs": ["US.AAPL"]}))
    unknown = run_cli("watchlist", env=env)
    assert unknown.returncode == 1 and "no watchlist group 'Shorts'" in unknown.stderr
    assert "'Longs', 'All', 'US', 'HK'" in unknown.stderr and _securities(sqlite_url) == before
    groups.write_text(json.dumps({"Shorts": ["US.AAPL"]}))
    allowed = run_cli("watchlist", "--allow-shrink", env=env)
    assert allowed.returncode == 0 and "left (2)" in allowed.stdout


def test_load_without_codes_resolves_first_and_names_reach_the_views(
    tmp_path: Path, gateway_factory: Callable[..., GatewayProcess], database_url: str
) -> None:
    watchlist = "codes: [HK.00700]\nfutu_groups: [Shorts]\nexclude: [HK.09988]\n"
    groups = {"Shorts": ["US.TSLA", "HK.13579", "HK.09988"]}
    env, _ = _setup(tmp_path, gateway_factory, database_url, watchlist, groups)
    result = run_cli("load", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "resolved in 3 requests: 2 codes, 2 joined, 0 left" in result.stdout, result.stdout
    engine = create_engine_for(database_url)
    try:
        for code in ("US.TSLA", "HK.00700"):
            assert stored_rows(engine, code) == expected_rows(code, date.fromisoformat(AS_OF))
        with engine.connect() as conn:
            loaded = set(conn.execute(sa.text("SELECT DISTINCT code FROM short_interest")).scalars())
            names = dict(conn.execute(sa.text("SELECT code, name FROM short_interest_latest")).all())
            changes = set(conn.execute(sa.text("SELECT DISTINCT name FROM short_interest_changes")).scalars())
        frame = read_short_interest(engine=engine)
    finally:
        engine.dispose()
    assert loaded == {"US.TSLA", "HK.00700"}
    assert names == {"US.TSLA": "Tesla", "HK.00700": "TENCENT"} and changes == {"Tesla", "TENCENT"}
    assert dict(zip(frame["code"], frame["name"], strict=True)) == {"US.TSLA": "Tesla", "HK.00700": "TENCENT"}
    exported = run_cli("export", "US.TSLA", "--format", "csv", env=env)
    assert exported.returncode == 0 and exported.stdout.splitlines()[1].endswith(",Tesla"), exported.stdout[:300]


def test_a_code_without_history_is_rechecked_monthly_and_status_says_so(
    tmp_path: Path, gateway_factory: Callable[..., GatewayProcess], sqlite_url: str
) -> None:
    env, _ = _setup(tmp_path, gateway_factory, sqlite_url, "futu_groups: [Shorts]\n", {"Shorts": ["HK.00700"]})
    # HK.09988 listed on 2019-11-26: a gateway as of mid-2019 has no history for it.
    early = gateway_factory("--rate", "off", "--listing-rate", "off", "--as-of", "2019-06-03",
                            "--groups-file", str(tmp_path / "groups.json"))  # fmt: skip
    (tmp_path / "groups.json").write_text(json.dumps({"Shorts": ["HK.00700", "HK.09988"]}))
    env = {**env, **early.env()}
    first = run_cli("load", env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    second = run_cli("load", env=env)
    assert second.returncode == 0, second.stderr + second.stdout
    assert "not now, re-checked monthly as their last crawl found no history: HK.09988" in second.stdout
    summary = second.stdout.split("not now, re-checked monthly", 1)[1].split("\n", 1)[1]
    assert "HK.00700" in summary and "HK.09988" not in summary  # not asked again
    status = run_cli("status", env=env)
    line = next(line for line in status.stdout.splitlines() if line.startswith("HK.09988"))
    assert "no history at" in line and "re-checked monthly, next after" in line
