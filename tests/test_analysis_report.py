"""The movers report and the charts, on a warehouse with known figures, on PostgreSQL and SQLite."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from pipelines.analysis.movers import days_to_cover_leaders, top_movers
from pipelines.analysis.report import build_report
from pipelines.analysis.series import read_series
from pipelines.universe.resolve import Member, Resolution
from pipelines.universe.store import apply_resolution
from pipelines.warehouse import upsert_batch
from proto_client.records import HkShortInterestRow, UsShortInterestRow
from proto_client.security import Market
from proto_client.simulator.demo_data import local_midnight, rows_for
from tests.conftest import migrated_engine

REPO = Path(__file__).resolve().parents[1]
D1, D2, D3 = date(2026, 9, 30), date(2026, 10, 15), date(2026, 10, 30)


def us(code: str, day: date, shares: int | None, days_to_cover: float | None = None) -> UsShortInterestRow:
    return UsShortInterestRow(
        code, day, local_midnight(day, Market.US), shares, 5.0, 1_000_000, days_to_cover, 100.0, 99.0
    )


def hk(code: str, day: date, shares: int | None) -> HkShortInterestRow:
    return HkShortInterestRow(code, day, local_midnight(day, Market.HK), shares, 1.5, 300.0, 299.0)


def load_known_figures(engine: sa.Engine) -> None:
    # US.UP: +50 % in its newest report (the older -10 % change must not count).
    upsert_batch(engine, [us("US.UP", D1, 1000), us("US.UP", D2, 900, 1.0), us("US.UP", D3, 1350, 7.5)])
    # US.DOWN: -80 %, the largest move; newest report written first, as an out-of-order backfill would.
    upsert_batch(engine, [us("US.DOWN", D3, 200, 2.0)])
    upsert_batch(engine, [us("US.DOWN", D2, 1000, 9.0)])
    # HK.00001: +10 %.  US.ONE has a single report, US.ZERO's previous report is 0: neither is a mover.
    upsert_batch(engine, [hk("HK.00001", D2, 1000), hk("HK.00001", D3, 1100)])
    upsert_batch(engine, [us("US.ONE", D3, 500, 3.0)])
    upsert_batch(engine, [us("US.ZERO", D2, 0), us("US.ZERO", D3, 10, None)])


def test_movers_rank_each_codes_newest_change_by_size(warehouse_engine: sa.Engine) -> None:
    load_known_figures(warehouse_engine)
    with warehouse_engine.connect() as conn:
        movers = top_movers(conn)
        assert [(m.code, m.previous_trade_date, m.trade_date) for m in movers] == [
            ("US.DOWN", D2, D3),
            ("US.UP", D2, D3),
            ("HK.00001", D2, D3),
        ]
        assert [round(m.change_percent or 0, 6) for m in movers] == [-80.0, 50.0, 10.0]
        assert [m.short_shares_change for m in movers] == [-800, 450, 100]
        assert [m.code for m in top_movers(conn, {"US.UP", "HK.00001"})] == ["US.UP", "HK.00001"]
        assert [m.code for m in top_movers(conn, limit=1)] == ["US.DOWN"]
        # Days to cover of each US code's newest report, US.DOWN's older 9.0 not counted.
        leaders = days_to_cover_leaders(conn)
        assert [(r.code, r.days_to_cover) for r in leaders] == [("US.UP", 7.5), ("US.ONE", 3.0), ("US.DOWN", 2.0)]


@pytest.mark.slow
def test_report_has_both_tables_and_one_embedded_chart(warehouse_engine: sa.Engine) -> None:
    load_known_figures(warehouse_engine)
    with warehouse_engine.connect() as conn:
        report = build_report(conn, None)
    text = report.markdown
    assert "| US.DOWN |  | 2026-10-30 | 2026-10-15 | 200 | -800 | -80.0 % |" in text  # never resolved: no name
    assert "| US.UP |  | 2026-10-30 | 7.50 |" in text
    images = re.findall(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    assert len(images) == 1
    png = base64.b64decode(images[0])
    assert png == report.chart_png and png.startswith(b"\x89PNG")


def test_report_names_resolved_codes(warehouse_engine: sa.Engine) -> None:
    load_known_figures(warehouse_engine)
    resolution = Resolution((Member("US.DOWN", "Down Corp", "STOCK", 1, sources=("codes",)),))
    apply_resolution(warehouse_engine, resolution)
    with warehouse_engine.connect() as conn:
        report = build_report(conn, None)
        assert read_series(conn, "US.DOWN").label == "US.DOWN Down Corp"  # a chart panel's title
        assert read_series(conn, "US.UP").label == "US.UP"
    assert "| US.DOWN | Down Corp | 2026-10-30 | 2026-10-15 |" in report.markdown
    assert "| US.DOWN | Down Corp | 2026-10-30 | 2.00 |" in report.markdown


def test_report_of_an_empty_warehouse_says_so(warehouse_engine: sa.Engine) -> None:
    with warehouse_engine.connect() as conn:
        report = build_report(conn, ["US.AAPL"])
    assert report.chart_png is None
    assert "No code has two reports yet." in report.markdown
    assert "No US code reports days to cover yet." in report.markdown


def run_chart(database_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHORTINTEREST_")}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "chart", *args],
        env={**env, "SHORTINTEREST_DATABASE_URL": database_url},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


# The command's queries are the ones tested above on both databases; its own behaviour is tried on SQLite.
@pytest.mark.slow
def test_chart_command_draws_one_panel_per_code(sqlite_url: str, tmp_path: Path) -> None:
    with migrated_engine(sqlite_url) as engine:
        for code in ("US.AAPL", "HK.00700"):
            upsert_batch(engine, rows_for(code, date(2026, 6, 30))[:60])
    url = sqlite_url
    out = tmp_path / "chart.png"
    done = run_chart(url, "US.AAPL", "HK.700", "--since", "2025-01-01", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 panel(s)" in done.stdout
    with Image.open(out) as image:
        assert image.width == 1200 and image.height >= 700

    # A code without rows gets a panel saying so, and a warning naming it.
    done = run_chart(url, "US.AAPL", "US.NONE", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no stored rows for US.NONE" in done.stderr


@pytest.mark.slow
def test_chart_command_refuses_bad_input_before_reading(sqlite_url: str, tmp_path: Path) -> None:
    with migrated_engine(sqlite_url):
        url = sqlite_url
    bad_code = run_chart(url, "US.AAPL", "XX.1", "-o", str(tmp_path / "c.png"), cwd=tmp_path)
    assert bad_code.returncode == 2 and "'XX.1'" in bad_code.stderr
    no_dir = run_chart(url, "US.AAPL", "-o", str(tmp_path / "missing" / "c.png"), cwd=tmp_path)
    assert no_dir.returncode == 2 and "does not exist" in no_dir.stderr
    nothing = run_chart(url, "US.AAPL", "-o", str(tmp_path / "c.png"), cwd=tmp_path)
    assert nothing.returncode == 1 and "no stored rows for US.AAPL" in nothing.stderr
    assert not (tmp_path / "c.png").exists()
