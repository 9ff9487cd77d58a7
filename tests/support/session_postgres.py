"""The PostgreSQL server the test session uses, chosen once by the controlling pytest process.

- SHORTINTEREST_TEST_PG_URL set to a URL: that server, which must answer to a superuser; if it does not,
  the session stops before any test with one message naming the URL (its password hidden).
- SHORTINTEREST_TEST_PG_URL unset: the server at the default address if a superuser gets in there; if none
  does, a throwaway server of the session's own (tests/support/postgres_cluster.py).
- SHORTINTEREST_TEST_PG_URL=throwaway: the throwaway server, whatever answers at the default address.

The throwaway server is started once, before xdist starts its workers, and reaches them (and every process a
test starts) through SHORTINTEREST_TEST_PG_URL in the environment they inherit. With no server programs to
start one, the session stops at once with one message on how to get them.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from tests.support.databases import DEFAULT_ADMIN_URL, URL_VARIABLE
from tests.support.postgres_cluster import ClusterError, NoServerPrograms, kept_cluster, require_server_programs

THROWAWAY = "throwaway"
CONNECT_TIMEOUT_SECONDS = 5
HOW_TO_GET_PROGRAMS = (
    "Install them (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@16) and the tests "
    "start a throwaway server of their own, or set SHORTINTEREST_TEST_PG_URL to the URL of a running server and "
    "a superuser on it (postgresql+psycopg://postgres@HOST:5432/postgres)."
)


@dataclass(frozen=True, slots=True)
class SessionServer:
    url: str
    description: str  # for the report header


@dataclass(slots=True)
class _SessionState:
    server: SessionServer
    resources: ExitStack
    previous_url: str | None


_STATE = pytest.StashKey[_SessionState]()


def shown_url(url: str) -> str:
    """The URL as it may be printed: with its password, if any, masked."""
    return make_url(url).render_as_string(hide_password=True)


def unusable_because(url: str) -> str | None:
    """Why the tests cannot use the server at `url` as their superuser connection, or None if they can."""
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    try:
        with engine.connect() as conn:
            superuser = conn.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
            user = conn.execute(sa.text("SELECT current_user")).scalar()
    except DBAPIError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None if superuser else f"the user {user} is not a superuser"


def choose_server(configured: str | None, default_url: str = DEFAULT_ADMIN_URL) -> SessionServer | str:
    """The server to use, or the reason to start a throwaway one; a configured URL that fails stops the session."""
    if configured == THROWAWAY:
        return f"{URL_VARIABLE}={THROWAWAY}"
    if configured:
        try:
            shown = shown_url(configured)
            problem = unusable_because(configured)
        except (ArgumentError, NoSuchModuleError, ValueError):
            raise pytest.UsageError(
                f"{URL_VARIABLE} is not a SQLAlchemy URL of a PostgreSQL server "
                "(expected postgresql+psycopg://USER[:PASSWORD]@HOST:PORT/DATABASE)."
            ) from None
        if problem:
            raise pytest.UsageError(
                f"{URL_VARIABLE} is {shown}, which the tests cannot use: {problem}. Start that server, correct the "
                f"URL, or unset {URL_VARIABLE} to let the tests start a throwaway PostgreSQL of their own."
            )
        return SessionServer(configured, f"{shown} (from {URL_VARIABLE})")
    problem = unusable_because(default_url)
    if problem is None:
        return SessionServer(default_url, f"{shown_url(default_url)} (the default address)")
    return f"nothing usable at {shown_url(default_url)}: {problem}"


def _start_throwaway(reason: str, resources: ExitStack) -> SessionServer:
    try:
        bin_dir = require_server_programs()
    except NoServerPrograms as exc:
        raise pytest.UsageError(f"The tests need PostgreSQL, and {reason}; {exc}. {HOW_TO_GET_PROGRAMS}") from None
    try:
        cluster = resources.enter_context(kept_cluster(bin_dir))
    except ClusterError as exc:
        raise pytest.UsageError(f"Could not start a throwaway PostgreSQL from {bin_dir}: {exc}") from None
    description = (
        f"throwaway server at 127.0.0.1:{cluster.port}, data in {cluster.root} (deleted at the end), "
        f"programs from {bin_dir}; {reason}"
    )
    return SessionServer(cluster.url, description)


def _runs_no_tests(config: pytest.Config) -> bool:
    option = config.option
    return any(getattr(option, name, False) for name in ("help", "collectonly", "showfixtures", "markers"))


def pytest_configure(config: pytest.Config) -> None:
    # xdist workers inherit the controller's choice through the environment.
    if hasattr(config, "workerinput") or _runs_no_tests(config):
        return
    previous = os.environ.get(URL_VARIABLE)
    resources = ExitStack()
    choice = choose_server(previous)
    server = choice if isinstance(choice, SessionServer) else _start_throwaway(choice, resources)
    os.environ[URL_VARIABLE] = server.url
    config.stash[_STATE] = _SessionState(server, resources, previous)


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(_STATE, None)
    return None if state is None else f"postgresql: {state.server.description}"


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    del config.stash[_STATE]
    if state.previous_url is None:
        os.environ.pop(URL_VARIABLE, None)
    else:
        os.environ[URL_VARIABLE] = state.previous_url
    state.resources.close()
