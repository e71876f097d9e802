"""One pipelined connection to Redis on an asyncio protocol: the wire under `CoalescedRedis`.

Why: on the request path each Redis command went through redis-py's connection pool, its stream reader,
a timeout per reply and its pipeline machinery. On this project's 2-core test machine (loopback, uvloop)
that cost the gateway about 28 µs of CPU per command when concurrent requests shared a round trip, and
125 µs for a command sent alone; written by `hiredis.pack_command` and parsed by `hiredis.Reader` straight
from the protocol's `data_received`, about 11 and 62 µs. A cache hit makes three such commands.

What it keeps: replies in order to the batch that asked, each reply as its own value or its own error
(`ResponseError` and its subclasses, chosen exactly as redis-py chooses them, so `NoScriptError` still
makes a script load itself); a connect timeout and a reply timeout (the client's `socket_connect_timeout`
and `socket_timeout`); a connection that fails, times out or is closed by the server fails every batch
waiting on it with redis-py's `ConnectionError` or `TimeoutError`, and the next batch connects afresh.
Nothing is sent twice: a batch that may have reached the server is never retried here.

It speaks the RESP version redis-py's own connections would (RESP3 unless the client asks for 2: the
client's response callbacks expect those replies), with the same handshake (HELLO with AUTH, CLIENT
SETNAME, SELECT). What stays with redis-py (`target_of` answers None and the client keeps its usual
path): TLS, credential providers, decoded replies and encodings other than UTF-8.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis._parsers.encoders import Encoder
from redis.asyncio.connection import Connection, ConnectionPool, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import DEFAULT_RESP_VERSION

_MORE = object()  # hiredis: the buffer does not yet hold a whole reply


@dataclass(frozen=True)
class WireTarget:
    """Where and how to connect, from a redis-py pool's settings."""

    host: str
    port: int
    path: str | None  # a Unix socket instead of TCP
    connect_timeout: float | None
    reply_timeout: float | None
    setup: tuple[tuple[Any, ...], ...]  # sent first on every new connection

    @property
    def where(self) -> str:
        return self.path or f"{self.host}:{self.port}"


def target_of(pool: ConnectionPool) -> WireTarget | None:
    """The wire's target for this pool, or None when the pool needs something only redis-py does."""
    kw = pool.connection_kwargs
    kind = pool.connection_class
    if kind not in (Connection, UnixDomainSocketConnection):
        return None  # TLS, or a connection class of someone else's
    if (kw.get("credential_provider") is not None or kw.get("decode_responses")
            or kw.get("encoding", "utf-8").lower() not in ("utf-8", "utf8")
            or kw.get("encoding_errors", "strict") != "strict"):
        return None
    try:
        protocol = int(kw.get("protocol") or DEFAULT_RESP_VERSION)
    except ValueError:
        return None
    # The protocol redis-py's own connections speak: the client's response callbacks expect its replies.
    setup: list[tuple[Any, ...]] = []
    password, username = kw.get("password"), kw.get("username")
    if protocol == 3:
        setup.append(("HELLO", 3, "AUTH", username or "default", password) if password else ("HELLO", 3))
    elif protocol == 2:
        if password:
            setup.append(("AUTH", username, password) if username else ("AUTH", password))
    else:
        return None
    if kw.get("client_name"):
        setup.append(("CLIENT", "SETNAME", kw["client_name"]))
    if kw.get("db"):
        setup.append(("SELECT", kw["db"]))
    reply_timeout = kw.get("socket_timeout")
    return WireTarget(
        host=str(kw.get("host", "localhost")),
        port=int(kw.get("port", 6379)),
        path=kw.get("path") if kind is UnixDomainSocketConnection else None,
        connect_timeout=kw.get("socket_connect_timeout", reply_timeout),
        reply_timeout=reply_timeout,
        setup=tuple(setup),
    )


# The client's own encoding (target_of insists on UTF-8, strict), for what hiredis would write differently.
_ENCODER = Encoder("utf-8", "strict", False)


def _arg(value: Any) -> bytes | str | int:
    kind = type(value)
    if kind is str or kind is bytes or kind is int:
        return value  # type: ignore[no-any-return]  # hiredis writes these exactly as redis-py's encoder would
    encoded = _ENCODER.encode(value)  # floats as repr(); refuses bool, None and the rest with DataError
    return encoded if type(encoded) is bytes else bytes(encoded)


def pack_command(args: Sequence[Any]) -> bytes:
    """One command in Redis's wire format; a first argument like 'SCRIPT LOAD' is two words on the wire.
    Raises redis-py's DataError for an argument redis-py would refuse."""
    name = args[0]
    words = tuple(name.split()) if isinstance(name, str) and " " in name else (name,)
    return hiredis.pack_command((*words, *(_arg(a) for a in args[1:])))


def pack(commands: Sequence[Sequence[Any]]) -> bytes:
    return b"".join(pack_command(args) for args in commands)


class _Batch:
    __slots__ = ("future", "replies", "size")

    def __init__(self, future: asyncio.Future[list[Any]], size: int) -> None:
        self.future = future
        self.size = size
        self.replies: list[Any] = []


class _Replies(asyncio.Protocol):
    """The connection: hands the replies to the batches in the order they were sent."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader(protocolError=InvalidResponse, replyError=BaseParser.parse_error,
                                     notEnoughData=_MORE)
        self.waiting: deque[_Batch] = deque()
        self.failed: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while self.waiting:
                batch = self.waiting[0]
                while len(batch.replies) < batch.size:
                    reply = self.reader.gets()
                    if reply is _MORE:
                        return
                    if type(reply) is hiredis.PushNotification:
                        continue  # RESP3 out-of-band news (none is asked for on this connection), not a reply
                    batch.replies.append(reply)
                self.waiting.popleft()
                if not batch.future.done():  # its sender may have been cancelled; the replies are read anyway
                    batch.future.set_result(batch.replies)
            if self.reader.has_data():
                raise InvalidResponse("Redis sent a reply nobody asked for")
        except InvalidResponse as exc:
            self.fail(RedisConnectionError(f"Protocol error from Redis: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"Connection to Redis lost: {exc}" if exc else
                                       "Connection closed by server."), close=False)

    def fail(self, error: BaseException, *, close: bool = True) -> None:
        """Every waiting batch gets `error`; the connection is not used again."""
        if self.failed is None:
            self.failed = error
        while self.waiting:
            batch = self.waiting.popleft()
            if not batch.future.done():
                batch.future.set_exception(error)
        if close and self.transport is not None:
            self.transport.abort()


def _time_out(conn: _Replies) -> None:
    # The error is made only when a reply is late, not for every batch.
    conn.fail(RedisTimeoutError("Timeout reading from Redis"))


class RedisWire:
    """Sends batches of commands on one connection (made on first use, and again after a failure)."""

    def __init__(self, target: WireTarget) -> None:
        self.target = target
        self._conn: _Replies | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def send(self, packed: Sequence[bytes]) -> list[Any]:
        """One reply per packed command (`pack_command`), in order; an error reply is returned as its
        exception, not raised. Raises redis-py's ConnectionError or TimeoutError when the connection fails
        (the commands may have run)."""
        conn = await self._connection()
        return await self._exchange(conn, b"".join(packed), len(packed))

    async def _exchange(self, conn: _Replies, data: bytes, size: int) -> list[Any]:
        loop = asyncio.get_running_loop()
        batch = _Batch(loop.create_future(), size)
        conn.waiting.append(batch)
        assert conn.transport is not None
        conn.transport.write(data)
        timer = None
        if self.target.reply_timeout:
            timer = loop.call_later(self.target.reply_timeout, _time_out, conn)
        try:
            return await batch.future
        finally:
            if timer is not None:
                timer.cancel()

    async def _connection(self) -> _Replies:
        loop = asyncio.get_running_loop()
        conn = self._conn
        if conn is not None and conn.failed is None and self._loop is loop:
            return conn
        self.close()
        conn = await self._connect(loop)
        if self.target.setup:
            replies = await self._exchange(conn, pack(self.target.setup), len(self.target.setup))
            for reply in replies:
                if isinstance(reply, Exception):
                    conn.fail(reply)
                    raise reply
        self._conn, self._loop = conn, loop
        return conn

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Replies:
        target = self.target
        try:
            async with asyncio.timeout(target.connect_timeout):
                if target.path is not None:
                    _, conn = await loop.create_unix_connection(_Replies, target.path)
                else:
                    _, conn = await loop.create_connection(_Replies, target.host, target.port)
        except TimeoutError as exc:
            raise RedisTimeoutError(f"Timeout connecting to Redis at {target.where}") from exc
        except OSError as exc:
            raise RedisConnectionError(f"Error connecting to Redis at {target.where}: {exc.strerror or exc}") from exc
        return conn

    def close(self) -> None:
        conn, self._conn, self._loop = self._conn, None, None
        if conn is not None and conn.transport is not None:
            # A transport of an event loop that has since closed cannot be closed through it any more.
            with contextlib.suppress(RuntimeError):
                conn.transport.close()
