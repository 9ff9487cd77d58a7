"""Start the simulated gateway as a real process on a free loopback port, as users do."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import Message

from proto_client.client import OpenDClient
from proto_client.errors import RequestError
from proto_client.framing import Frame, encode_frame, read_frame
from proto_client.pb import init_connect_pb2, qot_get_short_interest_pb2
from proto_client.records import Page

M = TypeVar("M", bound=Message)

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


def first_page(gw: GatewayProcess, code: str, next_key: str | None = None) -> Page:
    """One page through the project's client, waiting out the gateway's rate window if it is full."""
    pages: list[Page] = []
    with OpenDClient(gw.host, gw.port) as client:
        deadline = time.monotonic() + 60
        while not pages:
            try:
                pages.append(client.get_short_interest_page(code, next_key))
            except RequestError as exc:
                if not exc.is_rate_limited or time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
    return pages[0]


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


class RawOpenD:
    """A bare-socket OpenD peer for protocol tests: frames go out and come back exactly as on the wire."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._serial = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawOpenD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, proto_id: int, body: bytes, *, proto_fmt: int = 0) -> int:
        self._serial += 1
        self.sock.sendall(encode_frame(Frame(proto_id, self._serial, body, proto_fmt)))
        return self._serial

    def receive(self) -> Frame:
        return read_frame(self.sock)

    def call(self, proto_id: int, request: Message, response_type: type[M]) -> M:
        serial = self.send(proto_id, request.SerializeToString())
        frame = self.receive()
        assert (frame.proto_id, frame.serial_no) == (proto_id, serial)
        response = response_type()
        response.ParseFromString(frame.body)
        return response

    def init_connect(self, client_id: str = "test") -> init_connect_pb2.Response:
        request = init_connect_pb2.Request()
        request.c2s.clientVer = 100
        request.c2s.clientID = client_id
        request.c2s.packetEncAlgo = -1
        request.c2s.programmingLanguage = "Python"
        return self.call(1001, request, init_connect_pb2.Response)

    def short_interest_request(
        self, market: int, code: str, next_key: str | None = None, num: int | None = 50
    ) -> qot_get_short_interest_pb2.Request:
        request = qot_get_short_interest_pb2.Request()
        request.c2s.security.market = market
        request.c2s.security.code = code
        if next_key is not None:
            request.c2s.nextKey = next_key
        if num is not None:
            request.c2s.num = num
        return request

    def short_interest(
        self, code: str, next_key: str | None = None, num: int | None = 50
    ) -> qot_get_short_interest_pb2.Response:
        prefix, _, symbol = code.partition(".")
        market = {"HK": 1, "US": 11}[prefix]
        request = self.short_interest_request(market, symbol, next_key, num)
        return self.call(3249, request, qot_get_short_interest_pb2.Response)


@contextmanager
def accepting_then_closing(host: str, port: int) -> Iterator[None]:
    """A gateway mid-restart at host:port: every connection is accepted, then closed before any reply, as an
    OpenD going down or coming up does (and as one with an RSA key does to a client without one)."""
    listener = socket.create_server((host, port))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
