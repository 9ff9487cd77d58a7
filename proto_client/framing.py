"""OpenD frames: a 44-byte little-endian header, then a protobuf body whose SHA-1 the header carries.

Both the client and the simulated gateway read and write frames through this module, so a malformed
frame is refused the same way on either side: promptly, with a ProtocolError naming what was wrong,
and without ever allocating what a corrupt length field claims.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from proto_client.errors import GatewayConnectionError, ProtocolError

MAGIC = b"FT"
HEADER = struct.Struct("<2sIBBII20s8s")
HEADER_SIZE = HEADER.size  # 44
# Short-interest pages are a few KiB; 16 MiB leaves room for any reply this project asks for while
# keeping a hostile "4 GB" length from turning into an allocation.
MAX_BODY_LEN = 16 * 1024 * 1024

PROTO_FMT_PROTOBUF = 0
PROTO_FMT_JSON = 1

assert HEADER_SIZE == 44


@dataclass(frozen=True, slots=True)
class Frame:
    proto_id: int
    serial_no: int
    body: bytes
    proto_fmt: int = PROTO_FMT_PROTOBUF
    proto_ver: int = 0


# An encrypted link's cipher for one direction: plain body -> wire body, or the reverse.
BodyCipher = Callable[[bytes], bytes]


def encode_frame(frame: Frame, encrypt: BodyCipher | None = None) -> bytes:
    """The frame on the wire; with `encrypt`, the body is encrypted and the SHA-1 stays the plain body's."""
    digest = hashlib.sha1(frame.body).digest()
    body = frame.body if encrypt is None else encrypt(frame.body)
    header = HEADER.pack(
        MAGIC, frame.proto_id, frame.proto_fmt, frame.proto_ver, frame.serial_no, len(body), digest, b"\0" * 8
    )
    return header + body


@dataclass(frozen=True, slots=True)
class Header:
    proto_id: int
    proto_fmt: int
    proto_ver: int
    serial_no: int
    body_len: int
    body_sha1: bytes


def decode_header(data: bytes, *, max_body_len: int = MAX_BODY_LEN) -> Header:
    if len(data) != HEADER_SIZE:
        raise ProtocolError(f"frame header is {len(data)} bytes, expected {HEADER_SIZE}")
    magic, proto_id, proto_fmt, proto_ver, serial_no, body_len, sha1, _reserved = HEADER.unpack(data)
    if magic != MAGIC:
        raise ProtocolError(f"bad frame magic {magic!r}, expected {MAGIC!r}")
    if body_len > max_body_len:
        raise ProtocolError(
            f"frame for proto {proto_id} claims a {body_len}-byte body, over the {max_body_len}-byte cap"
        )
    return Header(proto_id, proto_fmt, proto_ver, serial_no, body_len, sha1)


def verify_body(header: Header, body: bytes, decrypt: BodyCipher | None = None) -> Frame:
    """The frame whose wire body is `body`, decrypted first on an encrypted link, its SHA-1 checked."""
    if len(body) != header.body_len:
        raise ProtocolError(f"frame for proto {header.proto_id} truncated: {len(body)} of {header.body_len} bytes")
    if decrypt is not None:
        body = decrypt(body)
    if hashlib.sha1(body).digest() != header.body_sha1:
        raise ProtocolError(f"SHA-1 mismatch in frame for proto {header.proto_id} serial {header.serial_no}")
    return Frame(header.proto_id, header.serial_no, body, header.proto_fmt, header.proto_ver)


def _recv_exactly(sock: socket.socket, size: int, what: str) -> bytes:
    """Read exactly `size` bytes; a peer that closes mid-frame is a protocol fault, before it a disconnect."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        try:
            chunk = sock.recv(min(remaining, 1 << 20))
        except TimeoutError:
            raise
        except OSError as exc:
            raise GatewayConnectionError(f"connection lost while reading {what}: {exc}") from exc
        if not chunk:
            if remaining == size and what == "frame header":
                raise GatewayConnectionError("connection closed by peer")
            raise ProtocolError(f"connection closed mid-frame: {size - remaining} of {size} bytes of {what}")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket, *, max_body_len: int = MAX_BODY_LEN) -> Frame:
    """Read one frame from a blocking socket; its timeout (if any) bounds each recv."""
    header = decode_header(_recv_exactly(sock, HEADER_SIZE, "frame header"), max_body_len=max_body_len)
    body = _recv_exactly(sock, header.body_len, "frame body") if header.body_len else b""
    return verify_body(header, body)
