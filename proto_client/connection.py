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

from proto_client.encryption import PacketCipher, PacketEncAlgo, RsaKey
from proto_client.errors import (
    EncryptionError,
    GatewayConnectionError,
    InitConnectRefusedError,
    ProtocolError,
    ReplyTimeoutError,
    RequestError,
)
from proto_client.framing import (
    HEADER_SIZE,
    MAX_BODY_LEN,
    PROTO_FMT_PROTOBUF,
    BodyCipher,
    Frame,
    decode_header,
    encode_frame,
    verify_body,
)
from proto_client.messages import (
    PROTO_INIT_CONNECT,
    PROTO_KEEP_ALIVE,
    PROTO_NOTIFY,
    ConnectionInfo,
    describe_notify,
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
        self._encrypt: BodyCipher | None = None
        self._decrypt: BodyCipher | None = None
        self.info: ConnectionInfo | None = None
        self.encryption: str | None = None  # "AES-CBC" or "FTAES-ECB" once InitConnect set up an encrypted link

    @classmethod
    def open(
        cls,
        endpoint: Endpoint,
        *,
        client_id: str,
        connect_timeout: float,
        reply_timeout: float,
        max_body_len: int = MAX_BODY_LEN,
        rsa_key: RsaKey | None = None,
    ) -> Connection:
        """TCP-connect and run InitConnect, encrypted with `rsa_key` if given; any failure closes the socket.

        Connecting and InitConnect together are bounded by `connect_timeout`. InitConnect failures that
        point at the encryption settings (a key on one side only, or two different keys) raise
        EncryptionError naming OPEND_RSA_KEY_FILE; a refusal (retType != 0) raises InitConnectRefusedError
        with the gateway's own retMsg.
        """
        deadline = time.monotonic() + connect_timeout
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
            conn._init_connect(client_id, rsa_key, max(deadline - time.monotonic(), 0.001))
        except BaseException:
            conn.close()
            raise
        return conn

    def _init_connect(self, client_id: str, rsa_key: RsaKey | None, timeout: float) -> None:
        endpoint = self.endpoint
        algo = PacketEncAlgo.NONE if rsa_key is None else PacketEncAlgo.AES_CBC
        if rsa_key is not None:
            self._encrypt, self._decrypt = rsa_key.encrypt, rsa_key.decrypt
        try:
            reply = self.request(PROTO_INIT_CONNECT, init_connect_request(client_id, packet_enc_algo=algo), timeout)
            info = parse_init_connect_reply(reply.body)
        except RequestError as exc:
            raise InitConnectRefusedError(endpoint, exc.ret_type, exc.ret_msg, exc.err_code) from exc
        except (ConnectionDropped, ProtocolError) as exc:
            dropped = isinstance(exc, ConnectionDropped)
            what = "closed the connection" if dropped else f"sent an unreadable reply ({exc})"
            if rsa_key is None:
                raise EncryptionError(
                    f"gateway at {endpoint} {what} during InitConnect; an OpenD configured with an RSA key "
                    "(encryption) does this to a client that does not encrypt: set OPEND_RSA_KEY_FILE to the "
                    "same PEM key file OpenD uses"
                ) from exc
            raise EncryptionError(
                f"gateway at {endpoint} {what} during the encrypted InitConnect: it has no RSA key configured, "
                f"or not the one in OPEND_RSA_KEY_FILE={str(rsa_key.path)!r}; encryption needs the same key file "
                "on both sides (unset OPEND_RSA_KEY_FILE for a gateway without a key)"
            ) from exc
        except ReplyTimeoutError as exc:
            hint = (
                "if OpenD is configured with an RSA key (encryption), set OPEND_RSA_KEY_FILE to the same key file"
                if rsa_key is None
                else f"check that OpenD uses the RSA key in OPEND_RSA_KEY_FILE={str(rsa_key.path)!r}"
            )
            raise ReplyTimeoutError(f"{exc} during InitConnect; {hint}") from exc
        if rsa_key is not None:
            cipher = PacketCipher(info.aes_key, info.aes_iv)
            self._encrypt, self._decrypt = cipher.encrypt, cipher.decrypt
            self.encryption = cipher.mode
        self.info = info

    @property
    def closed(self) -> bool:
        return self._closed

    def request(self, proto_id: int, body: bytes, timeout: float | None = None) -> Frame:
        """Send one request frame and return the reply carrying its serial number and proto id.

        Pushes (Notify, proto 1003) and replies to abandoned requests arriving meanwhile are logged and
        skipped. Raises ConnectionDropped if the peer was already gone (send failed, or EOF/reset before
        any byte of the reply), ReplyTimeoutError if no reply arrives within `timeout` (default: the reply
        timeout), ProtocolError on a malformed frame.
        """
        if self._closed:
            raise ConnectionDropped(f"connection to {self.endpoint} is closed")
        wait = self._reply_timeout if timeout is None else timeout
        self._serial = (self._serial + 1) & _SERIAL_MASK or 1
        serial = self._serial
        try:
            self._sock.settimeout(wait)
            self._sock.sendall(encode_frame(Frame(proto_id, serial, body), self._encrypt))
        except TimeoutError as exc:
            raise ReplyTimeoutError(f"sending proto {proto_id} to {self.endpoint} blocked for {wait:g}s") from exc
        except OSError as exc:
            raise ConnectionDropped(f"sending proto {proto_id} to {self.endpoint} failed: {exc}") from exc
        deadline = time.monotonic() + wait
        while True:
            frame = self._read_frame(proto_id, deadline, wait)
            if frame.serial_no == serial and frame.proto_id == proto_id:
                if frame.proto_fmt != PROTO_FMT_PROTOBUF:
                    raise ProtocolError(f"reply for proto {proto_id} is in format {frame.proto_fmt}, not protobuf")
                return frame
            if frame.proto_id == PROTO_NOTIFY:
                log.info("gateway at %s: %s", self.endpoint, describe_notify(frame.body))
            else:
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

    def _read_frame(self, proto_id: int, deadline: float, wait: float) -> Frame:
        # Bytes of a frame already buffered mean the reply has started: EOF from here on is a broken frame.
        started = bool(self._buf)
        self._fill(HEADER_SIZE, proto_id, deadline, wait, started)
        header = decode_header(bytes(self._buf[:HEADER_SIZE]), max_body_len=self._max_body_len)
        end = HEADER_SIZE + header.body_len
        self._fill(end, proto_id, deadline, wait, True)
        body = bytes(self._buf[HEADER_SIZE:end])
        del self._buf[:end]
        return verify_body(header, body, self._decrypt)

    def _fill(self, size: int, proto_id: int, deadline: float, wait: float, started: bool) -> None:
        buf = self._buf
        sock = self._sock
        while len(buf) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout(proto_id, wait)
            try:
                sock.settimeout(remaining)
                chunk = sock.recv(_RECV_SIZE)
            except TimeoutError:
                raise self._timeout(proto_id, wait) from None
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

    def _timeout(self, proto_id: int, wait: float) -> ReplyTimeoutError:
        return ReplyTimeoutError(f"no reply to proto {proto_id} from {self.endpoint} within {wait:g}s")
