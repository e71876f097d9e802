"""A lean HTTP/1.1 transport for the EHR client (an `httpx` transport: everything above it is httpx's).

Why: every uncached answer is one request to the EHR, and httpx's own transport (httpcore, h11 and anyio
in pure Python) cost about as much CPU per request as the rest of the gateway's work on it. This one
parses with httptools (llhttp, the parser uvicorn already uses for our own requests) on an asyncio
protocol and writes each request in one `write`.

What it keeps: pooled keep-alive connections (at most `max_connections`, idle ones dropped after
`keepalive_expiry` seconds or when the server says `Connection: close` or hangs up), the client's timeouts
(connect; read as time without any byte from the server; pool: waiting for a free connection) and httpx's
exception types, so callers map failures exactly as before. The body is read whole before the response
is handed back (the gateway reads every EHR answer whole anyway); `Content-Encoding` is decoded by httpx
as usual. A request on a reused connection that the server closed before answering a single byte is sent
once more on a new connection when its method is idempotent.

What it hands to httpx's own transport instead (`fallback`): https, HEAD and CONNECT requests, and bodies
that are streams rather than bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, cast

import httptools
import httpx

IDEMPOTENT = frozenset({b"GET", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})
Origin = tuple[str, int]


class _Stale(Exception):
    """A reused connection was closed by the server before any byte of the answer arrived."""


class _Connection(asyncio.Protocol):
    """One TCP connection to the server and the answer being read on it (one exchange at a time)."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False  # answered before: a hang-up before any byte may be a stale keep-alive
        self.idle_since = 0.0
        self.last_activity = 0.0
        self._parser: httptools.HttpResponseParser | None = None
        self._done: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._received = False
        self._until_eof = False  # an answer without length or chunks: it ends when the server hangs up
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.status = 0
        self.keep_alive = False

    # -- asyncio.Protocol ---------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one without subclassing it

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        if self._parser is None or self._done is None or self._done.done():
            self.close()  # nothing was asked on this connection: it cannot be trusted any more
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed answer from the server: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        done = self._done
        if done is None or done.done():
            return
        if self._until_eof:
            self.status = self._parser.get_status_code() if self._parser is not None else 0
            done.set_result(None)
        elif not self._received and self.used:
            done.set_exception(_Stale())
        else:
            done.set_exception(httpx.ReadError("the server closed the connection mid-answer"))

    # -- httptools callbacks ------------------------------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        names = {name.lower() for name, _ in self.headers}
        status = self._parser.get_status_code() if self._parser is not None else 0
        self._until_eof = (b"content-length" not in names and b"transfer-encoding" not in names
                           and status >= 200 and status not in (204, 304))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self._parser is not None and self._done is not None
        self._until_eof = False
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        if not self._done.done():
            self._done.set_result(None)

    # -- one exchange -------------------------------------------------------------------------------------------
    def _fail(self, exc: Exception) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, head: bytes, body: bytes, read_timeout: float | None) -> httpx.Response:
        """Sends one request (head and body in one write) and reads its whole answer."""
        loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._done = loop.create_future()
        self._received = self._until_eof = False
        self.reason, self.headers, self.body = b"", [], []
        assert self.transport is not None
        self.last_activity = time.monotonic()
        self.transport.write(head + body)
        if read_timeout is not None:
            self._timer = loop.call_later(read_timeout, self._watch, read_timeout)
        try:
            await self._done
        finally:
            self.used = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        return httpx.Response(self.status, headers=self.headers, stream=httpx.ByteStream(b"".join(self.body)),
                              extensions={"http_version": b"HTTP/1.1", "reason_phrase": self.reason.strip()})

    def _watch(self, read_timeout: float) -> None:
        """The read timeout as httpx means it: this long without a byte from the server."""
        quiet = time.monotonic() - self.last_activity
        if quiet >= read_timeout:
            self._timer = None
            self._fail(httpx.ReadTimeout("the server sent nothing for too long"))
            self.close()
        else:
            self._timer = asyncio.get_running_loop().call_later(read_timeout - quiet, self._watch, read_timeout)


class Http1Transport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int, fallback: httpx.AsyncBaseTransport,
                 keepalive_expiry: float = 5.0) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.fallback = fallback
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open = 0  # connections made and not yet closed (idle or busy)
        self._waiters: deque[asyncio.Future[None]] = deque()

    # -- the pool -----------------------------------------------------------------------------------------------
    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed by the server
            if not conn.closed and now - conn.idle_since < self.keepalive_expiry:
                return conn
            self._discard(conn)
        return None

    def _drop_an_idle_connection(self) -> bool:
        for idle in self._idle.values():
            if idle:
                self._discard(idle.pop(0))
                return True
        return False

    async def _acquire(self, origin: Origin, pool_timeout: float | None) -> _Connection:
        while True:
            conn = self._take_idle(origin)
            if conn is not None:
                return conn
            if self._open < self.max_connections or self._drop_an_idle_connection():
                self._open += 1
                return _Connection(origin)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(pool_timeout):
                    await waiter
            except TimeoutError as exc:
                raise httpx.PoolTimeout("no connection to the server became free in time") from exc
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1
        self._wake_one()

    def _release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not conn.closed:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.origin, []).append(conn)
            self._wake_one()
        else:
            self._discard(conn)

    @staticmethod
    async def _connect(conn: _Connection, connect_timeout: float | None) -> None:
        host, port = conn.origin
        try:
            async with asyncio.timeout(connect_timeout):
                await asyncio.get_running_loop().create_connection(lambda: conn, host, port)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc

    # -- httpx ------------------------------------------------------------------------------------------------
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        method = request.method.encode()
        if url.scheme != "http" or method in (b"HEAD", b"CONNECT") or not isinstance(request.stream, httpx.ByteStream):
            return await self.fallback.handle_async_request(request)
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        origin = (url.host, url.port or 80)
        body = await request.aread()
        head = b"".join([method, b" ", url.raw_path, b" HTTP/1.1\r\n",
                         *(b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw), b"\r\n"])
        for attempt in (1, 2):
            conn = await self._acquire(origin, timeouts.get("pool"))
            reusable = False
            try:
                if conn.transport is None:
                    await self._connect(conn, timeouts.get("connect"))
                response = await conn.exchange(head, body, timeouts.get("read"))
                reusable = conn.keep_alive
                return response
            except _Stale:
                if attempt == 1 and method in IDEMPOTENT:
                    continue  # this connection is dropped below; once more on a new one
                raise httpx.RemoteProtocolError("the server closed a kept-alive connection") from None
            finally:
                self._release(conn, reusable)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        self._open = 0
        await self.fallback.aclose()
