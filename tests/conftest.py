from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.warehouse import create_engine_for, upgrade
from tests.support.databases import fresh_postgres_database
from tests.support.gateway import GatewayProcess, start_gateway

# Chooses the session's PostgreSQL server, starting a throwaway one when none is at hand.
pytest_plugins = ("tests.support.session_postgres",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first, the longest (`slow(seconds=N)`) leading: under xdist each long one starts at once beside
    the short ones, instead of a worker starting it last and the suite waiting on it alone. The order is the
    same in every worker, as xdist needs."""

    def order(item: pytest.Item) -> tuple[bool, float]:
        slow = item.get_closest_marker("slow")
        return slow is None, -float(slow.kwargs.get("seconds", 0)) if slow else 0.0

    items.sort(key=order)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test."""
    with fresh_postgres_database() as url:
        yield url


@contextmanager
def migrated_engine(url: str) -> Iterator[sa.Engine]:
    """An engine on the database at `url`, migrated to the latest revision first."""
    upgrade(url)
    engine = create_engine_for(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    """A new PostgreSQL database, migrated."""
    with migrated_engine(postgres_url) as engine:
        yield engine


@pytest.fixture
def warehouse_engine(database_url: str) -> Iterator[sa.Engine]:
    """A new, migrated warehouse: once on PostgreSQL and once on the embedded SQLite default."""
    with migrated_engine(database_url) as engine:
        yield engine


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Run the test once against PostgreSQL and once against the embedded SQLite default."""
    if request.param == "postgres":
        with fresh_postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"


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
