"""The gateway restarts in the middle of a load: the load pauses, then carries on where it was.

Real processes throughout: `shortinterest load` against a simulated gateway that is stopped mid-load and
started again on the same port, as an OpenD restart or re-login looks from the loader.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from pipelines.crawl.load_command import EXIT_OUTAGE
from pipelines.crawl.outage import OutagePolicy
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess
from tests.support.loader import LoadProcess, loader_env, migrate, requests_served, start_load, wait_for
from tests.support.warehouse_check import (
    PAGE_SIZE,
    assert_crawl_completed,
    assert_warehouse_matches_gateway,
    assert_whole_pages_with_cursor,
    read_crawl_state,
)

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow(seconds=20)

AS_OF = date(2016, 1, 1)
CODES = ("HK.00700", "HK.00005", "HK.00939", "US.AAPL", "US.TSLA", "US.SPY")  # 4, 4, 4, 2, 2, 2 pages
RATE = "2/1"  # slow enough for the stop to land mid-load, fast enough to finish in seconds
BEGAN, STILL, ENDED = "is down since", "still down after", "answers again"
# The loads here wait at most a minute: the product then probes at most 1.5 s apart and says the gateway is
# still down every 6 s, the same shape as the default's 15 s and one minute, in a tenth of the time.
BOUND = 60
POLICY = OutagePolicy.waiting_at_most(BOUND)


def clean_requests() -> int:
    """What the load costs with no outage: one request per page."""
    return sum(-(-len(rows_for(code, AS_OF)) // PAGE_SIZE) for code in CODES)


def start_mid_load(
    gateway_factory: Callable[..., GatewayProcess], url: str, tmp_path: Path, **env: str
) -> tuple[GatewayProcess, LoadProcess, dict[str, str]]:
    """A gateway and a full load of CODES on it, once the second code has committed a page and has more to go."""
    stats = tmp_path / "before.json"
    gw = gateway_factory("--rate", RATE, "--as-of", AS_OF.isoformat(), "--stats-file", str(stats))
    migrate(url)
    load_env = {**loader_env(gw, url, rate=RATE), **env}
    loader = start_load(load_env, tmp_path, *CODES, "--full")

    def in_second_code() -> bool:
        state = read_crawl_state(url, CODES[1])
        return state is not None and state.cursor is not None

    wait_for(lambda: in_second_code() or not loader.running(), f"{CODES[1]} to commit a page")
    assert loader.running(), f"the load ended before the gateway went away:\n{loader.wait().output}"
    return gw, loader, load_env


def restart(
    gateway_factory: Callable[..., GatewayProcess], gw: GatewayProcess, stats: Path, *extra: str
) -> GatewayProcess:
    """The same gateway again on the same port, as OpenD comes back after a restart."""
    return gateway_factory(
        "--rate", RATE, "--as-of", AS_OF.isoformat(), "--stats-file", str(stats), "--port", str(gw.port), *extra
    )


def assert_reported_every_interval(stdout: str) -> int:
    """One still-down line per report interval of the outage, none early and none skipped; returns how many."""
    every, late = POLICY.report_every, POLICY.cap + 1  # a line comes at the first probe past its interval
    still = [float(s) for s in re.findall(rf"{STILL} (\d+) s", stdout)]
    ended = [float(s) for s in re.findall(rf"{ENDED} after (\d+(?:\.\d)?) s", stdout)]
    assert len(ended) == 1, stdout
    for k, said in enumerate(still, start=1):  # durations are printed to the second
        assert k * every - 1 <= said < k * every + late, (k, said, stdout)
    assert ended[0] < (len(still) + 1) * every + late, f"a still-down line is missing:\n{stdout}"
    return len(still)


@pytest.mark.parametrize(
    ("unreachable", "logged_out"),
    [
        # Nothing listening for 3 s, then 3 s up but logged out of the quote server, as a re-login looks.
        pytest.param(3, 3, id="short"),
        # Several report intervals and many times the longest probe interval.
        pytest.param(15, 0, id="long"),
    ],
)
def test_gateway_restart_mid_load_pauses_and_resumes(
    gateway_factory: Callable[..., GatewayProcess],
    postgres_url: str,
    tmp_path: Path,
    unreachable: int,
    logged_out: int,
) -> None:
    gw, loader, _ = start_mid_load(gateway_factory, postgres_url, tmp_path, SHORTINTEREST_OUTAGE_TIMEOUT=str(BOUND))

    gw.proc.kill()  # no goodbye: connections reset, then nothing listens
    gw.proc.wait(timeout=10)
    time.sleep(unreachable)
    if logged_out:
        stale = restart(gateway_factory, gw, tmp_path / "logged_out.json", "--not-logged-in")
        time.sleep(logged_out)
        stale.stop()
    assert loader.running(), f"the load did not wait for the gateway:\n{loader.wait().output}"
    restart(gateway_factory, gw, tmp_path / "after.json")
    outcome = loader.wait(timeout=120)

    assert outcome.returncode == 0, outcome.output
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)
    served = [requests_served(tmp_path / name) for name in ("before.json", "logged_out.json", "after.json")]
    # The page in flight may be asked for again, and a logged-out gateway may see a request; nothing else is.
    assert sum(served) <= clean_requests() + 2, (served, outcome.output)
    # Quiet: a line when the outage began, one a minute while it lasted, one when it ended; no code failed.
    assert outcome.stdout.count(BEGAN) == 1, outcome.output
    reports = assert_reported_every_interval(outcome.stdout)
    # The load notices the outage up to a couple of seconds after the kill, at its next request.
    assert reports >= (unreachable + logged_out - 2) // POLICY.report_every, outcome.output
    assert outcome.stdout.count(ENDED) == 1, outcome.output
    assert "FAILED" not in outcome.stdout and "retry" not in outcome.stdout, outcome.output
    assert "Traceback" not in outcome.stderr, outcome.output


def test_outage_past_the_bound_stops_the_load_and_the_rerun_resumes(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    gw, loader, env = start_mid_load(gateway_factory, postgres_url, tmp_path, SHORTINTEREST_OUTAGE_TIMEOUT="3")

    gw.proc.kill()
    gw.proc.wait(timeout=10)
    outcome = loader.wait(timeout=60)

    assert outcome.returncode == EXIT_OUTAGE, outcome.output
    message = outcome.stderr.strip()
    assert message.startswith(f"shortinterest load: stopped: the OpenD gateway at {gw.host}:{gw.port} has been down"), (
        outcome.output
    )
    assert "SHORTINTEREST_OUTAGE_TIMEOUT" in message, outcome.output
    assert message.count("\n") == 1 and "Traceback" not in outcome.stderr, outcome.output
    # The code in flight and every one after it are named, and only they: the rest were loaded.
    loaded = [code for code in CODES if f"] {code} full:" in outcome.stdout]
    left = list(CODES[len(loaded) :])
    assert loaded == list(CODES[: len(loaded)]) and left, outcome.output
    named = f"{len(left)} code{'s' if len(left) != 1 else ''} not loaded: {', '.join(left)}; the next load resumes"
    assert named in message, outcome.output
    # The interrupted code kept whole pages and the cursor after them; nothing was marked failed.
    in_flight = left[0]
    stored = assert_whole_pages_with_cursor(postgres_url, in_flight, AS_OF)
    state = read_crawl_state(postgres_url, in_flight)
    assert state is not None and state.last_error is None

    back = restart(gateway_factory, gw, tmp_path / "after.json")
    rerun = start_load({**env, **back.env()}, tmp_path, *CODES).wait(timeout=60)

    assert rerun.returncode == 0, rerun.output
    if stored:
        assert f"{in_flight} resumed" in rerun.stdout, rerun.output
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)
