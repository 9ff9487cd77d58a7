"""The asyncio TCP server: frames in, replies out, with the real gateway's rate limit and the fault knobs.

Requests on one connection are answered in order; connections are served concurrently. The rate
window, fault counters and statistics are shared by all connections, as OpenD's are per account.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import string
import time
from dataclasses import dataclass

from google.protobuf.message import Message

from proto_client.encryption import PacketCipher
from proto_client.errors import ProtocolError
from proto_client.framing import HEADER_SIZE, BodyCipher, Frame, Header, decode_header, encode_frame, verify_body
from proto_client.pb import init_connect_pb2, qot_get_short_interest_pb2
from proto_client.rate_limit import RateLimit
from proto_client.simulator import listing_replies, replies
from proto_client.simulator.book import QOT_MARKET_NAMES, DemoBook, SecurityLookupError
from proto_client.simulator.codec import BodyError, decode_body, encode_body
from proto_client.simulator.faults import CorruptMode, corrupt_frame
from proto_client.simulator.listings import ListingBook
from proto_client.simulator.options import GatewayOptions
from proto_client.simulator.page_keys import OpaqueKeys
from proto_client.simulator.rate_window import SlidingWindow, rejection_message
from proto_client.simulator.stats import GatewayStats, write_stats

log = logging.getLogger("shortinterest.gateway")

# Requests are a few hundred bytes; anything near this is garbage, refused before it is read.
MAX_REQUEST_BODY = 1 << 20
# A peer that starts a frame must finish it promptly; a stalled half-frame must not pin a connection.
FRAME_TIMEOUT = 30.0
WRITE_TIMEOUT = 30.0
DEFAULT_RATE = RateLimit(30, 30.0)
DEFAULT_LISTING_RATE = RateLimit(10, 30.0)
_AES_KEY_ALPHABET = string.ascii_lowercase[:6] + string.digits


@dataclass
class _Connection:
    peer: str
    session: replies.Session | None = None
    # The session's AES cipher, both directions, once InitConnect set up an encrypted link.
    encrypt: BodyCipher | None = None
    decrypt: BodyCipher | None = None
    replies: int = 0  # replies sent after InitConnect, for --notify-every


@dataclass(frozen=True, slots=True)
class _Reply:
    message: Message | None  # None: drop the connection without answering
    delay: float = 0.0
    corruption: CorruptMode | None = None


class GatewayServer:
    def __init__(self, options: GatewayOptions) -> None:
        self.options = options
        self.listings = ListingBook(options.market_size, options.extra_codes, options.groups_file)
        self.book = DemoBook(options.as_of, options.revision, options.extra_codes, listed=self.listings.served_codes)
        listing_rate = options.listing_rate
        self._listing_windows = {
            proto_id: SlidingWindow(listing_rate) for proto_id in listing_replies.REQUEST_TYPES if listing_rate
        }
        self._listing_rejection = rejection_message(listing_rate or DEFAULT_LISTING_RATE)
        self.stats = GatewayStats()
        self._window = SlidingWindow(options.rate) if options.rate else None
        self._rejection = rejection_message(options.rate or DEFAULT_RATE)
        # Real connIDs are large opaque 64-bit numbers; a random base keeps them unique per process.
        self._conn_ids = itertools.count(secrets.randbits(60) + 1)
        self._keys = OpaqueKeys() if options.opaque_keys else None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> tuple[str, int]:
        """Bind and start accepting; returns the bound (host, port), so port 0 reveals its choice."""
        self._server = await asyncio.start_server(
            self._serve_connection, self.options.host, self.options.port, reuse_address=True
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def close(self) -> None:
        """Stop accepting, end every open connection, and wait (bounded) for their handlers."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5.0)

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = ":".join(str(part) for part in writer.get_extra_info("peername", ("?", 0))[:2])
        conn = _Connection(peer)
        log.info("connection from %s", peer)
        try:
            await self._conversation(reader, writer, conn)
        except ProtocolError as exc:
            log.warning("closing %s: %s", peer, exc)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("connection %s lost: %s", peer, exc or type(exc).__name__)
        except TimeoutError:
            log.warning("closing %s: timed out", peer)
        except asyncio.CancelledError:
            log.info("closing %s: gateway stopping", peer)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), timeout=2.0)

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: _Connection
    ) -> None:
        rsa_key = self.options.rsa_key
        while True:
            frame = await self._read_request(reader, conn)
            if frame is None:
                log.info("connection %s closed by peer", conn.peer)
                return
            reply = await self._answer(frame, conn)
            if reply.message is None:
                log.info("dropping %s without a reply (fault injection)", conn.peer)
                writer.transport.abort()
                return
            if reply.delay:
                await asyncio.sleep(reply.delay)
            initial = frame.proto_id == replies.PROTO_INIT_CONNECT
            encrypt = (rsa_key.encrypt if rsa_key is not None else None) if initial else conn.encrypt
            if not initial and conn.session is not None:
                self._maybe_notify(writer, conn, frame.serial_no)
            data = encode_frame(
                Frame(frame.proto_id, frame.serial_no, encode_body(reply.message, frame.proto_fmt), frame.proto_fmt),
                encrypt,
            )
            close_after = False
            if reply.corruption is not None:
                data, close_after = corrupt_frame(reply.corruption, data)
                log.info("sending a %s frame to %s (fault injection)", reply.corruption.value, conn.peer)
            writer.write(data)
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
            if close_after:
                return
            if initial and conn.session is not None and rsa_key is not None and conn.encrypt is None:
                cipher = PacketCipher(conn.session.aes_key, conn.session.aes_iv)
                conn.encrypt, conn.decrypt = cipher.encrypt, cipher.decrypt
                log.info("encrypted link with %s in %s", conn.peer, cipher.mode)

    def _maybe_notify(self, writer: asyncio.StreamWriter, conn: _Connection, serial_no: int) -> None:
        """A Notify push ahead of every Nth reply, under the serial number of the request being answered:
        a client must match replies by proto id as well as serial number."""
        every = self.options.notify_every
        conn.replies += 1
        if not every or conn.replies % every or conn.session is None:
            return
        fmt = conn.session.push_proto_fmt
        message = replies.notify(conn.replies // every, qot_logined=self.options.qot_logined)
        writer.write(encode_frame(Frame(replies.PROTO_NOTIFY, serial_no, encode_body(message, fmt), fmt), conn.encrypt))

    async def _read_request(self, reader: asyncio.StreamReader, conn: _Connection) -> Frame | None:
        """The next request frame, decrypted on an encrypted link, or None when the peer closed cleanly."""
        try:
            if self.options.idle_timeout:
                raw_header = await asyncio.wait_for(reader.readexactly(HEADER_SIZE), self.options.idle_timeout)
            else:
                raw_header = await reader.readexactly(HEADER_SIZE)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return None
            raise ProtocolError(f"connection closed mid-header: {len(exc.partial)} of {HEADER_SIZE} bytes") from exc
        header = decode_header(raw_header, max_body_len=MAX_REQUEST_BODY)
        try:
            body = await asyncio.wait_for(reader.readexactly(header.body_len), FRAME_TIMEOUT)
        except asyncio.IncompleteReadError as exc:
            raise ProtocolError(
                f"frame for proto {header.proto_id} truncated: {len(exc.partial)} of {header.body_len} bytes"
            ) from exc
        return self._decrypted(header, body, conn)

    def _decrypted(self, header: Header, body: bytes, conn: _Connection) -> Frame:
        """On a gateway with an RSA key, InitConnect must decrypt with it and everything after with the
        session's AES key; anything else closes the connection, as nothing can be answered to it."""
        rsa_key = self.options.rsa_key
        if rsa_key is None or header.proto_id != replies.PROTO_INIT_CONNECT:
            return verify_body(header, body, conn.decrypt)
        try:
            return verify_body(header, body, rsa_key.decrypt)
        except ProtocolError as exc:
            raise ProtocolError(f"InitConnect is not encrypted with this gateway's RSA key ({exc})") from None

    async def _answer(self, frame: Frame, conn: _Connection) -> _Reply:
        proto_id = frame.proto_id
        request_type = replies.REQUEST_TYPES.get(proto_id) or listing_replies.REQUEST_TYPES.get(proto_id)
        if request_type is None:
            served = ", ".join(str(p) for p in (*replies.SERVED_PROTOS, *listing_replies.REQUEST_TYPES))
            return _Reply(replies.failure(f"unknown proto id {proto_id}: this gateway serves {served}"))
        if proto_id == replies.PROTO_GET_SHORT_INTEREST:
            return self._short_interest(frame, conn)
        try:
            request = decode_body(frame.body, frame.proto_fmt, request_type)
        except BodyError as exc:
            return _Reply(replies.failure(f"proto {proto_id}: {exc}", replies.RET_INVALID))
        if proto_id == replies.PROTO_INIT_CONNECT:
            refusal = self.options.refuse_init_connect
            if refusal is not None:
                log.info("refusing InitConnect from %s: %s", conn.peer, refusal)
                return _Reply(replies.failure(refusal))
            if conn.session is None:
                assert isinstance(request, init_connect_pb2.Request)
                cbc = self.options.rsa_key is not None and not self.options.force_ecb and replies.wants_cbc(request)
                conn.session = replies.Session(
                    conn_id=next(self._conn_ids),
                    aes_key=_random_text(16),
                    keepalive_interval=self.options.keepalive_interval,
                    aes_iv=_random_text(16) if cbc else None,
                    push_proto_fmt=request.c2s.pushProtoFmt,
                )
                log.info("InitConnect from %s: connID %d", conn.peer, conn.session.conn_id)
            return _Reply(replies.init_connect(conn.session))
        if conn.session is None:
            return _Reply(replies.failure("InitConnect must be the first request on a connection"))
        if proto_id in listing_replies.REQUEST_TYPES:
            return _Reply(self._listing(proto_id, request))
        if proto_id == replies.PROTO_KEEP_ALIVE:
            return _Reply(replies.keep_alive(request))  # type: ignore[arg-type]
        return _Reply(replies.global_state(request, conn.session, qot_logined=self.options.qot_logined))  # type: ignore[arg-type]

    def _listing(self, proto_id: int, request: Message) -> Message:
        """A listing call through its own rate window; refused while logged out, as every quote call is."""
        if not self.options.qot_logined:
            return replies.failure(replies.NOT_LOGGED_IN_MESSAGE)
        window = self._listing_windows.get(proto_id)
        if window is not None and not window.try_acquire():
            self.stats.listing_rejected[proto_id] += 1
            self._publish_stats()
            return replies.failure(self._listing_rejection)
        self.stats.listing_accepted[proto_id] += 1
        self._publish_stats()
        return listing_replies.answer(proto_id, request, self.listings)

    def _short_interest(self, frame: Frame, conn: _Connection) -> _Reply:
        """Qot_GetShortInterest through the fault knobs and the rate window, then the data."""
        if conn.session is None:
            return _Reply(replies.failure("InitConnect must be the first request on a connection"))
        faults, stats = self.options.faults, self.stats
        stats.requests += 1
        n = stats.requests
        try:
            if faults.drops(n):
                stats.dropped += 1
                return _Reply(None)
            try:
                request = decode_body(frame.body, frame.proto_fmt, qot_get_short_interest_pb2.Request)
            except BodyError as exc:
                return self._faulty(replies.failure(f"proto {frame.proto_id}: {exc}", replies.RET_INVALID), n)
            if not self.options.qot_logined:
                stats.rejected_not_logged_in += 1
                return self._faulty(replies.failure(replies.NOT_LOGGED_IN_MESSAGE), n)
            if faults.rejects(n):
                stats.rejected_injected += 1
                return self._faulty(replies.failure(self._rejection), n)
            if self._window is not None and not self._window.try_acquire():
                stats.rejected_rate_limit += 1
                return self._faulty(replies.failure(self._rejection), n)
            stats.accepted += 1
            stats.accepted_at.append(time.time())
            stats.by_code[self._accounting_code(request)] += 1
            reply = replies.short_interest(
                request, self.book, lazy_end=self.options.lazy_end, keys=self._keys, loop_code=self.options.loop_code
            )
            return self._faulty(reply, n)
        finally:
            self._publish_stats()

    def _faulty(self, message: Message, n: int) -> _Reply:
        """The reply to the n-th 3249 request, with whatever delay or corruption the knobs assign it."""
        faults = self.options.faults
        delay, corruption = faults.delay_for(n), faults.corruption_for(n)
        self.stats.delayed += bool(delay)
        self.stats.corrupted += corruption is not None
        return _Reply(message, delay=delay, corruption=corruption)

    def _accounting_code(self, request: qot_get_short_interest_pb2.Request) -> str:
        try:
            return replies.requested_code(request, self.book)
        except SecurityLookupError:
            security = request.c2s.security
            return f"{QOT_MARKET_NAMES.get(security.market, security.market)}.{security.code}"

    def _publish_stats(self) -> None:
        if self.options.stats_file is not None:
            try:
                write_stats(self.options.stats_file, self.stats)
            except OSError as exc:
                log.error("cannot write stats file %s: %s", self.options.stats_file, exc)


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_AES_KEY_ALPHABET) for _ in range(length))
