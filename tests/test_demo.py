"""`shortinterest demo` end to end in a subprocess, as on a fresh machine: its own gateway, a SQLite warehouse."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.crawl.watchlist import load_watchlist
from pipelines.warehouse import create_engine_for, table_for
from proto_client.security import Market, parse_code
from tests.support.gateway import GatewayProcess

REPO = Path(__file__).resolve().parents[1]
WATCHLIST = load_watchlist(REPO / "pipelines" / "watchlist.yaml")
SUMMARY_LINE = re.compile(
    r"^(?P<code>(?:HK|US)\.\S+)\s+(?P<mode>full|incremental|resumed)\s+(?P<new>\d+)\s+(?P<revised>\d+)\s+"
    r"(?P<same>\d+)\s+(?P<requests>\d+)\s+(?P<waited>[\d.]+)\s+(?P<newest>\d{4}-\d{2}-\d{2})$",
    re.MULTILINE,
)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_demo(env: dict[str, str], *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPEND_", "SHORTINTEREST_", "DAGSTER_HOME"))}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "demo", *args],
        cwd=cwd,
        env={**base, "PYTHONUNBUFFERED": "1", **env},
        capture_output=True,
        text=True,
        timeout=240,
    )


PLANNED = re.compile(r"^demo: about to load (\d+) codes \(([^)]*)\): (\d+) requests", re.MULTILINE)


def planned(output: str) -> tuple[str, int]:
    """The banner's kinds of crawl and request count."""
    match = PLANNED.search(output)
    assert match, output
    return match.group(2), int(match.group(3))


def summary(output: str) -> dict[str, dict[str, str]]:
    return {m["code"]: m.groupdict() for m in SUMMARY_LINE.finditer(output)}


def newest_and_count(database_url: str, code: str) -> tuple[str, int]:
    table = table_for(parse_code(code).market)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as conn:
            newest, count = conn.execute(
                sa.select(sa.func.max(table.c.trade_date), sa.func.count()).where(table.c.code == code)
            ).one()
    finally:
        engine.dispose()
    return str(newest)[:10], int(count)


@pytest.mark.slow(seconds=20)
def test_demo_fast_starts_its_gateway_loads_every_code_and_stops_it(
    tmp_path: Path, gateway_factory: Callable[..., GatewayProcess]
) -> None:
    database_url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    port = unused_port()  # nothing answers there, so the demo starts its own gateway

    # Run from an empty folder without DAGSTER_HOME: the runs land in ./.shortinterest/dagster_home.
    first = run_demo({"SHORTINTEREST_DATABASE_URL": database_url, "OPEND_PORT": str(port)}, "--fast", cwd=tmp_path)

    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert f"nothing answers at 127.0.0.1:{port}; starting the simulated gateway" in output
    listening = re.search(r"simulated gateway listening on 127\.0\.0\.1:(\d+)", output)
    assert listening, output
    assert "simulated gateway stopped" in output
    loaded = summary(first.stdout)
    assert sorted(loaded) == sorted(WATCHLIST.codes)
    # The banner said what the load then did.
    assert planned(first.stdout) == (f"{len(WATCHLIST)} full", sum(int(r["requests"]) for r in loaded.values()))
    for code, row in loaded.items():
        assert row["mode"] == "full"
        assert newest_and_count(database_url, code) == (row["newest"], int(row["new"]))
    assert f"{len(WATCHLIST)} of {len(WATCHLIST)} codes loaded" in first.stdout
    checks = re.findall(r"^check (\w+)/(\w+): (passed|FAILED.*?) - ", first.stdout, re.MULTILINE)
    assert len(checks) == 8 and {verdict for *_, verdict in checks} == {"passed"}
    # The gateway it started is gone.
    with socket.socket() as sock:
        sock.settimeout(2)
        assert sock.connect_ex(("127.0.0.1", int(listening.group(1)))) != 0

    # The runs, every code's materialization and the movers report are in the instance `shortinterest ui` opens.
    home = tmp_path / ".shortinterest" / "dagster_home"
    assert (home / "dagster.yaml").read_text() == (REPO / "dagster.yaml").read_text()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for market in Market:
            key = dg.AssetKey(f"{market.prefix.lower()}_short_interest")
            assert instance.get_materialized_partitions(key) == set(WATCHLIST.for_market(market))
        report = instance.get_latest_materialization_event(dg.AssetKey("short_interest_report"))
        assert report is not None and report.asset_materialization is not None
        assert "data:image/png;base64," in str(report.asset_materialization.metadata["report"].value)

    # A second run finds the gateway that answers at OPEND_PORT and only refreshes: one request a code.
    gateway = gateway_factory("--rate", "off")
    second = run_demo(
        {
            "SHORTINTEREST_DATABASE_URL": database_url,
            "OPEND_RATE_LIMIT": "1000/1",
            "DAGSTER_HOME": str(home),
            **gateway.env(),
        },
    )

    assert second.returncode == 0, second.stdout + second.stderr
    assert f"using the OpenD gateway already answering at 127.0.0.1:{gateway.port}" in second.stdout
    refreshed = summary(second.stdout)
    assert sorted(refreshed) == sorted(WATCHLIST.codes)
    assert {(r["mode"], r["requests"], r["new"]) for r in refreshed.values()} == {("incremental", "1", "0")}
    assert planned(second.stdout) == (f"{len(WATCHLIST)} incremental", len(WATCHLIST))
    assert gateway.proc.poll() is None  # not the demo's to stop


@pytest.mark.slow
def test_demo_reports_a_bad_setting_without_a_traceback(tmp_path: Path) -> None:
    result = run_demo(
        {"SHORTINTEREST_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "OPEND_RATE_LIMIT": "fast"}, cwd=tmp_path
    )

    assert result.returncode == 2
    assert "demo: OPEND_RATE_LIMIT='fast': expected REQUESTS/SECONDS" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_watchlist_market_is_covered() -> None:
    # The demo relies on the packaged watchlist having codes of both markets.
    assert WATCHLIST.for_market(Market.HK) and WATCHLIST.for_market(Market.US)
