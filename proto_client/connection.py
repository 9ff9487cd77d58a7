"""One TCP connection to the gateway: connect, InitConnect, and request/reply exchange by serial number.

Not thread-safe on its own: OpenDClient serializes access. Every read is bounded by a deadline, and the
stream is buffered so a typical reply costs one recv, which keeps the request path lean.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from dataclasses import dataclass

from proto_client.errors import GatewayConnectionError, ProtocolError, ReplyTimeoutError
from proto_client.framing import (
    HEADER_SIZE,
    MAX_BODY_LEN,
    PROTO_FMT_PROTOBUF,
    Frame,
    decode_header,
    encode_frame,
    verify_body,
)
from proto_client.messages import (
    PROTO_INIT_CONNECT,
    PROTO_KEEP_ALIVE,
    ConnectionInfo,
    init_connect_request,
    keep_alive_request,
    parse_init_connect_reply,
    parse_keep_alive_reply,
)

log = logging.getLogger(__name__)

_RECV_SIZE = 64 * 1024  # below glibc's mmap threshold: a recv buffer stays a cheap heap allocation
_SERIAL_MASK = 0xFFFFFFFF


class ConnectionDropped(GatewayConnectionError):
    """The peer was gone before any byte of the awaited reply arrived, so the request is safe to resend."""


def start_gateway_hint(host: str, port: int) -> str:
    return (
        f"cannot reach the OpenD gateway at {host}:{port}; start OpenD there, or run the simulated one "
        f"with `shortinterest gateway --demo --port {port}`"
    )


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Connection:
    """A connected, initialised socket. Open one with `Connection.open`."""

    def __init__(self, sock: socket.socket, endpoint: Endpoint, *, reply_timeout: float, max_body_len: int) -> None:
        self._sock = sock
        self.endpoint = endpoint
        self._reply_timeout = reply_timeout
        self._max_body_len = max_body_len
        self._buf = bytearray()
        self._serial = 0
        self._closed = False
        self.info: ConnectionInfo | None = None

    @classmethod
    def open(
        cls,
        endpoint: Endpoint,
        *,
        client_id: str,
        connect_timeout: float,
        reply_timeout: float,
        max_body_len: int = MAX_BODY_LEN,
    ) -> Connection:
        """TCP-connect and run InitConnect; any failure closes the socket before raising."""
        try:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=connect_timeout)
        except TimeoutError as exc:
            raise GatewayConnectionError(
                f"{start_gateway_hint(endpoint.host, endpoint.port)} (connect timed out after {connect_timeout:g}s)"
            ) from exc
        except OSError as exc:
            raise GatewayConnectionError(f"{start_gateway_hint(endpoint.host, endpoint.port)} ({exc})") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = cls(sock, endpoint, reply_timeout=reply_timeout, max_body_len=max_body_len)
        try:
            reply = conn.request(PROTO_INIT_CONNECT, init_connect_request(client_id))
            conn.info = parse_init_connect_reply(reply.body)
        except ConnectionDropped as exc:
            conn.close()
            raise GatewayConnectionError(f"gateway at {endpoint} closed the connection during InitConnect") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def closed(self) -> bool:
        return self._closed

    def request(self, proto_id: int, body: bytes) -> Frame:
        """Send one request frame and return the reply carrying its serial number.

        Raises ConnectionDropped if the peer was already gone (send failed, or EOF/reset before any byte of
        the reply), ReplyTimeoutError if no reply arrives in time, ProtocolError on a malformed frame.
        """
        if self._closed:
            raise ConnectionDropped(f"connection to {self.endpoint} is closed")
        self._serial = (self._serial + 1) & _SERIAL_MASK or 1
        serial = self._serial
        try:
            self._sock.settimeout(self._reply_timeout)
            self._sock.sendall(encode_frame(Frame(proto_id, serial, body)))
        except TimeoutError as exc:
            raise ReplyTimeoutError(
                f"sending proto {proto_id} to {self.endpoint} blocked for {self._reply_timeout:g}s"
            ) from exc
        except OSError as exc:
            raise ConnectionDropped(f"sending proto {proto_id} to {self.endpoint} failed: {exc}") from exc
        deadline = time.monotonic() + self._reply_timeout
        while True:
            frame = self._read_frame(proto_id, deadline)
            if frame.serial_no == serial and frame.proto_id == proto_id:
                if frame.proto_fmt != PROTO_FMT_PROTOBUF:
                    raise ProtocolError(f"reply for proto {proto_id} is in format {frame.proto_fmt}, not protobuf")
                return frame
            # Replies to abandoned requests and pushes may arrive in between; they are not ours.
            log.debug(
                "skipping frame proto=%s serial=%s while awaiting proto=%s serial=%s",
                frame.proto_id,
                frame.serial_no,
                proto_id,
                serial,
            )

    def peer_closed(self) -> bool:
        """Whether the gateway has already closed this connection (checked without blocking).

        Looking before a request means an idle connection the gateway dropped is replaced before a
        rate-limit token is spent on a write that could never be answered.
        """
        if self._closed:
            return True
        if self._buf:
            return False  # unread frames pending: the peer spoke, the next read will tell
        try:
            self._sock.settimeout(0.0)
            peeked = self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return not peeked

    def keep_alive(self) -> None:
        reply = self.request(PROTO_KEEP_ALIVE, keep_alive_request(int(time.time())))
        parse_keep_alive_reply(reply.body)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.close()
        except OSError:
            log.debug("error closing socket to %s", self.endpoint, exc_info=True)

    def interrupt(self) -> None:
        """Wake a thread blocked in recv on this connection (close() from another thread may not)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _read_frame(self, proto_id: int, deadline: float) -> Frame:
        # Bytes of a frame already buffered mean the reply has started: EOF from here on is a broken frame.
        started = bool(self._buf)
        self._fill(HEADER_SIZE, proto_id, deadline, started)
        header = decode_header(bytes(self._buf[:HEADER_SIZE]), max_body_len=self._max_body_len)
        end = HEADER_SIZE + header.body_len
        self._fill(end, proto_id, deadline, True)
        body = bytes(self._buf[HEADER_SIZE:end])
        del self._buf[:end]
        return verify_body(header, body)

    def _fill(self, size: int, proto_id: int, deadline: float, started: bool) -> None:
        buf = self._buf
        sock = self._sock
        while len(buf) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout(proto_id)
            try:
                sock.settimeout(remaining)
                chunk = sock.recv(_RECV_SIZE)
            except TimeoutError:
                raise self._timeout(proto_id) from None
            except OSError as exc:
                if started or buf:
                    raise ProtocolError(
                        f"connection to {self.endpoint} lost mid-frame awaiting proto {proto_id}: {exc}"
                    ) from exc
                raise ConnectionDropped(f"connection to {self.endpoint} lost awaiting proto {proto_id}: {exc}") from exc
            if not chunk:
                if started or buf:
                    raise ProtocolError(
                        f"connection to {self.endpoint} closed mid-frame: {len(buf)} of {size} bytes "
                        f"received awaiting proto {proto_id}"
                    )
                raise ConnectionDropped(f"gateway at {self.endpoint} closed the connection")
            buf += chunk

    def _timeout(self, proto_id: int) -> ReplyTimeoutError:
        return ReplyTimeoutError(f"no reply to proto {proto_id} from {self.endpoint} within {self._reply_timeout:g}s")
