"""`shortinterest load` and `status` as users run them: validation first, every failure named, clear exits."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from datetime import date
from pathlib import Path

from pipelines.crawl.crawler import CodeResult
from pipelines.crawl.events import CrawlEvent, EventKind
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
    assert "2026-05-15" in lines["US.AAPL"] and str(len(expected_rows("US.AAPL", AS_OF))) in lines["US.AAPL"]
    assert "last load failed" in lines["US.NOPE"]
    assert "US.NOPE" in status.stdout.split("last errors:")[1]


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


def test_live_progress_only_on_a_terminal() -> None:
    event = CrawlEvent("US.AAPL", EventKind.PAGE, pages=3, inserted=120, waited=2.0)
    live, plain = io.StringIO(), io.StringIO()
    for out, is_tty in ((live, True), (plain, False)):
        progress = LoadProgress(out, 12, live=is_tty)
        progress.starting(2, "US.AAPL")
        progress.on_event(event)
        progress.finished(_result("US.AAPL"))
    assert "\r" in live.getvalue() and "page 3: 120 new" in live.getvalue()
    assert plain.getvalue() == (
        "[ 3/12] US.AAPL incremental: 1 page, 2 new, 1 updated, 47 unchanged, waited 1.2 s, 1.5 s\n"
    )


def test_summary_names_every_failed_code() -> None:
    text = summary([_result("US.AAPL"), _result("US.NOPE", "unknown security"), _result("US.BAD", "timeout")])
    assert "1 of 3 codes loaded" in text
    assert "2 codes failed:\n  US.NOPE: unknown security\n  US.BAD: timeout" in text
