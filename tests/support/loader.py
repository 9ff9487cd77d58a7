"""Run `shortinterest load` as a real process, the way a scheduler does, so it can be killed or starved.

Output goes to files rather than pipes: a loader that prints a lot must never block on a pipe the test
is not reading, and a killed loader's last words stay readable. The exit is reaped with wait4 so the
test learns the process's peak resident memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.warehouse import upgrade
from tests.support.gateway import GatewayProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
# Loads in these tests take seconds; this only turns a hang into a failure instead of a stuck suite.
DEFAULT_TIMEOUT = 90.0


@dataclass(frozen=True, slots=True)
class LoadResult:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_bytes: int

    @property
    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


class LoadProcess:
    """A `shortinterest load` child process with its output captured in files under `workdir`."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.monotonic_ns()}"
        self._stdout_path = workdir / f"load-{stamp}.out"
        self._stderr_path = workdir / f"load-{stamp}.err"
        with self._stdout_path.open("wb") as out, self._stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pipelines.cli", "load", *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=dict(env),
                cwd=REPO_ROOT,
            )
        self._result: LoadResult | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout_so_far(self) -> str:
        """What the loader has printed yet; it writes unbuffered, so progress shows as it happens."""
        return self._read(self._stdout_path)

    def running(self) -> bool:
        return self._result is None and self.proc.poll() is None

    def kill(self) -> LoadResult:
        """SIGKILL, as the OOM killer or a lost node would: no cleanup code runs."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.wait(timeout=30)

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> LoadResult:
        """Reap the process (killing it if it outlives `timeout`, then failing) and return what it did."""
        if self._result is not None:
            return self._result
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait(timeout=30)
                raise AssertionError(
                    f"load did not finish within {timeout:g} s (hung?)\n{self._read(self._stdout_path)}\n"
                    f"{self._read(self._stderr_path)}"
                )
            time.sleep(0.05)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        # Linux reports ru_maxrss in kilobytes.
        self._result = LoadResult(
            self.proc.returncode,
            self._read(self._stdout_path),
            self._read(self._stderr_path),
            usage.ru_maxrss * 1024,
        )
        return self._result

    @staticmethod
    def _read(path: Path) -> str:
        return path.read_text(encoding="utf-8", errors="replace")


def loader_env(
    gateway: GatewayProcess, database_url: str, *, rate: str = "1000/1", watchlist: Path | None = None
) -> dict[str, str]:
    """The environment a scheduled load would have, pointed at this test's gateway and warehouse."""
    env = {
        **os.environ,
        **gateway.env(),
        "OPEND_RATE_LIMIT": rate,
        "SHORTINTEREST_DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
    }
    if watchlist is not None:
        env["SHORTINTEREST_WATCHLIST"] = str(watchlist)
    return env


def start_load(env: Mapping[str, str], workdir: Path, *args: str) -> LoadProcess:
    return LoadProcess(args, env, workdir)


def run_load(env: Mapping[str, str], workdir: Path, *args: str, timeout: float = DEFAULT_TIMEOUT) -> LoadResult:
    return LoadProcess(args, env, workdir).wait(timeout)


def migrate(database_url: str) -> None:
    upgrade(database_url)


def read_stats(path: Path) -> dict[str, object]:
    """The gateway's request counters; a gateway that has served no short-interest request wrote none."""
    if not path.exists():
        return {"requests": 0, "accepted": 0, "by_code": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def requests_by_code(path: Path) -> dict[str, int]:
    """Accepted short-interest requests per code, from the gateway's stats file."""
    by_code = read_stats(path)["by_code"]
    assert isinstance(by_code, dict)
    return {str(code): int(count) for code, count in by_code.items()}


def requests_served(path: Path) -> int:
    value = read_stats(path)["requests"]
    assert isinstance(value, int)
    return value


def wait_for(condition: Callable[[], bool], what: str, *, timeout: float = 60.0, interval: float = 0.05) -> None:
    """Poll until `condition` holds; a bound on waiting, never a claim about speed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)
