"""Start the simulated gateway as a real process on a free loopback port, as users do."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

_LISTENING = re.compile(r"listening on (?P<host>[\w.:\[\]]+):(?P<port>\d+)")


@dataclass
class GatewayProcess:
    host: str
    port: int
    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def env(self) -> dict[str, str]:
        """Environment variables pointing the product at this gateway."""
        return {"OPEND_HOST": self.host, "OPEND_PORT": str(self.port)}


def start_gateway(args: Sequence[str] = (), *, timeout: float = 30.0) -> GatewayProcess:
    """Run `shortinterest gateway --demo --port 0 ARGS` and wait for its `listening on` line."""
    cmd = [sys.executable, "-m", "pipelines.cli", "gateway", "--demo", "--host", "127.0.0.1", "--port", "0", *args]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    found: dict[str, str] = {}
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and not ready.is_set():
                found.update(match.groupdict())
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout) or not found:
        proc.kill()
        raise RuntimeError(f"gateway did not start: {cmd}\n" + "\n".join(lines))
    return GatewayProcess(found["host"], int(found["port"]), proc, lines)
