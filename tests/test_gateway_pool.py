"""One load over several gateway processes: a shared queue, one budget per gateway, and a gateway lost mid-load."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.config import Gateway, RateLimit, Settings
from pipelines.crawl.rate_limiter import reservations
from pipelines.orchestration.partitions import partition_name
from pipelines.orchestration.resources import resources_from_settings
from pipelines.orchestration.runner import run_market
from pipelines.warehouse import create_engine_for
from proto_client.security import Market
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess
from tests.support.loader import loader_env, migrate, read_stats, run_load, start_load, wait_for
from tests.support.warehouse_check import (
    PAGE_SIZE,
    assert_crawl_completed,
    assert_warehouse_matches_gateway,
    read_crawl_state,
)

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow(seconds=15)

AS_OF = date(2026, 6, 30)
CODES = ("HK.00700", "HK.09988", "HK.00005", "HK.02800", "US.AAPL", "US.TSLA", "US.SPY", "US.NVDA")
RATE = "6/1"  # each gateway's own budget: slow enough that every gateway takes part


def _start(gateway_factory: Callable[..., GatewayProcess], count: int, tmp_path: Path) -> list[GatewayProcess]:
    return [
        gateway_factory("--rate", RATE, "--as-of", AS_OF.isoformat(), "--stats-file", str(tmp_path / f"gw{i}.json"))
        for i in range(count)
    ]


def _env(gateways: Sequence[GatewayProcess], database_url: str) -> dict[str, str]:
    env = loader_env(gateways[0], database_url, rate=RATE)
    del env["OPEND_HOST"], env["OPEND_PORT"]
    env["OPEND_GATEWAYS"] = ",".join(f"{g.host}:{g.port}" for g in gateways)
    return env


def _stats(tmp_path: Path, index: int) -> dict[str, Any]:
    return read_stats(tmp_path / f"gw{index}.json")


def _buckets(database_url: str) -> set[str]:
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.select(reservations.c.bucket).distinct()).scalars())
    finally:
        engine.dispose()


def test_one_load_spreads_the_codes_over_two_gateways_each_within_its_own_budget(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    gateways = _start(gateway_factory, 2, tmp_path)
    migrate(postgres_url)

    result = run_load(_env(gateways, postgres_url), tmp_path, *CODES, "--full")

    assert result.returncode == 0, result.output
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)
    names = [f"{g.host}:{g.port}" for g in gateways]
    for index, name in enumerate(names):
        stats = _stats(tmp_path, index)
        assert stats["requests"] > 0, f"gateway {name} served nothing:\n{result.output}"
        assert stats["rejected_rate_limit"] == 0, f"gateway {name} rejected requests for frequency"
        assert f"gateway {name}: " in result.stdout
    # Each code went through one gateway, which the summary and the status both name.
    served = {code: (read_crawl_state(postgres_url, code) or _missing(code)).gateway for code in CODES}
    assert set(served.values()) == set(names)
    for code, name in served.items():
        assert any(line.split()[:2] == [code, name] for line in result.stdout.splitlines()), result.stdout
    assert _buckets(postgres_url) == {f"opend:{name}:Qot_GetShortInterest" for name in names}


def test_a_gateway_killed_mid_load_hands_its_code_to_the_others(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    gateways = _start(gateway_factory, 3, tmp_path)
    migrate(postgres_url)
    victim = gateways[1]
    loader = start_load(_env(gateways, postgres_url), tmp_path, *CODES, "--full")

    wait_for(lambda: _stats(tmp_path, 1)["requests"] >= 3 or not loader.running(), "the second gateway to serve")
    os.kill(victim.proc.pid, signal.SIGKILL)
    result = loader.wait(timeout=180)

    assert result.returncode == 0, result.output
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)
    lost = f"{victim.host}:{victim.port}"
    assert f"gateway {lost} is lost" in result.stderr, result.output
    assert f"gateway {lost}: " in result.stdout and "LOST: " in result.stdout, result.stdout
    assert f"of {len(CODES)} codes loaded" in result.stdout
    survivors = {f"{g.host}:{g.port}" for g in gateways if g is not victim}
    for code in CODES:
        state = read_crawl_state(postgres_url, code)
        assert state is not None and state.gateway in survivors | {lost}
        assert state.last_error is None
    # The code handed over counts what the lost gateway did for it too: every row of every code is new
    # once in the summary, and the codes' requests add up to the gateways'.
    table = _summary_rows(result.stdout)
    for code in CODES:
        served = len(rows_for(code, AS_OF))
        assert table[code]["new"] == served, f"{code}: {table[code]}\n{result.stdout}"
        assert table[code]["pages"] >= -(-served // PAGE_SIZE), f"{code}: {table[code]}\n{result.stdout}"
    total = re.search(r"codes loaded: (\d+) requests", result.stdout)
    per_gateway = re.findall(r"^gateway \S+: \d+ codes?, (\d+) requests", result.stdout, re.MULTILINE)
    assert total is not None and len(per_gateway) == len(gateways), result.stdout
    assert int(total[1]) == sum(map(int, per_gateway)), result.stdout


def test_a_gateway_that_never_answers_is_reported_and_the_others_load(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path, unused_port: int
) -> None:
    gateways = _start(gateway_factory, 1, tmp_path)
    migrate(postgres_url)
    env = _env(gateways, postgres_url)
    env["OPEND_GATEWAYS"] = f"127.0.0.1:{unused_port}," + env["OPEND_GATEWAYS"]

    result = run_load(env, tmp_path, "US.AAPL", "HK.00700")

    assert result.returncode == 0, result.output
    assert f"gateway 127.0.0.1:{unused_port} does not answer and is left out" in result.stdout
    assert_warehouse_matches_gateway(postgres_url, ["US.AAPL", "HK.00700"], AS_OF)


def test_a_gateway_refusing_init_connect_is_left_out_with_its_message_and_the_other_loads(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    gateways = _start(gateway_factory, 1, tmp_path)
    refusing = gateway_factory("--refuse-init-connect", "client version 100 is not supported")
    migrate(postgres_url)
    env = _env([refusing, *gateways], postgres_url)
    codes = ("HK.00700", "US.AAPL")  # one per market: the one gateway left serves them all

    result = run_load(env, tmp_path, *codes, "--full")

    assert result.returncode == 0, result.output
    assert_warehouse_matches_gateway(postgres_url, codes, AS_OF)
    assert_crawl_completed(postgres_url, codes, AS_OF)
    name = f"{refusing.host}:{refusing.port}"
    assert f"gateway {name} does not answer and is left out: gateway at {name} refused InitConnect: " in result.stdout
    assert "client version 100 is not supported (retType=-1" in result.stdout
    assert "Traceback" not in result.output
    served = f"{gateways[0].host}:{gateways[0].port}"
    for code in codes:
        state = read_crawl_state(postgres_url, code)
        assert state is not None and state.gateway == served


def test_no_gateway_answering_fails_before_any_request(
    postgres_url: str, tmp_path: Path, unused_port: int, gateway_factory: Callable[..., GatewayProcess]
) -> None:
    gateways = _start(gateway_factory, 1, tmp_path)
    migrate(postgres_url)
    env = _env(gateways, postgres_url)
    env["OPEND_GATEWAYS"] = f"127.0.0.1:{unused_port},127.0.0.2:{unused_port}"

    result = run_load(env, tmp_path, "US.AAPL")

    assert result.returncode == 1
    assert f"no gateway answers: 127.0.0.1:{unused_port}: " in result.stderr
    assert f"127.0.0.2:{unused_port}: " in result.stderr


def test_a_dagster_run_loads_over_two_gateways(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    gateways = _start(gateway_factory, 2, tmp_path)
    migrate(postgres_url)
    rate = RateLimit.parse(RATE)
    settings = Settings(
        database_url=postgres_url, gateways=tuple(Gateway(g.host, g.port, rate) for g in gateways), rate_limit=rate
    )
    codes = [c for c in CODES if c.startswith("US.")]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(partition_name(Market.US), codes)
        run = run_market(instance, Market.US, codes, resources_from_settings(settings), full=True, with_checks=False)

    assert run.success, run.failure
    assert [c.code for c in run.codes if c.ok] == codes
    names = {f"{g.host}:{g.port}" for g in gateways}
    assert {c.gateway for c in run.codes} == names
    assert_warehouse_matches_gateway(postgres_url, codes, AS_OF)
    for index in range(2):
        assert _stats(tmp_path, index)["rejected_rate_limit"] == 0


def _summary_rows(stdout: str) -> dict[str, dict[str, int]]:
    """Pages, requests and new rows per code, from the load summary's table (code, gateway, mode, pages, ...)."""
    rows = (line.split() for line in stdout.splitlines())
    return {
        r[0]: {"pages": int(r[3]), "requests": int(r[4]), "new": int(r[5])}
        for r in rows
        if len(r) == 12 and r[0] in CODES
    }


def _missing(code: str) -> Any:
    raise AssertionError(f"no crawl state for {code}")
