"""The frame codec both ends share: round trips, and every malformed frame refused promptly."""

from __future__ import annotations

import hashlib
import socket
import struct
from collections.abc import Iterator

import pytest

from proto_client.errors import GatewayConnectionError, ProtocolError
from proto_client.framing import (
    HEADER,
    HEADER_SIZE,
    MAX_BODY_LEN,
    PROTO_FMT_JSON,
    Frame,
    decode_header,
    encode_frame,
    read_frame,
    verify_body,
)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    left.settimeout(5.0)
    right.settimeout(5.0)
    yield left, right
    left.close()
    right.close()


def test_header_layout_matches_the_wire_spec() -> None:
    data = encode_frame(Frame(3249, 0x01020304, b"abc"))
    assert HEADER_SIZE == 44
    assert data[:2] == b"FT"
    assert struct.unpack_from("<I", data, 2)[0] == 3249
    assert data[6:8] == b"\x00\x00"
    assert struct.unpack_from("<I", data, 8)[0] == 0x01020304
    assert struct.unpack_from("<I", data, 12)[0] == 3
    assert data[16:36] == hashlib.sha1(b"abc").digest()
    assert data[36:44] == b"\0" * 8
    assert data[44:] == b"abc"
    # The layout the spec gives as a struct format decodes the same header.
    magic1, magic2, proto_id, fmt, ver, serial, length, _sha, _ = struct.unpack("<1s1sI2B2I20s8s", data[:44])
    assert (magic1 + magic2, proto_id, fmt, ver, serial, length) == (b"FT", 3249, 0, 0, 0x01020304, 3)


@pytest.mark.parametrize("body", [b"", b"x", bytes(range(256)) * 40])
def test_encode_decode_round_trip(body: bytes) -> None:
    frame = Frame(1001, 7, body, PROTO_FMT_JSON, 0)
    data = encode_frame(frame)
    header = decode_header(data[:HEADER_SIZE])
    assert (header.proto_id, header.serial_no, header.body_len, header.proto_fmt) == (1001, 7, len(body), 1)
    assert verify_body(header, data[HEADER_SIZE:]) == frame


def test_read_frame_round_trip_over_a_socket(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    frames = [Frame(1004, 1, b"one"), Frame(3249, 2, b""), Frame(1002, 3, b"three" * 100)]
    left.sendall(b"".join(encode_frame(f) for f in frames))
    assert [read_frame(right) for _ in frames] == frames


def test_bad_magic_is_refused() -> None:
    data = bytearray(encode_frame(Frame(1001, 1, b"body")))
    data[:2] = b"XT"
    with pytest.raises(ProtocolError, match="magic"):
        decode_header(bytes(data[:HEADER_SIZE]))


def test_short_header_is_refused() -> None:
    with pytest.raises(ProtocolError, match="43 bytes"):
        decode_header(encode_frame(Frame(1001, 1, b""))[:43])


def test_sha1_mismatch_is_refused() -> None:
    data = encode_frame(Frame(3249, 9, b"payload"))
    header = decode_header(data[:HEADER_SIZE])
    with pytest.raises(ProtocolError, match=r"SHA-1 mismatch.*3249"):
        verify_body(header, b"payloaD")


def test_body_shorter_than_header_claims_is_refused() -> None:
    data = encode_frame(Frame(3249, 9, b"payload"))
    header = decode_header(data[:HEADER_SIZE])
    with pytest.raises(ProtocolError, match="truncated: 3 of 7"):
        verify_body(header, b"pay")


def test_oversized_length_is_refused_from_the_header_alone() -> None:
    huge = HEADER.pack(b"FT", 3249, 0, 0, 1, 0xFFFF_FFF0, b"\0" * 20, b"\0" * 8)
    with pytest.raises(ProtocolError, match="over the"):
        decode_header(huge)
    just_over = HEADER.pack(b"FT", 3249, 0, 0, 1, MAX_BODY_LEN + 1, b"\0" * 20, b"\0" * 8)
    with pytest.raises(ProtocolError):
        decode_header(just_over)
    at_cap = HEADER.pack(b"FT", 3249, 0, 0, 1, MAX_BODY_LEN, b"\0" * 20, b"\0" * 8)
    assert decode_header(at_cap).body_len == MAX_BODY_LEN


def test_read_frame_refuses_a_huge_length_without_waiting_for_the_body(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, right = pair
    # The peer claims ~4 GB and sends nothing more, keeping the socket open: a reader that trusted the
    # length would allocate it or block until the timeout; this one must refuse from the header.
    left.sendall(HEADER.pack(b"FT", 3249, 0, 0, 1, 0xFFFF_FFF0, b"\0" * 20, b"\0" * 8))
    with pytest.raises(ProtocolError, match="4294967280-byte body"):
        read_frame(right)


def test_read_frame_bad_magic(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    left.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\0" * 20)
    with pytest.raises(ProtocolError, match="magic"):
        read_frame(right)


def test_read_frame_sha1_mismatch(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    data = bytearray(encode_frame(Frame(3249, 4, b"payload")))
    data[-1] ^= 0xFF
    left.sendall(bytes(data))
    with pytest.raises(ProtocolError, match="SHA-1"):
        read_frame(right)


def test_read_frame_peer_closes_mid_body(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    data = encode_frame(Frame(3249, 4, b"0123456789"))
    left.sendall(data[:-4])
    left.shutdown(socket.SHUT_WR)
    with pytest.raises(ProtocolError, match="mid-frame: 6 of 10 bytes"):
        read_frame(right)


def test_read_frame_peer_closes_mid_header(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    left.sendall(encode_frame(Frame(3249, 4, b""))[:20])
    left.shutdown(socket.SHUT_WR)
    with pytest.raises(ProtocolError, match="mid-frame: 20 of 44"):
        read_frame(right)


def test_read_frame_clean_close_between_frames_is_a_disconnect(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    left.shutdown(socket.SHUT_WR)
    with pytest.raises(GatewayConnectionError, match="closed by peer"):
        read_frame(right)


def test_read_frame_stalled_body_times_out_instead_of_hanging(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    right.settimeout(0.2)
    left.sendall(encode_frame(Frame(3249, 4, b"0123456789"))[:-4])
    with pytest.raises(TimeoutError):
        read_frame(right)
