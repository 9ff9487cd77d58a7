"""Dagster's production services as real processes: `dagster-daemon run` and `dagster-webserver`.

Each service starts in a process group of its own, and everything it starts (code servers, run workers,
step processes) inherits that group. Stopping a group therefore stops runs the service launched even after
the service itself was killed with SIGKILL and its children were orphaned: `ServiceGroup.stop_all` leaves
no process behind, whether the test passed or failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parents[2]
# How long a process group gets to exit on SIGTERM before it is killed.
STOP_GRACE_SECONDS = 15.0


class GraphQLError(AssertionError):
    """The webserver answered a GraphQL request with errors, or with a result of an unexpected type."""


@dataclass
class Service:
    """One started service: its process (the group leader) and the file its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session makes the leader's pid the group id

    def running(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill_leader(self) -> None:
        """SIGKILL to the service process alone, as a crash or the OOM killer would: its children live on."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@dataclass
class ServiceGroup:
    """Starts services under `workdir` and stops every process group it ever started."""

    workdir: Path
    env: Mapping[str, str]
    started: list[Service] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str]) -> Service:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_path = self.workdir / f"{name}-{len(self.started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(self.env),
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        service = Service(name, proc, log_path)
        self.started.append(service)
        return service

    def run(self, argv: Sequence[str], *, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """A command to completion in the services' environment (migrations, the `dagster` CLI)."""
        return subprocess.run(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(self.env),
            cwd=REPO_ROOT,
            timeout=timeout,
            check=False,
        )

    def stop_all(self) -> None:
        """SIGTERM every group, then SIGKILL whatever is left once the grace period is over."""
        for service in self.started:
            _signal_group(service.pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for service in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for service in self.started:
            while _group_alive(service.pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(service.pgid, signal.SIGKILL)
            if service.running():
                service.proc.wait(timeout=30)

    def logs(self) -> str:
        """Every service's output, for a failure message."""
        return "\n".join(f"--- {s.name} ({s.log_path.name}) ---\n{s.log()[-6000:]}" for s in self.started)


@contextlib.contextmanager
def reading_instance(home: Path) -> Iterator[dg.DagsterInstance]:
    """The services' instance (`home`/dagster.yaml), as the test process reads it while they run.

    The test polls it twice a second. dagster-postgres opens a new connection for every read, except in the
    webserver, which holds its connections open; this process does the same, and PostgreSQL starts a third
    fewer backends during the test. The services themselves are left as deployed.
    """
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=20)
        yield instance


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Webserver:
    """The webserver's GraphQL endpoint, used as the UI uses it."""

    url: str
    # What every request carries (credentials for a proxy in front), and the TLS context an https URL needs.
    headers: Mapping[str, str] = field(default_factory=dict)
    context: ssl.SSLContext | None = None

    def ready(self) -> bool:
        request = urllib.request.Request(f"{self.url}/server_info", headers=dict(self.headers))
        try:
            with urllib.request.urlopen(request, timeout=5, context=self.context) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def query(self, document: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": document, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=body,
            headers={**self.headers, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60, context=self.context) as reply:
                answer = json.loads(reply.read())
        except urllib.error.HTTPError as exc:  # GraphQL errors come with a 4xx/5xx status and a JSON body
            detail = exc.read().decode(errors="replace")
            raise GraphQLError(f"HTTP {exc.code} from {self.url}/graphql: {detail}") from None
        if answer.get("errors"):
            raise GraphQLError(f"GraphQL errors: {answer['errors']}")
        data = answer["data"]
        assert isinstance(data, dict)
        return data

    def mutate(self, document: str, field_name: str, expected: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Run a mutation whose result is a union; anything but `expected` fails with the server's message."""
        result = self.query(document, variables)[field_name]
        if result.get("__typename") != expected:
            raise GraphQLError(f"{field_name} answered {result.get('__typename')}: {result}")
        return dict(result)


LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""


def launch_asset_backfill(webserver: Webserver, asset: str, partitions: Sequence[str]) -> str:
    """What the asset page's *Materialize...* dialog sends for a chosen set of partitions."""
    result = webserver.mutate(
        LAUNCH_BACKFILL,
        "launchPartitionBackfill",
        "LaunchBackfillSuccess",
        {"backfillParams": {"assetSelection": [{"path": [asset]}], "partitionNames": list(partitions)}},
    )
    return str(result["backfillId"])


def launch_job(webserver: Webserver, location: str, job: str, tags: Mapping[str, str]) -> str:
    """What the launchpad sends for a job run with the given tags (e.g. a partition range)."""
    result = webserver.mutate(
        LAUNCH_RUN,
        "launchRun",
        "LaunchRunSuccess",
        {
            "executionParams": {
                "selector": {"repositoryLocationName": location, "repositoryName": "__repository__", "jobName": job},
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
                "runConfigData": {},
            }
        },
    )
    return str(result["run"]["runId"])


START_SCHEDULE = """
mutation StartSchedule($scheduleSelector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $scheduleSelector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""


def start_schedule(webserver: Webserver, location: str, schedule: str) -> None:
    """The schedule's switch in the UI's *Automation* page."""
    selector = {"repositoryLocationName": location, "repositoryName": "__repository__", "scheduleName": schedule}
    webserver.mutate(START_SCHEDULE, "startSchedule", "ScheduleStateResult", {"scheduleSelector": selector})
