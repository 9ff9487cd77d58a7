"""Throwaway PostgreSQL servers: initdb into a temporary directory, start on a free loopback port, delete.

The test session runs one when no server is at hand (tests/support/session_postgres.py), and a test that must
stop and start a server under a running load gets one of its own. Each is held by a keeper process
(tests/support/postgres_keeper.py) that stops and deletes it once the process that asked for it is gone, so
a session killed outright leaves nothing running or on disk. initdb and the server refuse to run as root, so
as root they run as the `postgres` OS user (or `nobody` where there is none) through runuser.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Directories to look for initdb and pg_ctl in instead of PATH and the usual places (os.pathsep-separated).
BIN_VARIABLE = "SHORTINTEREST_TEST_PG_BIN"
# Where packagers put the server programs, which Debian and Homebrew keep off PATH; newest version first.
USUAL_PLACES = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # PGDG packages for RHEL, Fedora
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew on Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew on Intel
    "/opt/homebrew/opt/postgresql/bin",
    "/usr/local/opt/postgresql/bin",
)
PROGRAMS = ("initdb", "pg_ctl")
# Bounds on how long the server may take to start or stop before the caller fails instead of hanging.
PG_CTL_TIMEOUT = 60
SERVER_OPTIONS = "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class ClusterError(RuntimeError):
    """A throwaway server could not be created, started or stopped; the message carries the server log."""


class NoServerPrograms(ClusterError):
    """initdb and pg_ctl are nowhere to be found."""


def search_places() -> list[str]:
    """Where to look for the server programs: SHORTINTEREST_TEST_PG_BIN if set, else PATH and the usual places."""
    override = os.environ.get(BIN_VARIABLE)
    if override is not None:
        return [place for place in override.split(os.pathsep) if place]
    return [*(p for p in os.environ.get("PATH", "").split(os.pathsep) if p), *_homebrew_places(), *USUAL_PLACES]


def _homebrew_places() -> list[str]:
    prefix = os.environ.get("HOMEBREW_PREFIX")
    return [f"{prefix}/opt/postgresql@*/bin"] if prefix else []


def find_server_programs(places: Sequence[str]) -> Path | None:
    """The first place (glob patterns: newest version first) holding both initdb and pg_ctl, as a real directory."""
    for place in places:
        for directory in sorted(glob.glob(place), key=_version_key, reverse=True):
            initdb = Path(directory, "initdb")
            if not (os.access(initdb, os.X_OK) and initdb.is_file()):
                continue
            # A symlink on PATH (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb): use its home.
            bin_dir = initdb.resolve().parent
            if all(os.access(bin_dir / program, os.X_OK) for program in PROGRAMS):
                return bin_dir
    return None


def require_server_programs() -> Path:
    places = search_places()
    found = find_server_programs(places)
    if found is None:
        where = (
            f"in {BIN_VARIABLE} ({os.pathsep.join(places)})"
            if BIN_VARIABLE in os.environ
            else f"on PATH or in {', '.join(USUAL_PLACES)}"
        )
        raise NoServerPrograms(f"no PostgreSQL server programs ({' and '.join(PROGRAMS)}) found {where}")
    return found


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(number) for number in re.findall(r"\d+", path))


def server_os_user() -> str | None:
    """The unprivileged user the server runs as when we are root; None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "nobody"
    return "postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class PostgresCluster:
    bin_dir: Path
    root: Path  # owned by the server's OS user: data directory, socket directory, log
    port: int
    os_user: str | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} {SERVER_OPTIONS}"
        self._pg_ctl("start", "-l", str(self.log_file), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def _pg_ctl(self, action: str, *args: str) -> None:
        self.run(
            [str(self.bin_dir / "pg_ctl"), action, "-D", str(self.data_dir), "-w", "-t", str(PG_CTL_TIMEOUT), *args],
            what=f"pg_ctl {action}",
        )

    def run(self, cmd: Sequence[str], *, what: str) -> None:
        """Run a server program as the server's OS user, from the cluster's directory (ours may be closed to it)."""
        argv = ["runuser", "-u", self.os_user, "--", *cmd] if self.os_user else list(cmd)
        try:
            done = subprocess.run(
                argv, cwd=self.root, capture_output=True, text=True, timeout=PG_CTL_TIMEOUT + 30, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"{what} did not finish within {exc.timeout:g} s") from None
        if done.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""
            raise ClusterError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}")


def create_cluster(bin_dir: Path) -> PostgresCluster:
    """initdb a new cluster in a new temporary directory and start it on a free port; delete it if that fails."""
    # Not under pytest's tmp_path: its directories are private to root, and the server user must get in.
    root = Path(tempfile.mkdtemp(prefix="shortinterest-pg-"))
    os_user = server_os_user()
    try:
        if os_user:
            shutil.chown(root, user=os_user)
        cluster = PostgresCluster(bin_dir, root, 0, os_user)
        cluster.run(
            [
                *(str(bin_dir / "initdb"), "-D", str(cluster.data_dir), "-U", "postgres", "-A", "trust"),
                *("-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"),
            ],
            what="initdb",
        )
        attempts = 3
        while True:
            cluster = replace(cluster, port=_free_port())
            try:
                cluster.start()
                return cluster
            except ClusterError as exc:
                # Another program may take the free port between our look and the server's bind: try another.
                attempts -= 1
                if attempts == 0 or "could not bind" not in str(exc):
                    raise
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def remove_cluster(cluster: PostgresCluster) -> None:
    """Stop the server if it runs and delete its directory."""
    with contextlib.suppress(ClusterError):
        if (cluster.data_dir / "postmaster.pid").exists():
            cluster.stop("immediate")
    shutil.rmtree(cluster.root, ignore_errors=True)


def cluster_to_json(cluster: PostgresCluster) -> str:
    return json.dumps({key: str(value) if isinstance(value, Path) else value for key, value in asdict(cluster).items()})


def cluster_from_json(data: dict[str, object]) -> PostgresCluster:
    return PostgresCluster(
        bin_dir=Path(str(data["bin_dir"])),
        root=Path(str(data["root"])),
        port=int(str(data["port"])),
        os_user=None if data["os_user"] is None else str(data["os_user"]),
    )


@contextmanager
def kept_cluster(bin_dir: Path | None = None) -> Iterator[PostgresCluster]:
    """A started throwaway cluster held by a keeper process: stopped and deleted on exit, or when we die."""
    bin_dir = bin_dir or require_server_programs()
    keeper = subprocess.Popen(
        [sys.executable, "-m", "tests.support.postgres_keeper", str(bin_dir)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # Out of our process group: a Ctrl-C reaches us, and we release the keeper, instead of killing it mid-way.
        start_new_session=True,
    )
    assert keeper.stdin is not None and keeper.stdout is not None
    try:
        reply = _read_reply(keeper, "start")
        cluster = cluster_from_json(reply)
        yield cluster
    finally:
        keeper.stdin.close()
        try:
            keeper.wait(timeout=PG_CTL_TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            keeper.kill()
            keeper.wait()
        keeper.stdout.close()


def _read_reply(keeper: subprocess.Popen[str], what: str) -> dict[str, object]:
    assert keeper.stdout is not None
    line = keeper.stdout.readline()
    if not line:
        raise ClusterError(f"the throwaway server's keeper exited ({keeper.wait()}) before it could {what} it")
    reply = json.loads(line)
    if "error" in reply:
        raise ClusterError(str(reply["error"]))
    return dict(reply)


@contextmanager
def private_postgres_cluster() -> Iterator[PostgresCluster]:
    """A server of the caller's own, which it may stop and start; stopped and deleted whatever happens."""
    with kept_cluster() as cluster:
        yield cluster
