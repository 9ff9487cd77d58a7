"""`shortinterest fetch` and `export` as users run them, and the whole-history call under the rate limit.

The round trip: what `fetch --all` prints live is what `export` writes after `load`, in every format, on
PostgreSQL and SQLite.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.access.live import get_short_interest_history
from pipelines.cli import main
from pipelines.config import RateLimit, Settings
from pipelines.crawl.rate_limiter import reservations
from pipelines.warehouse import upgrade, upsert_batch
from proto_client.frames import HK_COLUMNS
from proto_client.simulator.demo_data import rows_for
from tests.support.crawl import read_stats
from tests.support.gateway import GatewayProcess

AS_OF = date(2026, 4, 30)
CODES = ("US.AAPL", "HK.00700")
# A PostgreSQL URL nothing answers at: a command that gets as far as querying it fails with exit status 1.
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/nothing"


def _fetched(capsys: pytest.CaptureFixture[str], env: dict[str, str], code: str) -> pd.DataFrame:
    result = _run(capsys, env, "fetch", code, "--all", "--format", "csv")
    assert result.status == 0, result.err
    assert "next_key: -1" in result.err
    return pd.read_csv(io.StringIO(result.out))


def _exported(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        frame = pd.read_parquet(path)
    elif fmt == "json":
        frame = pd.DataFrame(json.loads(path.read_text()))
    else:
        frame = pd.read_csv(path)
    return frame.assign(trade_date=pd.to_datetime(frame["trade_date"]).dt.strftime("%Y-%m-%d"))


def test_fetch_load_export_round_trip(
    database_url: str,
    gateway_factory: Callable[..., GatewayProcess],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upgrade(database_url)
    gateway = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat())
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": database_url, "OPEND_RATE_LIMIT": "1000/1"}
    live = {code: _fetched(capsys, env, code) for code in CODES}  # books its requests in the warehouse
    assert _run(capsys, env, "load", *CODES).status == 0

    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"export.{fmt}"
        result = _run(capsys, env, "export", *CODES, "--format", fmt, "-o", str(out))
        assert result.status == 0, result.err
        exported = _exported(out, fmt)
        assert list(exported.columns[:3]) == ["market", "code", "trade_date"]
        for code in CODES:
            mine = exported[exported["code"] == code].sort_values("trade_date", ascending=False, ignore_index=True)
            theirs = live[code]
            assert len(mine) == len(theirs) == len(rows_for(code, AS_OF))
            assert list(mine["trade_date"]) == list(theirs["timestamp_str"])
            for column in theirs.columns[2:]:
                assert list(mine[column]) == list(theirs[column]), (fmt, column)
            assert set(mine["market"]) == {code[:2]}


def test_fetch_pages_with_the_next_key_it_prints(
    gateway_factory: Callable[..., GatewayProcess], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat())
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    first = _run(capsys, env, "fetch", "hk.700", "--num", "2")  # read as HK.00700, as `load` reads it
    assert first.status == 0, first.err
    lines = first.out.splitlines()
    assert lines[0].split() == list(HK_COLUMNS)
    key = lines[-1].removeprefix("next_key: ")
    rows = rows_for("HK.00700", AS_OF)
    assert key == str(rows[1].timestamp) and len(lines) == 4

    second = _run(capsys, env, "fetch", "HK.00700", "--num", "2", "--next-key", key, "--format", "json")
    page = json.loads(second.out)
    assert [r["timestamp"] for r in page["rows"]] == [rows[2].timestamp, rows[3].timestamp]
    assert page["code"] == "HK.00700" and page["next_key"] == str(rows[3].timestamp)


class _Run:
    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out, self.err = status, out, err


def _run(capsys: pytest.CaptureFixture[str], env: dict[str, str], *argv: str) -> _Run:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        status = main(list(argv))
    captured = capsys.readouterr()
    return _Run(status, captured.out, captured.err)


def test_fetch_refuses_bad_input_before_any_request(
    gateway_factory: Callable[..., GatewayProcess], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = tmp_path / "stats.json"
    gateway = gateway_factory("--rate", "off", "--stats-file", str(stats))
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    malformed = _run(capsys, env, "fetch", "HK.7000000")
    assert malformed.status == 2 and "'HK.7000000'" in malformed.err
    no_market = _run(capsys, env, "fetch", "AAPL")
    assert no_market.status == 2 and "'AAPL'" in no_market.err and "market prefix" in no_market.err
    both = _run(capsys, env, "fetch", "US.AAPL", "--all", "--num", "5")
    assert both.status == 2 and "--all" in both.err
    unknown = _run(capsys, env, "fetch", "US.NOPE")
    assert unknown.status == 1 and "unknown security US.NOPE" in unknown.err
    no_key = _run(capsys, {**env, "OPEND_RSA_KEY_FILE": str(tmp_path / "missing.pem")}, "fetch", "US.AAPL")
    assert no_key.status == 2 and "OPEND_RSA_KEY_FILE" in no_key.err and "missing.pem" in no_key.err
    assert read_stats(stats)["requests"] == 1  # only the unknown code reached the gateway
    assert not (tmp_path / "none.db").exists()  # fetch creates no warehouse


def test_export_refuses_bad_input_before_any_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"SHORTINTEREST_DATABASE_URL": UNREACHABLE_DB}
    bad_codes = _run(capsys, env, "export", "US.AAPL", "AAPL", "HK.1234567", "--format", "csv")
    assert bad_codes.status == 2
    assert "'AAPL'" in bad_codes.err and "'HK.1234567'" in bad_codes.err
    unwritable = _run(capsys, env, "export", "--format", "csv", "-o", "/etc/hostname/export.csv")
    assert unwritable.status == 2 and "/etc/hostname/export.csv" in unwritable.err
    missing_dir = _run(capsys, env, "export", "--format", "json", "-o", str(tmp_path / "no" / "x.json"))
    assert missing_dir.status == 2 and "cannot write" in missing_dir.err
    no_file = _run(capsys, env, "export", "--format", "parquet")
    assert no_file.status == 2 and "-o" in no_file.err
    backwards = _run(capsys, env, "export", "--since", "2026-02-01", "--until", "2026-01-01", "--format", "csv")
    assert backwards.status == 2 and "2026-02-01" in backwards.err
    reached = _run(capsys, env, "export", "--format", "csv")
    assert reached.status == 1 and "cannot read the warehouse" in reached.err


def test_export_names_codes_without_rows_and_fails_when_nothing_matched(
    warehouse_engine: sa.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upsert_batch(warehouse_engine, rows_for("US.TSLA", AS_OF)[:3])
    env = {"SHORTINTEREST_DATABASE_URL": warehouse_engine.url.render_as_string(hide_password=False)}
    (tmp_path / "exports").mkdir()
    out = tmp_path / "exports" / "out.csv"
    some = _run(capsys, env, "export", "us.tsla", "HK.9988", "US.NOPE", "--format", "csv", "-o", str(out))
    assert some.status == 0, some.err
    assert "no stored rows for HK.09988, US.NOPE" in some.err  # named as stored, as `load` reads them
    assert set(pd.read_csv(out)["code"]) == {"US.TSLA"} and len(pd.read_csv(out)) == 3

    out.write_text("kept\n")
    none = _run(capsys, env, "export", "HK.09988", "--format", "csv", "-o", str(out))
    assert none.status == 1 and "nothing matched HK.09988" in none.err
    assert out.read_text() == "kept\n"  # a failed export leaves the old file alone
    assert [p.name for p in out.parent.iterdir()] == ["out.csv"]  # and no partial file behind

    stdout = _run(capsys, env, "export", "--since", "2030-01-01", "--format", "json")
    assert stdout.status == 1 and "from 2030-01-01" in stdout.err


@pytest.mark.slow
def test_history_stays_within_the_gateways_limit(
    gateway_factory: Callable[..., GatewayProcess], tmp_path: Path, sqlite_url: str
) -> None:
    """The gateway refuses a 6th request within 2 s; a 7-page walk gets through on the local limiter, then on the
    warehouse's shared one, which books every request."""
    expected = [row.timestamp for row in rows_for("US.AAPL", AS_OF)]
    pages = -(-len(expected) // 50)
    assert pages > 5

    def limited_gateway(stats: Path) -> Settings:
        gateway = gateway_factory("--rate", "5/2", "--as-of", AS_OF.isoformat(), "--stats-file", str(stats))
        return Settings(gateway.host, gateway.port, RateLimit(5, 2.0), sqlite_url)

    history = get_short_interest_history("US.AAPL", settings=limited_gateway(tmp_path / "local.json"))
    assert list(history["timestamp"]) == expected
    assert history.attrs == {"code": "US.AAPL"}

    upgrade(sqlite_url)
    settings = limited_gateway(tmp_path / "shared.json")
    engine = sa.create_engine(sqlite_url)
    try:
        shared = get_short_interest_history("US.AAPL", settings=settings, engine=engine)
        with engine.connect() as conn:
            booked = conn.execute(sa.select(sa.func.count()).select_from(reservations)).scalar_one()
    finally:
        engine.dispose()
    pd.testing.assert_frame_equal(shared, history, check_exact=True)
    assert booked == pages
    for stats in ("local.json", "shared.json"):
        counters = read_stats(tmp_path / stats)
        assert counters["rejected_rate_limit"] == 0 and counters["accepted"] == pages


def test_history_of_a_code_without_reports_is_an_empty_frame_with_its_columns(
    gateway_factory: Callable[..., GatewayProcess],
) -> None:
    gateway = gateway_factory("--rate", "off", "--as-of", "2019-11-01")  # before HK.09988 listed
    history = get_short_interest_history("HK.09988", settings=Settings(gateway.host, gateway.port))
    assert history.empty and list(history.columns) == list(HK_COLUMNS)
    assert history.attrs == {"code": "HK.09988"}
