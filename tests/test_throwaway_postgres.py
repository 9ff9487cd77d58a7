"""The test session's own PostgreSQL: chosen, started once for all workers, and gone afterwards, even after kill -9.

The sessions under test are real pytest runs in child processes, on small test files written here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.databases import URL_VARIABLE, admin_url
from tests.support.postgres_cluster import BIN_VARIABLE, REPO_ROOT, find_server_programs
from tests.support.session_postgres import SessionServer, choose_server

SESSION_TIMEOUT = 120

# Each test reports the server it reached, then the test session's server is looked for afterwards.
REPORTING_TESTS = """
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.databases import fresh_postgres_database

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("n", range(4))
def test_reach_server(n):
    with fresh_postgres_database() as url:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            port = conn.execute(sa.text("SELECT inet_server_port()")).scalar()
            data_dir = conn.execute(sa.text("SHOW data_directory")).scalar()
        engine.dispose()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(os.environ["REPORT_DIR"], f"{n}.txt").write_text(f"{port} {data_dir} {worker}")
    if os.environ.get("HOLD_SECONDS"):
        import time
        time.sleep(float(os.environ["HOLD_SECONDS"]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _session(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """A pytest run over REPORTING_TESTS with only the throwaway-server plugin of this suite."""
    (tmp_path / "test_reporting.py").write_text(REPORTING_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "reports").mkdir()
    # Not this session's own server, workers or options.
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != URL_VARIABLE}
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "pytest", "-p", "tests.support.session_postgres", "-p", "no:cacheprovider"),
            *("-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), *args, str(tmp_path)),
        ],
        cwd=REPO_ROOT,
        env={**base, "PYTHONPATH": str(REPO_ROOT), "REPORT_DIR": str(tmp_path / "reports"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(session: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = session.communicate(timeout=SESSION_TIMEOUT)
    return session.returncode, output


def _reports(tmp_path: Path) -> list[tuple[int, Path, str]]:
    reports = []
    for report in sorted((tmp_path / "reports").glob("*.txt")):
        port, data_dir, worker = report.read_text().split()
        reports.append((int(port), Path(data_dir), worker))
    return reports


def test_throwaway_server_is_one_for_all_workers_and_gone_afterwards(tmp_path: Path) -> None:
    code, output = _finish(_session(tmp_path, "-n", "2", **{URL_VARIABLE: "throwaway"}))

    assert code == 0, output
    reports = _reports(tmp_path)
    assert len(reports) == 4, output
    assert {worker for _, _, worker in reports} == {"gw0", "gw1"}, output
    assert len({(port, data_dir) for port, data_dir, _ in reports}) == 1, "the workers reached different servers"
    port, data_dir, _ = reports[0]
    assert f"postgresql: throwaway server at 127.0.0.1:{port}, data in {data_dir.parent}" in output
    assert not _answers(port), "the throwaway server still runs after the session"
    assert not data_dir.parent.exists(), "the throwaway server's directory outlived the session"


def test_throwaway_server_goes_when_the_session_is_killed(tmp_path: Path) -> None:
    session = _session(tmp_path, "-p", "no:xdist", HOLD_SECONDS="600", **{URL_VARIABLE: "throwaway"})
    try:
        _wait_until(lambda: len(_reports(tmp_path)) == 1 or session.poll() is not None, "the first test to report")
        assert session.poll() is None, session.communicate()[0]
        (port, data_dir, _) = _reports(tmp_path)[0]
        assert _answers(port)
        if os.geteuid() == 0:
            assert data_dir.parent.stat().st_uid != 0, "as root, the server must run as an unprivileged user"
    finally:
        session.send_signal(signal.SIGKILL)
        session.communicate(timeout=SESSION_TIMEOUT)

    _wait_until(lambda: not _answers(port) and not data_dir.parent.exists(), "the server to be stopped and deleted")


def test_no_server_programs_stops_the_session_with_one_message(tmp_path: Path) -> None:
    empty = tmp_path / "no-programs"
    empty.mkdir()

    code, output = _finish(_session(tmp_path, "-n", "2", **{URL_VARIABLE: "throwaway", BIN_VARIABLE: str(empty)}))

    assert code == pytest.ExitCode.USAGE_ERROR, output
    assert "no PostgreSQL server programs (initdb and pg_ctl) found" in output
    assert "apt-get install postgresql" in output and "brew install postgresql@16" in output
    assert URL_VARIABLE in output
    assert output.count("ERROR") == 1 and "Traceback" not in output, output
    assert not _reports(tmp_path), "tests ran without a server"


def test_configured_url_that_does_not_answer_is_named_without_its_password(tmp_path: Path) -> None:
    port = _free_port()
    url = f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{port}/postgres"

    code, output = _finish(_session(tmp_path, **{URL_VARIABLE: url}))

    assert code == pytest.ExitCode.USAGE_ERROR, output
    assert f"{URL_VARIABLE} is postgresql+psycopg://postgres:***@127.0.0.1:{port}/postgres" in output
    assert "hunter2" not in output
    assert output.count("ERROR") == 1 and "Traceback" not in output, output
    assert not _reports(tmp_path)


def test_configured_value_that_is_no_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    code, output = _finish(_session(tmp_path, **{URL_VARIABLE: "postgres:hunter2@nowhere"}))

    assert code == pytest.ExitCode.USAGE_ERROR, output
    assert f"{URL_VARIABLE} is not a SQLAlchemy URL" in output
    assert "hunter2" not in output


def test_nothing_at_the_default_address_means_a_throwaway_server() -> None:
    choice = choose_server(None, default_url=f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/postgres")

    assert isinstance(choice, str) and choice.startswith("nothing usable at"), choice


def test_a_superuser_server_at_the_default_address_is_used() -> None:
    choice = choose_server(None, default_url=admin_url())

    assert choice == SessionServer(admin_url(), f"{admin_url()} (the default address)")


def _fake_programs(directory: Path, *names: str) -> Path:
    directory.mkdir(parents=True)
    for name in names:
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)
    return directory


def test_program_search_takes_the_newest_version_with_both_programs(tmp_path: Path) -> None:
    _fake_programs(tmp_path / "lib/9.6/bin", "initdb", "pg_ctl")
    newest_with_both = _fake_programs(tmp_path / "lib/16/bin", "initdb", "pg_ctl")
    _fake_programs(tmp_path / "lib/17/bin", "initdb")  # a half-installed newer version

    assert find_server_programs([str(tmp_path / "lib/*/bin")]) == newest_with_both.resolve()


def test_program_search_follows_a_link_on_path_to_the_programs_home(tmp_path: Path) -> None:
    home = _fake_programs(tmp_path / "pg/bin", "initdb", "pg_ctl", "postgres")
    on_path = tmp_path / "path"
    on_path.mkdir()
    (on_path / "initdb").symlink_to(home / "initdb")

    assert find_server_programs([str(tmp_path / "nothing-here"), str(on_path)]) == home.resolve()
    assert find_server_programs([str(tmp_path / "nothing-here")]) is None
