"""Keeper of one throwaway PostgreSQL server: it lives exactly as long as the process that asked for it.

`python -m tests.support.postgres_keeper BIN_DIR` creates and starts a cluster, writes it as one JSON line
(or {"error": ...}), then waits until its standard input closes or its parent is gone, and stops and deletes
the cluster. The parent holds the only write end of that pipe, so its end, however it comes (a normal
exit, an exception, kill -9), releases the server; a crashed test session therefore leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
from pathlib import Path
from types import FrameType

from tests.support.postgres_cluster import ClusterError, cluster_to_json, create_cluster, remove_cluster

# How often to look whether the parent is still there, for a parent whose pipe outlives it (a forked child).
PARENT_CHECK_SECONDS = 1.0


def _released(parent: int) -> bool:
    readable, _, _ = select.select([sys.stdin], [], [], PARENT_CHECK_SECONDS)
    if readable and not os.read(sys.stdin.fileno(), 4096):
        return True
    return os.getppid() != parent


def _leave(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _say(message: str) -> None:
    with contextlib.suppress(BrokenPipeError):  # the parent is gone; the cleanup still happens
        print(message, flush=True)


def main() -> int:
    parent = os.getppid()
    # A Ctrl-C is for the test session, which then releases us; a plain kill still cleans up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _leave)
    signal.signal(signal.SIGHUP, _leave)
    try:
        cluster = create_cluster(Path(sys.argv[1]))
    except ClusterError as exc:
        _say(json.dumps({"error": str(exc)}))
        return 1
    try:
        _say(cluster_to_json(cluster))
        while not _released(parent):
            pass
    finally:
        remove_cluster(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
