"""`shortinterest status` keeps codes that left the watchlist apart, and `--prune` forgets their crawl state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.warehouse import create_engine_for, list_crawl_states, upgrade
from tests.support.crawl import run_cli
from tests.support.gateway import GatewayProcess

AS_OF = date(2026, 5, 15)


def write_watchlist(path: Path, *codes: str) -> Path:
    path.write_text("codes:\n" + "".join(f"  - {code!r}\n" for code in codes))
    return path


def states_and_rows(url: str) -> tuple[set[str], dict[str, int]]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            states = {s.code for s in list_crawl_states(conn)}
            rows = dict(conn.execute(sa.text("SELECT code, COUNT(*) FROM short_interest GROUP BY code")).all())
    finally:
        engine.dispose()
    return states, rows


@pytest.mark.slow
def test_dropped_codes_are_shown_apart_and_pruned_on_request(
    sqlite_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    upgrade(sqlite_url)
    gateway = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat())
    watchlist = write_watchlist(tmp_path / "watchlist.yaml", "US.AAPL", "US.NOPE", "HK.09988")
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": sqlite_url, "SHORTINTEREST_WATCHLIST": str(watchlist)}
    assert run_cli("load", env=env).returncode == 1  # US.NOPE fails: an old error to be kept apart later

    # US.NOPE and HK.09988 leave the watchlist.
    write_watchlist(watchlist, "US.AAPL")
    status = run_cli("status", env=env)
    assert status.returncode == 0, status.stderr
    watched, _, apart = status.stdout.partition("not in the watchlist (2):")
    assert "US.AAPL" in watched and "US.NOPE" not in watched and "HK.09988" not in watched
    assert "last errors" not in watched  # US.NOPE's error belongs to a code no longer loaded
    assert "US.NOPE" in apart and "HK.09988" in apart and "--prune" in apart
    rows_before = states_and_rows(sqlite_url)[1]

    pruned = run_cli("status", "--prune", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert "forgot the crawl state of 2 code(s)" in pruned.stdout
    states, rows = states_and_rows(sqlite_url)
    assert states == {"US.AAPL"}
    assert rows == rows_before and rows["HK.09988"] > 0  # the rows stay
    # HK.09988 still has rows, so it is still listed apart, now without crawl state; US.NOPE had none.
    _, _, apart = pruned.stdout.partition("not in the watchlist (1):")
    assert "HK.09988" in apart and "never loaded" in apart and "--prune" not in apart


def test_prune_refuses_without_a_readable_watchlist(sqlite_url: str, tmp_path: Path) -> None:
    upgrade(sqlite_url)
    env = {"SHORTINTEREST_DATABASE_URL": sqlite_url, "SHORTINTEREST_WATCHLIST": str(tmp_path / "missing.yaml")}
    result = run_cli("status", "--prune", env=env)
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr and "nothing was pruned" in result.stderr
