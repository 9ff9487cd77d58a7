"""Alerts end to end: the Dagster daemon runs the alert sensors on a PostgreSQL instance (deploy/dagster.yaml), and
alerts reach an HTTP receiver and an SMTP server (aiosmtpd) on the loopback, or fail to, as the case needs.

Covered: a run that failed for good after its run retry alerts once (not at the first attempt); a freshness check
that fails alerts once, not again while it fails the same way, and once more when it recovers; an alert that
cannot be delivered (webhook answering 500, SMTP server down) is retried, logged and fails nothing; a sensor
whose tick fails alerts once, naming the error its code raised.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from dagster._core.scheduler.instigation import TickStatus
from sqlalchemy.engine import make_url

from pipelines.config import Settings
from pipelines.crawl.crawler import open_crawler
from pipelines.orchestration.alerts.check_states import SENSOR_NAME as CHECK_SENSOR
from pipelines.orchestration.alerts.delivery import ATTEMPTS
from pipelines.orchestration.alerts.run_failures import SENSOR_NAME as RUN_SENSOR
from pipelines.orchestration.alerts.tick_failures import SENSOR_NAME as TICK_SENSOR
from pipelines.orchestration.assets import short_interest_asset
from pipelines.orchestration.jobs import asset_key_for, refresh_job_name
from pipelines.orchestration.partitions import partition_name
from pipelines.orchestration.resources import GatewayResource, WarehouseResource
from pipelines.orchestration.schedules import run_request_for_codes
from pipelines.warehouse import upgrade
from proto_client.security import Market
from tests.support.dagster_services import REPO_ROOT, ServiceGroup, free_port, reading_instance
from tests.support.databases import fresh_postgres_database
from tests.support.gateway import GatewayProcess
from tests.support.loader import wait_for

pytestmark = [pytest.mark.slow(seconds=40), pytest.mark.timeout(600)]

UI_URL = "http://dagster.example:3000"
SMTP_PASSWORD = "smtp-secret-password"
WEBHOOK_SECRET = "T000/B000/webhook-secret-token"
START_TIMEOUT = 180.0
ALERT_TIMEOUT = 120.0


@dataclass
class Receiver:
    """An incoming webhook on the loopback: records each POSTed JSON, answers `status`."""

    status: int = 200
    posts: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.posts.append(json.loads(body))
            self.send_response(got.status)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/{WEBHOOK_SECRET}"
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    port: int
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Alerting:
    services: ServiceGroup
    instance: dg.DagsterInstance
    warehouse_url: str
    gateway: GatewayProcess

    def sensor_ticks(self, name: str) -> list[Any]:
        for state in self.instance.all_instigator_state():
            if state.instigator_name == name:
                return list(self.instance.get_ticks(state.instigator_origin_id, state.selector_id))
        return []

    def wait_for_ticks(self, name: str, more: int) -> None:
        """Until `name` ticked `more` times after now: what it would have done by then, it has done."""
        done = len(self.sensor_ticks(name))
        self.wait(lambda: len(self.sensor_ticks(name)) >= done + more, f"{more} more tick(s) of {name}")

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = ALERT_TIMEOUT) -> None:
        try:
            wait_for(condition, what, timeout=timeout, interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.services.logs()}") from None


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@contextmanager
def start_alerting(
    tmp_path: Path,
    warehouse_url: str,
    gateway: GatewayProcess,
    alert_env: dict[str, str],
    codes: list[str],
    sources: str = "",
) -> Iterator[Alerting]:
    """deploy/dagster.yaml on a database of its own, the daemon started, its alert sensors ticking.

    `alert_env` comes last in the daemon's environment, so it may override any variable; `sources` is YAML
    added to the watchlist after its codes.
    """
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text("codes:\n" + "".join(f"  - {code}\n" for code in codes) + sources)
    upgrade(warehouse_url)
    with fresh_postgres_database(prefix="si_dagster") as dagster_url:
        pg = make_url(dagster_url)
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
        env = {
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": pg.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(pg.port or 5432),
            "DAGSTER_PG_USER": pg.username or "postgres",
            "DAGSTER_PG_PASSWORD": pg.password or "",
            "DAGSTER_PG_DB": pg.database or "",
            "SHORTINTEREST_DATABASE_URL": warehouse_url,
            "SHORTINTEREST_WATCHLIST": str(watchlist),
            "SHORTINTEREST_UI_URL": UI_URL,
            "SHORTINTEREST_ALERT_INTERVAL": "1",
            "OPEND_RATE_LIMIT": "1000/1",
            **gateway.env(),
            **alert_env,
        }
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)  # this process reads the same instance through the same file
        services = ServiceGroup(tmp_path / "services", dict(os.environ))
        try:
            with reading_instance(home) as instance:
                alerting = Alerting(services, instance, warehouse_url, gateway)
                services.start("daemon", [_bin("dagster-daemon"), "run", "-w", "workspace.yaml"])
                # A run-status sensor starts from its first tick: what failed before it is not its business.
                for name in (RUN_SENSOR, CHECK_SENSOR):
                    alerting.wait(lambda n=name: bool(alerting.sensor_ticks(n)), f"{name} to tick", START_TIMEOUT)
                yield alerting
        finally:
            services.stop_all()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def evaluate_checks(alerting: Alerting, market: Market, codes: list[str]) -> None:
    """The market's checks alone, in this process, recorded in the daemon's instance as any run's are."""
    instance = alerting.instance
    known = set(instance.get_dynamic_partitions(partition_name(market)))
    instance.add_dynamic_partitions(partition_name(market), [c for c in codes if c not in known])
    result = dg.materialize(
        [short_interest_asset(market)],
        instance=instance,
        selection=dg.AssetSelection.checks_for_assets(asset_key_for(market)),
        resources={
            "warehouse": WarehouseResource(database_url=alerting.warehouse_url),
            "gateway": GatewayResource(port=1),  # not touched: only checks are selected
        },
    )
    assert result.success


def load(warehouse_url: str, gateway: GatewayProcess, codes: list[str]) -> None:
    upgrade(warehouse_url)
    settings = Settings(opend_host=gateway.host, opend_port=gateway.port, database_url=warehouse_url)
    with open_crawler(settings) as crawler:
        assert all(r.ok for r in crawler.crawl_codes(codes))


def kinds(receiver: Receiver) -> list[str]:
    return [str(post["kind"]) for post in receiver.posts]


def test_a_run_that_failed_for_good_alerts_once_by_webhook_and_email(
    tmp_path: Path,
    postgres_url: str,
    gateway_factory: Callable[..., GatewayProcess],
    receiver: Receiver,
    mailbox: Mailbox,
) -> None:
    gateway = gateway_factory("--rate", "off")
    alert_env = {
        "SHORTINTEREST_ALERT_WEBHOOK_URL": receiver.url,
        "SHORTINTEREST_ALERT_EMAIL_TO": "ops@example.com",
        "SHORTINTEREST_SMTP_HOST": "127.0.0.1",
        "SHORTINTEREST_SMTP_PORT": str(mailbox.port),
    }
    with start_alerting(tmp_path, postgres_url, gateway, alert_env, ["US.NOPE"]) as alerting:
        instance = alerting.instance
        instance.add_dynamic_partitions(partition_name(Market.US), ["US.NOPE"])
        request = run_request_for_codes(["US.NOPE"], Market.US)
        assert isinstance(request, dg.RunRequest)
        tags = {**request.tags, "dagster/max_retries": "1"}  # one retry, which fails too
        launched = alerting.services.run(
            [
                _bin("dagster"),
                "job",
                "launch",
                "-w",
                "workspace.yaml",
                "-j",
                refresh_job_name(Market.US),
                "--tags",
                json.dumps(tags),
            ]
        )
        assert launched.returncode == 0, launched.stdout

        alerting.wait(lambda: "run_failed" in kinds(receiver), "the run failure alert")
        runs = instance.get_runs(filters=dg.RunsFilter(job_name=refresh_job_name(Market.US)))
        assert len(runs) == 2 and all(r.status is dg.DagsterRunStatus.FAILURE for r in runs)
        retry = next(r for r in runs if r.tags.get("dagster/retry_number") == "1")
        alerting.wait(lambda: any("failed for good" in str(m["Subject"]) for m in mailbox.messages), "the e-mail")
        alerting.wait_for_ticks(RUN_SENSOR, 2)

    # The first attempt, retried, said nothing. (The runs' freshness check fails too: US.NOPE holds nothing.)
    (post,) = [p for p in receiver.posts if p["kind"] == "run_failed"]
    assert post["codes"] == ["US.NOPE"] and post["run_id"] == retry.run_id
    assert post["link"] == f"{UI_URL}/runs/{retry.run_id}"
    assert "failed for good" in post["text"] and "US.NOPE" in post["text"]
    (mail,) = [m for m in mailbox.messages if "failed for good" in str(m["Subject"])]
    assert mail["To"] == "ops@example.com"
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes) and post["text"].strip() in body.decode().replace("\r\n", "\n")


def test_a_failing_freshness_check_alerts_once_and_once_more_when_it_recovers(
    tmp_path: Path, postgres_url: str, gateway_factory: Callable[..., GatewayProcess], receiver: Receiver
) -> None:
    stale_gateway = gateway_factory("--rate", "off", "--as-of", (date.today() - timedelta(days=60)).isoformat())
    fresh_gateway = gateway_factory("--rate", "off")
    codes = ["HK.00700", "HK.09988"]
    load(postgres_url, stale_gateway, codes)
    alert_env = {"SHORTINTEREST_ALERT_WEBHOOK_URL": receiver.url}
    with start_alerting(tmp_path, postgres_url, stale_gateway, alert_env, codes) as alerting:
        evaluate_checks(alerting, Market.HK, codes)
        alerting.wait(lambda: "check_failed" in kinds(receiver), "the failing check's alert")
        failed = [p for p in receiver.posts if p["kind"] == "check_failed"]
        assert len(failed) == 1 and failed[0]["codes"] == codes
        assert (
            "hk_short_interest:freshness" in failed[0]["text"] and "2 code(s): HK.00700, HK.09988" in failed[0]["text"]
        )
        assert failed[0]["link"] == f"{UI_URL}/assets/hk_short_interest?view=checks"

        # Failing the same way again is not news.
        evaluate_checks(alerting, Market.HK, codes)
        alerting.wait_for_ticks(CHECK_SENSOR, 2)
        assert kinds(receiver) == ["check_failed"]

        load(postgres_url, fresh_gateway, codes)
        evaluate_checks(alerting, Market.HK, codes)
        alerting.wait(lambda: "check_recovered" in kinds(receiver), "the recovery message")
    assert kinds(receiver) == ["check_failed", "check_recovered"]
    assert "hk_short_interest:freshness passes again" in receiver.posts[1]["text"]


def test_an_undeliverable_alert_is_retried_logged_and_fails_nothing(
    tmp_path: Path, postgres_url: str, gateway_factory: Callable[..., GatewayProcess], receiver: Receiver
) -> None:
    receiver.status = 500
    gateway = gateway_factory("--rate", "off", "--as-of", (date.today() - timedelta(days=60)).isoformat())
    load(postgres_url, gateway, ["US.AAPL"])
    alert_env = {
        "SHORTINTEREST_ALERT_WEBHOOK_URL": receiver.url,
        "SHORTINTEREST_ALERT_EMAIL_TO": "ops@example.com",
        "SHORTINTEREST_SMTP_HOST": "127.0.0.1",
        "SHORTINTEREST_SMTP_PORT": str(free_port()),  # nothing listens: the mail server is down
        "SHORTINTEREST_SMTP_USER": "alerts",
        "SHORTINTEREST_SMTP_PASSWORD": SMTP_PASSWORD,
    }
    with start_alerting(tmp_path, postgres_url, gateway, alert_env, ["US.AAPL"]) as alerting:
        evaluate_checks(alerting, Market.US, ["US.AAPL"])
        alerting.wait(lambda: len(receiver.posts) >= ATTEMPTS, f"{ATTEMPTS} webhook attempts")
        alerting.wait_for_ticks(CHECK_SENSOR, 2)
        ticks = alerting.sensor_ticks(CHECK_SENSOR)
        logs = alerting.services.logs()
        records = [str(t) for t in ticks]
    # The sensor's tick log (what the UI shows under the tick) says what was not delivered and why.
    tick_logs = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "dagster_home").rglob("*") if p.is_file())
    assert "alert not delivered by webhook after 3 attempt(s): HTTPError: HTTP Error 500" in tick_logs
    assert "alert not delivered by e-mail after 3 attempt(s): ConnectionRefusedError" in tick_logs

    assert len(receiver.posts) == ATTEMPTS  # retried, then given up: the same failing state is not re-sent
    assert all(t.status is not TickStatus.FAILURE for t in ticks), [t.error for t in ticks if t.error]
    for secret in (WEBHOOK_SECRET, SMTP_PASSWORD):
        assert secret not in logs and secret not in tick_logs and not any(secret in r for r in records)


def test_a_sensor_whose_tick_fails_alerts_once_naming_it_and_the_error(
    tmp_path: Path, postgres_url: str, gateway_factory: Callable[..., GatewayProcess], receiver: Receiver
) -> None:
    gateway = gateway_factory("--rate", "off")
    # The warehouse is down (nothing listens on its port). The code location loads without it, but
    # watchlist_partitions follows a watchlist of markets through the securities table, so every tick of it
    # fails (the first comes as the daemon starts).
    down = free_port()
    alert_env = {
        "SHORTINTEREST_ALERT_WEBHOOK_URL": receiver.url,
        "SHORTINTEREST_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{down}/warehouse",
    }
    with start_alerting(tmp_path, postgres_url, gateway, alert_env, ["US.AAPL"], "markets: [US]\n") as alerting:
        alerting.wait(lambda: "tick_failed" in kinds(receiver), "the failing tick's alert")
        alerting.wait_for_ticks(TICK_SENSOR, 2)
    (post,) = [p for p in receiver.posts if p["kind"] == "tick_failed"]
    assert "sensor watchlist_partitions failed its tick" in post["text"], post["text"]
    assert f'connection to server at "127.0.0.1", port {down} failed' in post["text"], post["text"]
    assert post["link"] == f"{UI_URL}/automation"
