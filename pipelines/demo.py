"""`shortinterest demo`: the whole pipeline on a fresh machine, on embedded defaults.

Starts the simulated gateway (unless one already answers at OPEND_HOST:OPEND_PORT), migrates the
warehouse, mirrors the watchlist into the Dagster partitions and materializes both assets with their
checks and then the movers report through Dagster in process, then prints what each code got and stops
the gateway it started. The runs are recorded in the instance `shortinterest ui` serves
(DAGSTER_HOME, default .shortinterest/dagster_home), so the UI shows them.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import dagster as dg

from pipelines.config import ConfigError, RateLimit, Settings
from pipelines.crawl.estimate import LoadEstimate, estimate_load
from pipelines.crawl.watchlist import WatchlistError, load_watchlist
from pipelines.failures import fail
from pipelines.orchestration.instance import dagster_home
from pipelines.orchestration.report import short_interest_report
from pipelines.orchestration.resources import WarehouseResource, resources_from_settings
from pipelines.orchestration.runner import MarketRun, run_market
from pipelines.orchestration.watchlist_sync import sync_partitions
from pipelines.warehouse.engine import create_engine_for, mask_url, read_connection
from pipelines.warehouse.errors import WarehouseError
from pipelines.warehouse.migrate import upgrade
from proto_client.client import OpenDClient
from proto_client.errors import OpenDError
from proto_client.security import Market
from proto_client.simulator.book import DemoBook

# --fast lifts the limit on both sides: the gateway's window and the shared limiter.
FAST_RATE = RateLimit(1000, 1.0)
GATEWAY_START_TIMEOUT = 30.0
GATEWAY_STOP_TIMEOUT = 10.0
PROBE_TIMEOUT = 2.0
_LISTENING = re.compile(r"listening on (?P<host>[\w.:\[\]-]+):(?P<port>\d+)")


class DemoError(RuntimeError):
    """The demo cannot go on; the message says what to do."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fast",
        action="store_true",
        help="run the gateway and the limiter at 1000 requests/s instead of the real 30 per 30 s",
    )
    parser.add_argument(
        "--full", action="store_true", help="re-read every code's whole history even if the warehouse has it"
    )
    parser.epilog = (
        "Uses SHORTINTEREST_DATABASE_URL (default: a SQLite file under .shortinterest/), SHORTINTEREST_WATCHLIST "
        "and DAGSTER_HOME (default: .shortinterest/dagster_home, which `shortinterest ui` opens)."
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        watchlist = load_watchlist(settings.watchlist_path)
    except (ConfigError, WatchlistError) as exc:
        return fail("demo", str(exc), 2)
    say(f"watchlist {watchlist.source}: {len(watchlist)} codes")
    try:
        with gateway_for_demo(settings, fast=args.fast) as (settings, simulated):
            migrate(settings)
            say(f"about to load {plan(settings, watchlist.codes, full=args.full, simulated=simulated).describe()}")
            with dagster_instance() as instance:
                status = load_everything(instance, settings, watchlist.for_market, full=args.full, fast=args.fast)
                make_report(instance, settings)
                return status
    except (DemoError, WarehouseError) as exc:
        return fail("demo", str(exc), 1)


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


@dataclass
class GatewayProcess:
    """The simulated gateway this demo started, with its output kept for error messages."""

    proc: subprocess.Popen[str]
    host: str
    port: int
    output: list[str]

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=GATEWAY_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=GATEWAY_STOP_TIMEOUT)


def gateway_answers(host: str, port: int) -> bool:
    """Whether an OpenD gateway (real or simulated) answers at host:port right now."""
    try:
        with OpenDClient(host, port, connect_timeout=PROBE_TIMEOUT, reply_timeout=PROBE_TIMEOUT) as client:
            client.get_global_state()
    except OpenDError:
        return False
    return True


def start_gateway(rate: str) -> GatewayProcess:
    """`shortinterest gateway --demo` on a free loopback port; waits for its `listening on` line."""
    cmd = [sys.executable, "-m", "pipelines.cli", "gateway", "--demo", "--host", "127.0.0.1", "--port", "0"]
    cmd += ["--rate", rate]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output: list[str] = []
    found: dict[str, str] = {}
    ready = threading.Event()

    def pump() -> None:  # keeps draining so the gateway never blocks on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and not found:
                found.update(match.groupdict())
                ready.set()
        ready.set()

    threading.Thread(target=pump, name="demo-gateway-output", daemon=True).start()
    if not ready.wait(GATEWAY_START_TIMEOUT) or not found:
        proc.kill()
        proc.wait(timeout=GATEWAY_STOP_TIMEOUT)
        shown = "\n  ".join(output[-20:]) or "(no output)"
        raise DemoError(f"the simulated gateway did not start within {GATEWAY_START_TIMEOUT:g} s:\n  {shown}")
    return GatewayProcess(proc, found["host"], int(found["port"]), output)


@contextmanager
def gateway_for_demo(settings: Settings, *, fast: bool) -> Iterator[tuple[Settings, bool]]:
    """Settings pointing at a gateway, and whether it is the simulated one this demo started: the one at
    OPEND_HOST:OPEND_PORT if it answers, else one started here."""
    if gateway_answers(settings.opend_host, settings.opend_port):
        say(
            f"using the OpenD gateway already answering at {settings.opend_host}:{settings.opend_port} "
            f"(limiter at {settings.rate_limit}; --fast does not apply to a gateway this demo did not start)"
        )
        yield settings, False
        return
    rate = FAST_RATE if fast else settings.rate_limit
    say(f"nothing answers at {settings.opend_host}:{settings.opend_port}; starting the simulated gateway ...")
    gateway = start_gateway(str(rate))
    say(f"simulated gateway listening on {gateway.host}:{gateway.port}, {rate} requests/seconds")
    try:
        yield replace(settings, opend_host=gateway.host, opend_port=gateway.port, rate_limit=rate), True
    finally:
        gateway.stop()
        say("simulated gateway stopped")


def migrate(settings: Settings) -> None:
    revision = upgrade(settings.database_url)
    say(f"warehouse {mask_url(settings.database_url)} at revision {revision}")


def plan(settings: Settings, codes: Sequence[str], *, full: bool, simulated: bool) -> LoadEstimate:
    """What the load will cost; the simulated gateway's history lengths are known here, a real one's are not."""
    book = DemoBook(None) if simulated else None
    engine = create_engine_for(settings.database_url)
    try:
        with read_connection(engine) as conn:
            return estimate_load(
                conn,
                codes,
                settings.rate_limit,
                full=full,
                history_rows=(lambda code: len(book.rows(code))) if book else None,
            )
    finally:
        engine.dispose()


@contextmanager
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """The instance `shortinterest ui` serves, so the demo's runs show there."""
    home = dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        say(f"Dagster instance {home} (`shortinterest ui` opens it)")
        yield instance


def make_report(instance: dg.DagsterInstance, settings: Settings) -> None:
    result = dg.materialize(
        [short_interest_report],
        instance=instance,
        resources={"warehouse": WarehouseResource(database_url=settings.database_url)},
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        raise_on_error=False,
    )
    if not result.success:
        say("the movers report failed; see the run in `shortinterest ui`")
        return
    top = result.asset_materializations_for_node("short_interest_report")[0].metadata["top_mover"].value
    say(f"movers report materialized (top mover: {top}); `shortinterest ui` shows it with its chart")


def load_everything(
    instance: dg.DagsterInstance,
    settings: Settings,
    codes_for: Callable[[Market], Sequence[str]],
    *,
    full: bool,
    fast: bool,
) -> int:
    sync = sync_partitions(instance, codes_for)
    say(f"partitions: {sync.summary()}")
    if not fast:
        say("progress is logged per code, and every wait for the rate limit with its length; --fast lifts the limit")
    resources = resources_from_settings(settings)
    runs: list[MarketRun] = []
    started = time.monotonic()
    for market in Market:
        codes = list(codes_for(market))
        if not codes:
            continue
        asset = f"{market.prefix.lower()}_short_interest"
        say(f"materializing {asset} for {len(codes)} codes: {', '.join(codes)}")
        runs.append(run_market(instance, market, codes, resources, full=full))
    print_summary(runs, time.monotonic() - started)
    return 0 if runs and all(r.success for r in runs) else 1


def print_summary(runs: list[MarketRun], elapsed: float) -> None:
    header = (
        f"{'code':<10} {'result':<12} {'new':>6} {'revised':>7} {'same':>6} {'requests':>8} {'waited s':>8}  newest"
    )
    print()
    print(header)
    print("-" * len(header))
    for market_run in runs:
        for c in market_run.codes:
            if c.ok:
                print(
                    f"{c.code:<10} {c.mode:<12} {c.inserted:>6} {c.updated:>7} {c.unchanged:>6} "
                    f"{c.requests:>8} {c.waited_seconds:>8.1f}  {c.newest_trade_date}"
                )
            else:
                print(f"{c.code:<10} {'FAILED':<12} {c.error}")
    print()
    for market_run in runs:
        for check in market_run.checks:
            verdict = "passed" if check.passed else f"FAILED ({check.severity})"
            print(
                f"check {market_run.market.prefix.lower()}_short_interest/{check.name}: {verdict} - {check.description}"
            )
    loaded = sum(c.ok for r in runs for c in r.codes)
    total = sum(len(r.codes) for r in runs)
    print(f"\n{loaded} of {total} codes loaded in {elapsed:.1f} s")
