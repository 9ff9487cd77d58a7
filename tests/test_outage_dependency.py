"""Outage handling in one process: which failures are outages, and how callers share one prober.

The coordination tests drive `Dependency` with plain callables standing in for "the thing is down / up
again"; the loads that ride out real gateway and PostgreSQL outages are in test_outage_gateway.py and
test_faults_postgres_restart.py.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.config import ConfigError, Settings
from pipelines.crawl import outage
from pipelines.crawl.outage import Dependency, DependencyDownError, OutagePolicy, format_duration
from pipelines.crawl.retry import is_gateway_outage, is_transient, is_warehouse_outage
from proto_client.client import OpenDClient
from proto_client.errors import GatewayConnectionError, ProtocolError, QuoteLoginError, RequestError

FAST = OutagePolicy(timeout=5.0, base=0.01, cap=0.05)


class Down(Exception):
    """The stand-in outage error of these tests."""


class Switch:
    """A dependency that is down until `up()`; counts probes."""

    def __init__(self) -> None:
        self.is_up = threading.Event()
        self.probes = 0

    def probe(self) -> None:
        self.probes += 1
        if not self.is_up.is_set():
            raise Down("refused")

    def use(self) -> str:
        if not self.is_up.is_set():
            raise Down("refused")
        return "ok"


def dependency(switch: Switch, lines: list[str], policy: OutagePolicy = FAST) -> Dependency:
    return Dependency(
        "the thing",
        is_outage=lambda exc: isinstance(exc, Down),
        probe=switch.probe,
        policy=policy,
        notify=lines.append,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_callers_wait_for_one_prober_and_resume_together() -> None:
    switch, lines = Switch(), []
    dep = dependency(switch, lines)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(dep.call(switch.use))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    probes_while_down = switch.probes
    switch.is_up.set()
    for thread in threads:
        thread.join(timeout=10)

    assert errors == [] and results == ["ok"] * 4
    # One prober at capped backoff (0.025-0.05 s apart), not four callers in a loop.
    assert 3 <= probes_while_down <= 0.5 / 0.025 + 2
    assert len(lines) == 2, lines
    assert "the thing is down since" in lines[0] and "(refused)" in lines[0] and "waits for it until" in lines[0]
    assert "the thing answers again after" in lines[1]
    assert not dep.down and dep.outages == 1


def test_past_the_bound_every_caller_gives_up_naming_the_dependency() -> None:
    switch, lines = Switch(), []
    dep = dependency(switch, lines, OutagePolicy(timeout=0.3, base=0.01, cap=0.05))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            dep.call(switch.use)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(errors) == 3 and all(isinstance(e, DependencyDownError) for e in errors)
    error = errors[0]
    assert isinstance(error, DependencyDownError)
    assert error.dependency == "the thing" and error.down_for >= 0.3 and error.last_error == "refused"
    assert str(error).startswith("the thing has been down for 0.3 s (since ")
    # Later callers are told at once instead of waiting all over again.
    with pytest.raises(DependencyDownError):
        dep.wait_until_up()
    assert len(lines) == 1, lines


def test_a_probe_that_answers_while_the_action_still_fails_keeps_the_same_outage() -> None:
    switch, lines = Switch(), []
    switch.is_up.set()  # the probe answers...
    failures = iter(range(3))

    def action() -> str:
        if next(failures, None) is not None:  # ...but the request itself fails three more times
            raise Down("retType -100")
        return "ok"

    dep = dependency(switch, lines)
    assert dep.call(action) == "ok"

    assert switch.probes == 3 and dep.outages == 1
    assert len(lines) == 2 and "answers again" in lines[1], lines


def test_other_failures_propagate_at_once() -> None:
    switch, lines = Switch(), []
    dep = dependency(switch, lines)

    def action() -> None:
        raise ValueError("unknown code")

    with pytest.raises(ValueError, match="unknown code"):
        dep.call(action)
    assert switch.probes == 0 and lines == []


def test_gateway_outages_are_told_from_per_code_failures() -> None:
    with pytest.raises(GatewayConnectionError) as refused:
        OpenDClient("127.0.0.1", free_port(), connect_timeout=2).connect()
    assert is_gateway_outage(refused.value)
    assert is_gateway_outage(RequestError(3249, -100, "timeout"))
    assert is_gateway_outage(RequestError(3249, -200, "disconnected"))
    assert is_gateway_outage(QuoteLoginError("not logged in"))
    # Per code, or per request: not an outage.
    assert not is_gateway_outage(RequestError(3249, -1, "unknown stock"))
    assert not is_gateway_outage(RequestError(3249, -1, "请求频率太高"))
    assert is_transient(RequestError(3249, -1, "请求频率太高"))
    assert not is_gateway_outage(ProtocolError("next_key does not decrease"))


def test_warehouse_outages_are_told_from_per_code_failures(postgres_url: str, tmp_path: Path) -> None:
    down = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(sa.exc.OperationalError) as refused:
        down.connect()
    assert is_warehouse_outage(refused.value)

    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (k int PRIMARY KEY)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        with pytest.raises(sa.exc.IntegrityError) as duplicate, engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert not is_warehouse_outage(duplicate.value)
        with pytest.raises(sa.exc.OperationalError) as lock_timeout, engine.connect() as holder:
            holder.execute(sa.text("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"))
            with engine.begin() as conn:
                conn.execute(sa.text("SET LOCAL lock_timeout = 50"))
                conn.execute(sa.text("SELECT * FROM t"))
        # A lock timeout is the statement's trouble, retried per request; the server is fine.
        assert not is_warehouse_outage(lock_timeout.value) and is_transient(lock_timeout.value)
    finally:
        engine.dispose()
    # SQLite has no server to lose: its errors are never an outage.
    lite = sa.create_engine(f"sqlite:///{tmp_path}/w.db")
    try:
        with pytest.raises(sa.exc.OperationalError) as missing, lite.connect() as conn:
            conn.execute(sa.text("SELECT * FROM missing"))
        assert not is_warehouse_outage(missing.value)
    finally:
        lite.dispose()


def test_outage_timeout_setting() -> None:
    assert Settings.from_env({}).outage_timeout == 600
    assert Settings.from_env({"SHORTINTEREST_OUTAGE_TIMEOUT": "30"}).outage_timeout == 30
    assert Settings.from_env({"SHORTINTEREST_OUTAGE_TIMEOUT": "0"}).outage_timeout == 0
    for bad in ("soon", "-1", "inf"):
        with pytest.raises(ConfigError, match=f"SHORTINTEREST_OUTAGE_TIMEOUT={bad!r}"):
            Settings.from_env({"SHORTINTEREST_OUTAGE_TIMEOUT": bad})


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.3, "0.3 s"), (45, "45 s"), (185, "3 min 05 s"), (3720, "1 h 02 min")]
)
def test_durations_read_as_people_write_them(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_a_shorter_bound_probes_and_reports_more_often() -> None:
    # The default bound keeps the documented 15 s probe cap and one still-down line a minute; longer ones too.
    for timeout in (600.0, 3600.0):
        policy = OutagePolicy.waiting_at_most(timeout)
        assert (policy.timeout, policy.cap, policy.report_every) == (timeout, 15.0, 60.0)
    # A minute's bound: probes at most 1.5 s apart, a line every 6 s; never below the first probe or a second.
    assert OutagePolicy.waiting_at_most(60) == OutagePolicy(timeout=60, cap=1.5, report_every=6.0)
    assert OutagePolicy.waiting_at_most(2) == OutagePolicy(timeout=2, cap=0.5, report_every=1.0)


class FakeClock:
    """Stands in for the `time` module in pipelines.crawl.outage: sleeping moves the clock on at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_still_down_lines_keep_the_outages_clock_when_one_comes_late(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lines due 6 s and 12 s into an outage of 13.4 s; probes at most a second apart. The probe that brings the
    # first line takes 1.5 s, so that line is late: the second must still come at the first probe past 12 s.
    clock = FakeClock()
    monkeypatch.setattr(outage, "time", clock)
    start = clock.now
    lines: list[str] = []
    slowed: list[float] = []

    def probe() -> None:
        elapsed = clock.now - start
        if elapsed >= 13.4:
            return
        if elapsed >= 6 and not slowed:
            slowed.append(elapsed)
            clock.now += 1.5
        raise Down("refused")

    def action() -> str:
        if clock.now - start < 13.4:
            raise Down("refused")
        return "ok"

    policy = OutagePolicy(timeout=60.0, base=1.0, cap=1.0, report_every=6.0)
    dep = Dependency(
        "the thing", is_outage=lambda exc: isinstance(exc, Down), probe=probe, policy=policy, notify=lines.append
    )
    assert dep.call(action) == "ok"

    still = [int(m) for line in lines for m in re.findall(r"still down after (\d+) s", line)]
    assert len(still) == 2, lines
    assert 7 <= still[0] <= 9 and 12 <= still[1] <= 13, lines
