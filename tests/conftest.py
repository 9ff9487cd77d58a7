from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from xdist.scheduler import LoadScopeScheduling

from pipelines.warehouse import create_engine_for, upgrade
from tests.support.databases import fresh_postgres_database
from tests.support.futu_api import official_futu
from tests.support.gateway import GatewayProcess, start_gateway
from tests.support.warehouse_templates import WarehouseTemplates

# Chooses the session's PostgreSQL server, starting a throwaway one when none is at hand.
pytest_plugins = ("tests.support.session_postgres",)


# Slow tests that take at least this long (`slow(seconds=N)`) start first, so none of them ends the suite alone.
LEADING_SECONDS = 30.0
# What a slow test without `seconds` and a fast test take, for interleaving them by time (their medians, roughly).
SLOW_DEFAULT_SECONDS = 3.0
FAST_SECONDS = 0.35


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order for xdist on two cores: the longest tests first, then the other slow ones interleaved by time with
    the first three quarters of the fast ones, the rest of the fast ones last.

    Slow tests mostly wait (rate-limit windows, outages, daemons) while fast ones mostly compute: mixed, every
    worker alternates between the two and the cores stay busy, where slow ones run side by side leave them idle
    and fast ones side by side queue for them. Interleaving by time, not by count, keeps the mix even: a 20-second
    test is followed by some fifty fast ones before the next slow test, a 3-second one by a handful. Short tests at
    the end fill in while the last long ones finish. The order is the same in every worker, as xdist needs.
    """

    def seconds(item: pytest.Item) -> float | None:
        slow = item.get_closest_marker("slow")
        return None if slow is None else float(slow.kwargs.get("seconds", SLOW_DEFAULT_SECONDS))

    slow = sorted((item for item in items if seconds(item) is not None), key=lambda item: -(seconds(item) or 0.0))
    fast = [item for item in items if seconds(item) is None]
    leading = [item for item in slow if (seconds(item) or 0.0) >= LEADING_SECONDS]
    spread = slow[len(leading) :]
    body, tail = fast[: len(fast) * 3 // 4], fast[len(fast) * 3 // 4 :]
    # Merge `spread` into `body` so that both advance at the same pace, each measured in its share of the time.
    slow_total = sum(seconds(item) or 0.0 for item in spread) or 1.0
    fast_total = len(body) * FAST_SECONDS or 1.0
    ordered, slow_done, j = list(leading), 0.0, 0
    for item in spread:
        while j < len(body) and j * FAST_SECONDS / fast_total < slow_done / slow_total:
            ordered.append(body[j])
            j += 1
        ordered.append(item)
        slow_done += seconds(item) or 0.0
    items[:] = ordered + body[j:] + tail


# Modules whose module-scoped fixtures start services: xdist gives each of them to one worker, where the fixtures
# start once, instead of once in every worker that happens to run one of its tests.
ONE_WORKER_MODULES = (
    "tests/test_auth_proxy.py",  # nginx and two Dagster webservers
    "tests/test_quote_context_differential.py",  # futu-api and two gateways
    "tests/test_futu_interop.py",
    "tests/test_listing_differential.py",
    "tests/test_docs_warehouse.py",  # a warehouse loaded from a gateway for the docs' examples
)


class _ModulesOnOneWorker(LoadScopeScheduling):
    """xdist's `load`, test by test in the suite's order, but ONE_WORKER_MODULES' tests as one unit each.

    (`--dist loadgroup` would do this from a mark, but its worker-side renaming of node ids is lost on pytest 9.)
    """

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return module if module in ONE_WORKER_MODULES else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadScopeScheduling | None:
    if config.getoption("dist") != "load":
        return None  # a `--dist` asked for on the command line
    config.option.loadscopereorder = False  # keep the order pytest_collection_modifyitems chose
    return _ModulesOnOneWorker(config, log)


@pytest.fixture(scope="module")
def futu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The official futu-api module (the independent check on the simulator), its files in a home of its own."""
    with official_futu(tmp_path_factory.mktemp("futu-home")) as module:
        yield module


@pytest.fixture(scope="session")
def warehouse_templates() -> Iterator[WarehouseTemplates]:
    """This worker's migrated warehouses, copied for each test that asks for a migrated one."""
    templates = WarehouseTemplates()
    yield templates
    templates.close()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, warehouse_templates: WarehouseTemplates) -> Iterator[str]:
    """A new PostgreSQL database for this test: empty, or already migrated for a test that asks for `pg_engine`."""
    template = warehouse_templates.postgres() if "pg_engine" in request.fixturenames else None
    with fresh_postgres_database(template=template) as url:
        yield url


@contextmanager
def _engine_on(url: str) -> Iterator[sa.Engine]:
    engine = create_engine_for(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def migrated_engine(url: str) -> Iterator[sa.Engine]:
    """An engine on the database at `url`, migrated to the latest revision first."""
    upgrade(url)
    with _engine_on(url) as engine:
        yield engine


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    """A new PostgreSQL database, migrated (a copy of this worker's migrated template)."""
    with _engine_on(postgres_url) as engine:
        yield engine


@pytest.fixture
def warehouse_engine(database_url: str) -> Iterator[sa.Engine]:
    """A new, migrated warehouse: once on PostgreSQL and once on the embedded SQLite default."""
    with _engine_on(database_url) as engine:
        yield engine


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, warehouse_templates: WarehouseTemplates
) -> Iterator[str]:
    """Run the test once against PostgreSQL and once against the embedded SQLite default; the warehouse is
    empty, or already migrated for a test that asks for `warehouse_engine`."""
    migrated = "warehouse_engine" in request.fixturenames
    if request.param == "postgres":
        with fresh_postgres_database(template=warehouse_templates.postgres() if migrated else None) as url:
            yield url
    else:
        path = tmp_path / "warehouse.db"
        if migrated:
            warehouse_templates.copy_sqlite(path)
        yield f"sqlite:///{path}"


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gateway_factory() -> Iterator[Callable[..., GatewayProcess]]:
    """Start simulated gateway processes (`gateway_factory("--rate", "6/3")`); all are stopped afterwards."""
    started: list[GatewayProcess] = []

    def start(*args: str, extra: Sequence[str] = ()) -> GatewayProcess:
        gw = start_gateway([*args, *extra])
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayProcess]) -> GatewayProcess:
    """A simulated gateway with its rate limit off, for tests that are not about the limit."""
    return gateway_factory("--rate", "off")
