"""A private, throwaway PostgreSQL server that a test may stop and start under a running load.

The shared server at 127.0.0.1:5432 serves every other test at once, so it can never be restarted;
this one lives in a temporary directory on its own port and is deleted afterwards. initdb and the
server refuse to run as root, so as root they run as the `postgres` OS user through runuser.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

OS_USER = "postgres"
# Bounds on how long the server may take to start or stop before the test fails instead of hanging.
PG_CTL_TIMEOUT = 60


class ClusterError(RuntimeError):
    """The private cluster could not be created, started or stopped; the message carries the server log."""


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian layout: /usr/lib/postgresql/VERSION/bin)."""
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    if not candidates:
        raise ClusterError("no PostgreSQL server binaries found (looked for /usr/lib/postgresql/*/bin/initdb)")
    return max(candidates, key=lambda p: _version_key(p.parent.name))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit()) or (0,)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class PostgresCluster:
    bin_dir: Path
    root: Path  # owned by the server's OS user: data directory, socket directory, log
    port: int

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
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._pg_ctl("start", "-l", str(self.log_file), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def _pg_ctl(self, action: str, *args: str) -> None:
        _run_as_server_user(
            [str(self.bin_dir / "pg_ctl"), action, "-D", str(self.data_dir), "-w", "-t", str(PG_CTL_TIMEOUT), *args],
            what=f"pg_ctl {action}",
            log_file=self.log_file,
        )


def _as_server_user(cmd: Sequence[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *cmd] if os.geteuid() == 0 else list(cmd)


def _run_as_server_user(cmd: Sequence[str], *, what: str, log_file: Path | None = None) -> None:
    try:
        done = subprocess.run(
            _as_server_user(cmd), capture_output=True, text=True, timeout=PG_CTL_TIMEOUT + 30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"{what} did not finish within {exc.timeout:g} s") from None
    if done.returncode != 0:
        log = log_file.read_text(errors="replace")[-4000:] if log_file is not None and log_file.exists() else ""
        raise ClusterError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}")


@contextmanager
def private_postgres_cluster() -> Iterator[PostgresCluster]:
    """initdb a new cluster on a free port, start it, yield it, and stop and delete it whatever happens."""
    bin_dir = postgres_bin_dir()
    # Not under pytest's tmp_path: its directories are private to root, and the server user must get in.
    root = Path(tempfile.mkdtemp(prefix="si-pgcluster-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, user=OS_USER, group=None)
        _run_as_server_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(root / "data"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            what="initdb",
        )
        cluster = PostgresCluster(bin_dir, root, _free_port())
        cluster.start()
        try:
            yield cluster
        finally:
            # Already stopped by the test, or never came back: the directory goes anyway.
            with contextlib.suppress(ClusterError):
                cluster.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
