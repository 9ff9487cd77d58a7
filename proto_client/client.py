"""The synchronous OpenD client the crawler and Dagster ops use.

One client owns at most one connection at a time. A lock serializes requests so threads can share it;
a daemon thread sends KeepAlive only while the connection is idle. Failures map to the error classes
in proto_client.errors so callers choose retry or give-up by type:

- peer gone between requests -> reconnect once and resend (the query is read-only, so this is safe);
- reply timeout -> connection dropped, ReplyTimeoutError (the caller retries with backoff);
- malformed frame -> connection dropped, ProtocolError (never resent silently).

An OpenD configured with an RSA key encrypts every body: pass the same PEM key file as `rsa_key_file`
(the product reads it from OPEND_RSA_KEY_FILE). Without one the link is plain, as is usual for a local
gateway. A key on one side only, or two different keys, fails the connect with EncryptionError.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from proto_client.connection import Connection, ConnectionDropped, Endpoint
from proto_client.encryption import RsaKey
from proto_client.errors import EncryptionError, GatewayConnectionError, OpenDError, QuoteLoginError, RequestError
from proto_client.framing import MAX_BODY_LEN, Frame
from proto_client.messages import (
    MAX_PAGE_SIZE,
    PROTO_GET_GLOBAL_STATE,
    PROTO_GET_SHORT_INTEREST,
    GlobalState,
    TradeDays,
    check_page_args,
    global_state_request,
    parse_global_state_reply,
    parse_short_interest_reply,
    short_interest_request,
)
from proto_client.page_walk import PageWalk
from proto_client.records import END_OF_DATA, Page
from proto_client.security import Security, parse_code
from proto_client.static_info import (
    LISTING_PROTOS,
    PROTO_GET_PLATE_SECURITY,
    PROTO_GET_STATIC_INFO,
    PROTO_GET_USER_SECURITY,
    PROTO_GET_USER_SECURITY_GROUP,
    StaticInfo,
    WatchlistGroup,
    parse_plate_security_reply,
    parse_static_info_reply,
    parse_user_security_group_reply,
    parse_user_security_reply,
    plate_security_request,
    static_info_request,
    user_security_group_request,
    user_security_request,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

KEEPALIVE_FRACTION = 0.8
# How often the keepalive thread looks again while there is no connection or it is busy.
_KEEPALIVE_POLL = 0.5


class OpenDClient:
    """A client for Qot_GetShortInterest and gateway health over one OpenD connection.

    - `rsa_key_file`: the PEM RSA private key OpenD is configured with, for an encrypted link (None: plain).
      It is read here, so a missing, unreadable or non-RSA file raises KeyFileError (naming the path)
      before any connection.
    - `connect_timeout` bounds the TCP connect and InitConnect together; `reply_timeout` each request.
    - `throttle` is called before every Qot_GetShortInterest write (a shared rate limiter);
      `listing_throttles` (proto id -> callable) before each listing call's, since OpenD limits each call apart.
    - `check_quote_login`: ask GetGlobalState once per new connection and raise QuoteLoginError when the
      gateway is not logged in to the quote server, instead of letting every request be refused.
    - `settings_proven`: these settings completed InitConnect with this gateway before (a retried run), so a
      connection closed during InitConnect is the gateway restarting (ConnectionDropped, an outage), as it is
      for a client that has connected before, not a key that disagrees (EncryptionError).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 11111,
        *,
        connect_timeout: float = 5.0,
        reply_timeout: float = 15.0,
        client_id: str | None = None,
        throttle: Callable[[], object] | None = None,
        max_body_len: int = MAX_BODY_LEN,
        rsa_key_file: str | os.PathLike[str] | None = None,
        check_quote_login: bool = False,
        settings_proven: bool = False,
        listing_throttles: Mapping[int, Callable[[], object]] | None = None,
    ) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
        if connect_timeout <= 0 or reply_timeout <= 0:
            raise ValueError(
                f"timeouts must be positive, got connect_timeout={connect_timeout!r} reply_timeout={reply_timeout!r}"
            )
        self._rsa_key = RsaKey.load(rsa_key_file) if rsa_key_file is not None else None
        self._check_quote_login = check_quote_login
        self._endpoint = Endpoint(host, port)
        self._connect_timeout = connect_timeout
        self._reply_timeout = reply_timeout
        self._client_id = client_id or f"shortinterest-{uuid.uuid4().hex[:16]}"
        unknown = set(listing_throttles or ()) - set(LISTING_PROTOS)
        if unknown:
            raise ValueError(
                f"listing_throttles names protos {sorted(unknown)}; listing protos are {sorted(LISTING_PROTOS)}"
            )
        self._throttles: dict[int, Callable[[], object]] = dict(listing_throttles or {})
        if throttle is not None:
            self._throttles[PROTO_GET_SHORT_INTEREST] = throttle
        self._max_body_len = max_body_len
        self._lock = threading.Lock()
        self._trade_days = TradeDays()
        self._conn: Connection | None = None
        self._closed = False
        # The running keepalive thread and its own stop event: a fresh pair per connect, so a close racing
        # a reconnect can never leave a thread that missed its stop signal.
        self._keepalive: tuple[threading.Thread, threading.Event] | None = None
        self._last_io = time.monotonic()
        self._requests_sent = 0
        self._listing_requests_sent = 0
        self._keepalives_sent = 0
        self._connects = 0
        self._settings_proven = settings_proven

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self._conn is not None else "idle")
        return f"OpenDClient({self._endpoint}, {state})"

    def __enter__(self) -> OpenDClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        return str(self._endpoint)

    @property
    def rsa_key_file(self) -> Path | None:
        """The key file the link is encrypted with; None for a plain link."""
        return self._rsa_key.path if self._rsa_key is not None else None

    @property
    def encryption(self) -> str | None:
        """The open connection's cipher ("AES-CBC" or "FTAES-ECB"), None when plain or not connected."""
        conn = self._conn
        return conn.encryption if conn is not None else None

    @property
    def requests_sent(self) -> int:
        """3249 requests put on the wire, resends included: what the gateway's rate limit counts."""
        return self._requests_sent

    @property
    def listing_requests_sent(self) -> int:
        """Listing requests (3202, 3205, 3213, 3222) put on the wire, resends included."""
        return self._listing_requests_sent

    @property
    def keepalives_sent(self) -> int:
        """KeepAlive round trips the gateway answered: proof the idle connection is being held open."""
        return self._keepalives_sent

    @property
    def connects(self) -> int:
        """Successful connects (InitConnect done), reconnects included."""
        return self._connects

    def is_connected(self) -> bool:
        """Whether a connection is open and the gateway has not closed it; sends nothing.

        Waits for a request in flight on another thread to finish.
        """
        with self._lock:
            return self._conn is not None and not self._conn.peer_closed()

    def connect(self) -> None:
        """Open the connection now (requests also open it on demand) and start the keepalive thread.

        Also reopens a client after close().
        """
        with self._lock:
            self._closed = False
            self._ensure_connection()

    def close(self) -> None:
        """Drop the connection and stop the keepalive thread; safe to call any number of times."""
        self._closed = True
        keepalive = self._keepalive
        if keepalive is not None:
            keepalive[1].set()
        conn = self._conn
        if conn is not None:
            conn.interrupt()  # wakes a keepalive or request blocked in recv, so the lock comes free
        with self._lock:
            keepalive, self._keepalive = self._keepalive, None
            self._drop()
        if keepalive is not None:
            thread, stop = keepalive
            stop.set()
            if thread is not threading.current_thread():
                thread.join()

    def get_global_state(self) -> GlobalState:
        return parse_global_state_reply(self._call(PROTO_GET_GLOBAL_STATE, global_state_request()))

    def get_short_interest_page(
        self, code: str | Security, next_key: str | None = None, num: int = MAX_PAGE_SIZE
    ) -> Page:
        """One page of rows, newest first, starting after `next_key` (None: the newest)."""
        security = code if isinstance(code, Security) else parse_code(code)
        check_page_args(next_key, num)
        body = short_interest_request(security, next_key, num)
        frame_body = self._call(PROTO_GET_SHORT_INTEREST, body)
        try:
            return parse_short_interest_reply(frame_body, security, self._trade_days)
        except RequestError as exc:
            if exc.is_quote_login_down:
                raise QuoteLoginError(_not_logged_in(self._endpoint, exc.ret_msg)) from exc
            raise

    def get_watchlist_groups(self, group_type: int = 3) -> list[WatchlistGroup]:
        """The account's watchlist groups of one GroupType (3: all, 1: custom, 2: system)."""
        return self._listing(
            PROTO_GET_USER_SECURITY_GROUP, user_security_group_request(group_type), parse_user_security_group_reply
        )

    def get_watchlist(self, group_name: str) -> list[StaticInfo]:
        """The securities of the watchlist group named `group_name`."""
        return self._listing(PROTO_GET_USER_SECURITY, user_security_request(group_name), parse_user_security_reply)

    def get_plate_securities(
        self, market: int, plate: str, sort_field: int = 1, ascend: bool = True
    ) -> list[StaticInfo]:
        """The securities of a plate (an index's constituents: market 1, "HSI Constituent")."""
        return self._listing(
            PROTO_GET_PLATE_SECURITY,
            plate_security_request(market, plate, sort_field, ascend),
            parse_plate_security_reply,
        )

    def get_static_info(
        self, market: int, sec_type: int, securities: Sequence[tuple[int, str]] = ()
    ) -> list[StaticInfo]:
        """Every security of one SecurityType in a QotMarket, or only `securities` ((market, symbol) pairs)."""
        return self._listing(
            PROTO_GET_STATIC_INFO, static_info_request(market, sec_type, securities), parse_static_info_reply
        )

    def _listing(self, proto_id: int, body: bytes, parse: Callable[[bytes], _T]) -> _T:
        try:
            return parse(self._call(proto_id, body))
        except RequestError as exc:
            if exc.is_quote_login_down:
                raise QuoteLoginError(_not_logged_in(self._endpoint, exc.ret_msg)) from exc
            raise

    def iter_short_interest(
        self, code: str | Security, *, start_key: str | None = None, num: int = MAX_PAGE_SIZE
    ) -> Iterator[Page]:
        """Pages from `start_key` (a key a page returned, passed verbatim) back to the oldest row.

        The last page yielded has `is_last` set. A gateway paging in a loop raises PagingLoopError
        (see proto_client.page_walk).
        """
        security = code if isinstance(code, Security) else parse_code(code)
        check_page_args(start_key, num)
        if start_key == END_OF_DATA:
            return
        walk = PageWalk(security.code, start_key)
        key = start_key
        while True:
            page = self.get_short_interest_page(security, key, num)
            yield page
            key = walk.next_key(page)
            if key is None:
                return

    def _call(self, proto_id: int, body: bytes) -> bytes:
        """Send one request and return its reply body, reconnecting and resending once if the peer had gone.

        Qot_GetShortInterest and the listing calls are throttled, each by its own, once per write. The throttle
        runs outside the lock: a rate limiter may block for most of a window, and the keepalive thread must
        still reach the idle connection meanwhile. The connection is opened before throttling so an unreachable
        gateway costs no rate-limit token.
        """
        throttle = self._throttles.get(proto_id)
        resent = False
        while True:
            if throttle is not None:
                with self._lock:
                    self._ensure_connection()
                throttle()
            with self._lock:
                conn = self._ensure_connection()
                if proto_id == PROTO_GET_SHORT_INTEREST:
                    self._requests_sent += 1
                elif proto_id in LISTING_PROTOS:
                    self._listing_requests_sent += 1
                try:
                    return self._exchange(conn, proto_id, body).body
                except ConnectionDropped as exc:
                    if self._closed:
                        raise GatewayConnectionError(f"client for {self._endpoint} was closed: {exc}") from exc
                    if resent:
                        raise GatewayConnectionError(
                            f"gateway at {self._endpoint} dropped the connection again after a reconnect: {exc}"
                        ) from exc
                    log.info("gateway at %s dropped the connection (%s); reconnecting once", self._endpoint, exc)
                    resent = True

    def _exchange(self, conn: Connection, proto_id: int, body: bytes) -> Frame:
        """One request/reply under the lock; any transport failure drops the connection."""
        self._last_io = time.monotonic()
        try:
            frame = conn.request(proto_id, body)
        except OpenDError:
            self._drop()
            raise
        finally:
            self._last_io = time.monotonic()
        return frame

    def _ensure_connection(self) -> Connection:
        """The live connection, opening one (and the keepalive thread) if needed. Caller holds the lock."""
        if self._closed:
            raise GatewayConnectionError(f"client for {self._endpoint} is closed; call connect() to reopen it")
        if self._conn is not None:
            if not self._conn.peer_closed():
                return self._conn
            log.info("gateway at %s closed the idle connection; reconnecting", self._endpoint)
            self._drop()
        try:
            conn = Connection.open(
                self._endpoint,
                client_id=self._client_id,
                connect_timeout=self._connect_timeout,
                reply_timeout=self._reply_timeout,
                max_body_len=self._max_body_len,
                rsa_key=self._rsa_key,
            )
        except EncryptionError as exc:
            # These settings completed InitConnect with this gateway before, so a connection closed during it
            # now is a gateway going down or coming up (it accepts, then closes), not a key that disagrees.
            if (self._connects or self._settings_proven) and isinstance(exc.__cause__, ConnectionDropped):
                raise ConnectionDropped(
                    f"gateway at {self._endpoint} closed the connection during InitConnect "
                    "(these settings worked before: it is probably restarting)"
                ) from exc
            raise
        if self._check_quote_login:
            self._require_quote_login(conn)
        self._conn = conn
        self._connects += 1
        self._last_io = time.monotonic()
        if self._connects > 1:
            log.info("reconnected to gateway at %s", self._endpoint)
        if self._keepalive is None:
            stop = threading.Event()
            thread = threading.Thread(
                target=self._keepalive_loop, args=(stop,), name=f"opend-keepalive-{self._endpoint}", daemon=True
            )
            self._keepalive = (thread, stop)
            thread.start()
        return conn

    def _require_quote_login(self, conn: Connection) -> None:
        """GetGlobalState on a fresh connection: a gateway not logged in would refuse every quote request."""
        try:
            state = parse_global_state_reply(conn.request(PROTO_GET_GLOBAL_STATE, global_state_request()).body)
        except BaseException:
            conn.close()
            raise
        if not state.qot_logined:
            conn.close()
            raise QuoteLoginError(_not_logged_in(self._endpoint, "GetGlobalState reports qotLogined=false"))

    def _drop(self) -> None:
        """Close the current connection, if any. Caller holds the lock."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _keepalive_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            conn = self._conn
            interval = conn.info.keepalive_interval if conn is not None and conn.info is not None else 0
            if interval <= 0:
                stop.wait(_KEEPALIVE_POLL)
                continue
            period = interval * KEEPALIVE_FRACTION
            due = self._last_io + period
            if stop.wait(max(due - time.monotonic(), 0.0)):
                return
            if not self._lock.acquire(timeout=min(period, _KEEPALIVE_POLL)):
                continue  # a request is in flight: the connection is not idle
            try:
                if stop.is_set() or self._conn is not conn or conn is None:
                    continue
                if time.monotonic() - self._last_io < period:
                    continue
                try:
                    self._exchange_keepalive(conn)
                except OpenDError as exc:
                    log.warning("keepalive to %s failed (%s); will reconnect on the next request", self._endpoint, exc)
            finally:
                self._lock.release()

    def _exchange_keepalive(self, conn: Connection) -> None:
        self._last_io = time.monotonic()
        try:
            conn.keep_alive()
            self._keepalives_sent += 1
        except OpenDError:
            self._drop()
            raise
        finally:
            self._last_io = time.monotonic()


def _not_logged_in(endpoint: Endpoint, detail: str) -> str:
    return (
        f"OpenD at {endpoint} is not logged in to the quote server ({detail}); every quote request would be "
        "refused: log OpenD in (see its console or log) and run the load again"
    )
