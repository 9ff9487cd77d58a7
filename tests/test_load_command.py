"""`shortinterest load` and `status` as users run them: validation first, every failure named, clear exits."""

from __future__ import annotations

import io
import re
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from pipelines.config import RateLimit
from pipelines.crawl.crawler import CodeResult
from pipelines.crawl.estimate import CodeCost, LoadEstimate
from pipelines.crawl.events import CrawlEvent, EventKind
from pipelines.crawl.gateway_pool import GatewayUsage
from pipelines.crawl.progress import LoadProgress, summary
from pipelines.warehouse import create_engine_for, upgrade
from proto_client.security import Market
from tests.support.crawl import expected_rows, read_stats, run_cli, stored_rows
from tests.support.gateway import GatewayProcess

AS_OF = date(2026, 5, 15)


def write_watchlist(tmp_path: Path, *codes: str) -> Path:
    path = tmp_path / "watchlist.yaml"
    path.write_text("codes:\n" + "".join(f"  - {code!r}\n" for code in codes))
    return path


@pytest.mark.slow
def test_unknown_code_fails_alone_and_is_named(
    sqlite_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    upgrade(sqlite_url)
    gateway = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat())
    watchlist = write_watchlist(tmp_path, "US.AAPL", "US.NOPE", "HK.09988")
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": sqlite_url, "SHORTINTEREST_WATCHLIST": str(watchlist)}
    result = run_cli("load", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 of 3 codes loaded" in result.stdout
    assert "US.NOPE: the gateway does not know this code: unknown security US.NOPE" in result.stdout
    engine = create_engine_for(sqlite_url)
    try:
        for code in ("US.AAPL", "HK.09988"):
            assert stored_rows(engine, code) == expected_rows(code, AS_OF)
    finally:
        engine.dispose()

    status = run_cli("status", env=env)
    assert status.returncode == 0, status.stderr
    lines = {line.split()[0]: line for line in status.stdout.splitlines() if line.startswith(("US.", "HK."))}
    assert set(lines) == {"US.AAPL", "US.NOPE", "HK.09988"}
    newest, rows = expected_rows("US.AAPL", AS_OF)[0][1], len(expected_rows("US.AAPL", AS_OF))
    assert newest.isoformat() in lines["US.AAPL"] and str(rows) in lines["US.AAPL"]
    assert "last load failed" in lines["US.NOPE"]
    assert "US.NOPE" in status.stdout.split("last errors:")[1]


@pytest.mark.slow
def test_bad_watchlist_is_refused_before_any_request(
    sqlite_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    upgrade(sqlite_url)
    stats_file = tmp_path / "stats.json"
    gateway = gateway_factory("--rate", "off", "--stats-file", str(stats_file))
    watchlist = write_watchlist(tmp_path, "US.AAPL", "AAPL", "SH.600519", "US.A;B", "HK.12345678")
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": sqlite_url, "SHORTINTEREST_WATCHLIST": str(watchlist)}
    result = run_cli("load", env=env)
    assert result.returncode == 2
    for bad in ("'AAPL'", "'SH.600519'", "'US.A;B'", "'HK.12345678'"):
        assert bad in result.stderr
    assert str(watchlist) in result.stderr
    assert read_stats(stats_file)["requests"] == 0

    codes = run_cli("load", "US.AAPL", "US.AA PL", env=env)
    assert codes.returncode == 2 and "'US.AA PL': contains whitespace" in codes.stderr
    assert read_stats(stats_file)["requests"] == 0


@pytest.mark.slow
def test_unmigrated_warehouse_says_run_migrate(
    sqlite_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gateway = gateway_factory("--rate", "off", "--stats-file", str(stats_file))
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": sqlite_url}
    result = run_cli("load", "US.AAPL", env=env)
    assert result.returncode == 1
    assert "run `shortinterest migrate`" in result.stderr
    assert read_stats(stats_file)["requests"] == 0
    status = run_cli("status", env=env)
    assert status.returncode == 1 and "run `shortinterest migrate`" in status.stderr


def test_no_gateway_says_how_to_start_the_demo(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    with socket.socket() as sock:  # a port nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"OPEND_HOST": "127.0.0.1", "OPEND_PORT": str(port), "SHORTINTEREST_DATABASE_URL": sqlite_url}
    result = run_cli("load", "US.AAPL", env=env)
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr
    assert "shortinterest gateway --demo" in result.stderr


def test_a_gateway_refusing_init_connect_fails_the_load_in_one_line_naming_it(
    sqlite_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    upgrade(sqlite_url)
    stats_file = tmp_path / "stats.json"
    gateway = gateway_factory(
        "--rate", "off", "--stats-file", str(stats_file), "--refuse-init-connect", "client version 100 too old"
    )
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": sqlite_url}
    result = run_cli("load", "US.AAPL", env=env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"shortinterest load: gateway at {gateway.host}:{gateway.port} refused InitConnect: "
        "client version 100 too old (retType=-1, errCode=0)"
    ]
    assert read_stats(stats_file)["requests"] == 0


@pytest.mark.slow
def test_dropped_connections_and_frequency_rejections_are_retried(
    postgres_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    upgrade(postgres_url)
    stats_file = tmp_path / "stats.json"
    gateway = gateway_factory(
        "--rate", "off", "--as-of", AS_OF.isoformat(), "--drop-every", "5", "--reject-every", "4",
        "--stats-file", str(stats_file),
    )  # fmt: skip
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": postgres_url, "OPEND_RATE_LIMIT": "100/1"}
    result = run_cli("load", "US.AAPL", "HK.09988", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    stats = read_stats(stats_file)
    assert stats["rejected_injected"] > 0 and stats["dropped"] > 0
    assert "request too frequent" in result.stdout  # the retry is shown, not hidden
    engine = create_engine_for(postgres_url)
    try:
        for code in ("US.AAPL", "HK.09988"):
            assert stored_rows(engine, code) == expected_rows(code, AS_OF)
    finally:
        engine.dispose()


def _result(code: str, error: str | None = None) -> CodeResult:
    return CodeResult(
        code=code, market=Market.US, full=False, pages=1, requests=1, inserted=2, updated=1, unchanged=47,
        waited_seconds=1.25, elapsed_seconds=1.5, newest_trade_date=AS_OF if error is None else None,
        error=error, resumed_from=None,
    )  # fmt: skip


def _estimate(*costs: tuple[str, str, int | None]) -> LoadEstimate:
    return LoadEstimate(tuple(CodeCost(*c) for c in costs), RateLimit(30, 30.0))


def test_terminal_gets_one_bar_with_codes_requests_rows_and_time_left() -> None:
    out = io.StringIO()
    progress = LoadProgress(out, live=True)
    estimate = _estimate(("US.AAPL", "incremental", 1), ("US.TSLA", "full", 7), ("US.SPY", "full", None))
    with progress.running(estimate):
        progress.starting("US.AAPL")
        progress.on_event(CrawlEvent("US.AAPL", EventKind.PAGE, pages=1, inserted=2, updated=1, unchanged=47))
        progress.finished(_result("US.AAPL"))
        progress.starting("US.TSLA")
        progress.on_event(CrawlEvent("US.TSLA", EventKind.PAGE, pages=3, inserted=150))
        # 4 pages of US.TSLA and US.SPY's unknown history (guessed at one request) are left: 5 requests, one window.
        assert progress.requests_left() == 5 and progress.seconds_left() == 0.0
        assert progress.figures() == "4 requests, 200 rows"
        progress.on_event(CrawlEvent("US.TSLA", EventKind.WAIT, message="waiting 20 s for the rate limit: ..."))
    text = out.getvalue()
    assert "\x1b[" in text  # drawn in place on the terminal
    assert "[1/3] US.AAPL incremental: 1 page, 2 new" in text
    assert "[2/3] US.TSLA waiting 20 s for the rate limit" in text


def test_logs_get_a_line_per_code_and_a_periodic_summary() -> None:
    out = io.StringIO()
    now = [0.0]
    progress = LoadProgress(out, live=False, summary_every=60.0, clock=lambda: now[0])
    codes = [f"US.C{i}" for i in range(40)]
    with progress.running(_estimate(*((code, "full", 10) for code in codes))):
        for index, code in enumerate(codes[:31]):
            now[0] = 10.0 * index
            progress.starting(code)
            progress.finished(_result(code))
    lines = out.getvalue().splitlines()
    assert "\x1b[" not in out.getvalue() and "\r" not in out.getvalue()
    assert lines[0] == "[ 1/40] US.C0 incremental: 1 page, 2 new, 1 updated, 47 unchanged, waited 1.2 s, 1.5 s"
    summaries = [line for line in lines if line.startswith("progress:")]
    # Every 60 s of a 300 s load. The last comes as the 31st code starts: 10 codes of 10 requests are left, at
    # 30 per 30 s (plus the limiter's 0.3 s margin) three windows after the first.
    assert len(summaries) == 5
    assert summaries[-1] == "progress: 30/40 codes, 30 requests, 1,500 rows, elapsed 5 min 00 s, about 1 min 31 s left"


def test_progress_names_the_gateway_when_there_are_several() -> None:
    out = io.StringIO()
    progress = LoadProgress(out, live=False, show_gateway=True)
    with progress.running(_estimate(("US.AAPL", "incremental", 1), ("US.TSLA", "incremental", 1))):
        progress.finished(replace(_result("US.AAPL"), gateway="10.0.0.2:11111"))
    assert out.getvalue().startswith("[1/2] US.AAPL incremental via 10.0.0.2:11111: 1 page")


def test_summary_names_every_failed_code() -> None:
    text = summary([_result("US.AAPL"), _result("US.NOPE", "unknown security"), _result("US.BAD", "timeout")])
    assert "1 of 3 codes loaded" in text
    assert "2 codes failed:\n  US.NOPE: unknown security\n  US.BAD: timeout" in text


@pytest.mark.slow
def test_a_load_held_back_by_the_rate_limit_says_how_long_and_why(
    sqlite_url: str, gateway_factory: Callable[..., GatewayProcess]
) -> None:
    upgrade(sqlite_url)
    gateway = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat())
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": sqlite_url, "OPEND_RATE_LIMIT": "3/3"}
    result = run_cli("load", "US.AAPL", env=env)  # 7 pages: the 4th and the 7th wait for the window
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 code (1 full): at least 1 request (a whole history costs one per 50 rows)" in result.stdout
    waits = re.findall(r"US\.AAPL waiting (\d+) s for the rate limit: 3/3 requests/seconds are used up", result.stdout)
    assert len(waits) == 2 and all(int(w) >= 2 for w in waits), result.stdout
    assert re.search(r"^progress: 1/1 codes|^\[1/1\] US\.AAPL full: 7 pages", result.stdout, re.MULTILINE)


def test_summary_gives_each_gateways_share() -> None:
    results = [replace(_result("US.AAPL"), gateway="h1:1"), replace(_result("US.TSLA"), gateway="h2:2")]
    usage = [GatewayUsage("h1:1", 1, 7, 3.25, None), GatewayUsage("h2:2", 1, 4, 0.5, "connection refused")]
    lines = summary(results, usage).splitlines()
    assert lines[2].split()[:2] == ["US.AAPL", "h1:1"] and lines[3].split()[:2] == ["US.TSLA", "h2:2"]
    assert "gateway h1:1: 1 code, 7 requests, 3.2 s waited for its rate limit" in lines
    assert (
        "gateway h2:2: 1 code, 4 requests, 0.5 s waited for its rate limit; LOST: connection refused "
        "(its codes went to the other gateways)"
    ) in lines
