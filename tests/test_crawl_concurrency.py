"""Two loads in two processes share one rate limit through the warehouse: the gateway never rejects."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from pipelines.warehouse import create_engine_for, upgrade
from tests.support.crawl import REPO_ROOT, cli_command, cli_env, expected_rows, read_stats, stored_rows
from tests.support.gateway import GatewayProcess

AS_OF = date(2026, 5, 15)
RATE = "6/3"
LOADS = (("HK.09988", "US.AAPL"), ("US.TSLA", "US.SPY"))  # 7 pages each: 28 requests in all


def budget_use(accepted_at: list[float], requests: int, seconds: float) -> float:
    """Accepted requests over the most a sliding window allows between the first and the last of them."""
    times = sorted(accepted_at)
    span = times[-1] - times[0]
    allowed = requests * (int(span // seconds) + 1)
    return len(times) / allowed


@pytest.mark.slow(seconds=15)
def test_two_processes_stay_within_one_shared_limit(
    postgres_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    upgrade(postgres_url)
    stats_file = tmp_path / "stats.json"
    gateway = gateway_factory("--rate", RATE, "--as-of", AS_OF.isoformat(), "--stats-file", str(stats_file))
    env = cli_env(**gateway.env(), OPEND_RATE_LIMIT=RATE, SHORTINTEREST_DATABASE_URL=postgres_url)
    procs = [
        subprocess.Popen(cli_command("load", *codes), env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        for codes in LOADS
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs

    stats = read_stats(stats_file)
    assert stats["rejected_rate_limit"] == 0
    assert stats["accepted"] == 28
    assert budget_use(stats["accepted_at"], 6, 3.0) >= 0.7
    engine = create_engine_for(postgres_url)
    try:
        for code in (c for codes in LOADS for c in codes):
            assert stored_rows(engine, code) == expected_rows(code, AS_OF)
    finally:
        engine.dispose()


def test_budget_use_counts_against_the_windows_the_span_covers() -> None:
    assert budget_use([0.0, 0.1, 3.2, 3.3], 2, 3.0) == 1.0
    assert budget_use([0.0, 6.5], 2, 3.0) == 2 / 6
