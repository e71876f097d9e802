"""The Redis wire without a server: it writes exactly what redis-py writes, refuses what redis-py refuses,
hands each batch its own replies however the bytes arrive, and fails every waiting batch when the
connection goes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError

from cache.redis_wire import _Batch, _Replies, pack, target_of

ARGS = st.one_of(st.text(max_size=20), st.binary(max_size=20), st.integers(), st.floats(allow_nan=False),
                 st.binary(max_size=8).map(bytearray), st.binary(max_size=8).map(memoryview))


def redis_py_packed(commands: list[tuple[Any, ...]]) -> bytes:
    conn = Redis().connection_pool.make_connection()
    return b"".join(bytes(chunk) for chunk in conn.pack_commands(commands))


@given(st.lists(st.tuples(st.sampled_from(["GET", "SET", "XADD", "SCRIPT LOAD", b"EVALSHA", "CLIENT SETNAME"]),
                          st.lists(ARGS, max_size=6)), min_size=1, max_size=5))
@example([("SET", ["é", 0.1, 10**30, -5, b"\x00\r\n"])])
def test_commands_are_packed_exactly_as_redis_py_packs_them(commands: list[tuple[Any, list[Any]]]) -> None:
    flat = [(name, *args) for name, args in commands]
    assert pack(flat) == redis_py_packed(flat)


@pytest.mark.parametrize("bad", [True, None, object(), 1.5j])
def test_what_redis_py_refuses_to_send_is_refused_the_same_way(bad: Any) -> None:
    with pytest.raises(DataError) as ours:
        pack([("SET", "k", bad)])
    with pytest.raises(DataError) as theirs:
        redis_py_packed([("SET", "k", bad)])
    assert str(ours.value) == str(theirs.value)


def test_the_target_is_read_from_the_clients_settings() -> None:
    tcp = target_of(Redis.from_url("redis://alice:s3cret@cache.internal:6390/3", client_name="gw",
                                   socket_timeout=2.0, socket_connect_timeout=1.0).connection_pool)
    assert tcp is not None
    assert (tcp.host, tcp.port, tcp.path, tcp.reply_timeout, tcp.connect_timeout) == ("cache.internal", 6390, None,
                                                                                          2.0, 1.0)
    # RESP3, as redis-py's own connections speak it by default: its response callbacks expect those replies
    assert tcp.setup == (("HELLO", 3, "AUTH", "alice", "s3cret"), ("CLIENT", "SETNAME", "gw"), ("SELECT", 3))

    unix = target_of(Redis.from_url("unix:///run/redis/redis.sock?db=0", password="pw").connection_pool)
    assert unix is not None
    assert unix.path == "/run/redis/redis.sock" and unix.setup == (("HELLO", 3, "AUTH", "default", "pw"),)

    resp2 = target_of(Redis.from_url("redis://127.0.0.1:6379/1", password="pw", protocol=2).connection_pool)
    assert resp2 is not None and resp2.setup == (("AUTH", "pw"), ("SELECT", 1))


@pytest.mark.parametrize("url, options", [
    ("rediss://cache.internal:6390/0", {}),  # TLS
    ("redis://127.0.0.1:6379/0", {"decode_responses": True}),
    ("redis://127.0.0.1:6379/0", {"encoding": "latin-1"}),
])
def test_what_only_redis_py_handles_stays_with_redis_py(url: str, options: dict[str, Any]) -> None:
    assert target_of(Redis.from_url(url, **options).connection_pool) is None


class FakeTransport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


def connection() -> _Replies:
    conn = _Replies()
    conn.connection_made(FakeTransport())  # type: ignore[arg-type]
    return conn


async def test_replies_reach_their_batches_in_order_however_the_bytes_are_split() -> None:
    loop = asyncio.get_running_loop()
    conn = connection()
    first, second = _Batch(loop.create_future(), 2), _Batch(loop.create_future(), 3)
    conn.waiting.extend([first, second])
    wire = b"+OK\r\n:42\r\n$5\r\nhello\r\n-NOSCRIPT No matching script.\r\n*2\r\n$1\r\na\r\n$-1\r\n"
    for i in range(len(wire)):  # one byte at a time: the worst a socket can do
        conn.data_received(wire[i:i + 1])
        if i < 9:
            assert not first.future.done()
    assert first.future.result() == [b"OK", 42]
    hello, error, array = second.future.result()
    assert isinstance(error, NoScriptError)  # as redis-py maps it: a script then loads itself
    assert hello == b"hello" and array == [b"a", None]


async def test_resp3_replies_arrive_as_redis_py_reads_them_and_pushed_news_is_not_taken_for_a_reply() -> None:
    conn = connection()
    batch = _Batch(asyncio.get_running_loop().create_future(), 2)
    conn.waiting.append(batch)
    conn.data_received(b">3\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$1\r\nx\r\n"  # out of band
                       b"%1\r\n$6\r\nstream\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$2\r\nid\r\n$1\r\ne\r\n"
                       b"#t\r\n")
    assert batch.future.result() == [{b"stream": [[b"1-0", [b"id", b"e"]]]}, True]


async def test_an_error_reply_is_the_exception_redis_py_would_raise() -> None:
    conn = connection()
    batch = _Batch(asyncio.get_running_loop().create_future(), 2)
    conn.waiting.append(batch)
    conn.data_received(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n+OK\r\n")
    error, ok = batch.future.result()
    assert type(error) is ResponseError and "WRONGTYPE" in str(error)
    assert ok == b"OK"


async def test_a_lost_connection_fails_every_waiting_batch_and_is_not_used_again() -> None:
    loop = asyncio.get_running_loop()
    conn = connection()
    first, second = _Batch(loop.create_future(), 1), _Batch(loop.create_future(), 1)
    conn.waiting.extend([first, second])
    conn.connection_lost(ConnectionResetError("reset by peer"))
    for batch in (first, second):
        with pytest.raises(RedisConnectionError):
            batch.future.result()
    assert conn.failed is not None and not conn.waiting


async def test_a_reply_nobody_asked_for_or_a_garbled_one_ends_the_connection() -> None:
    loop = asyncio.get_running_loop()
    unasked = connection()
    unasked.data_received(b"+OK\r\n")
    assert unasked.failed is not None and unasked.transport.aborted  # type: ignore[attr-defined]

    garbled = connection()
    batch = _Batch(loop.create_future(), 1)
    garbled.waiting.append(batch)
    garbled.data_received(b"?what\r\n")
    with pytest.raises(RedisConnectionError, match="Protocol error"):
        batch.future.result()
    assert garbled.transport.aborted  # type: ignore[attr-defined]


async def test_a_batch_whose_sender_gave_up_still_takes_its_replies() -> None:
    loop = asyncio.get_running_loop()
    conn = connection()
    abandoned, next_one = _Batch(loop.create_future(), 1), _Batch(loop.create_future(), 1)
    abandoned.future.cancel()
    conn.waiting.extend([abandoned, next_one])
    conn.data_received(b"$3\r\nold\r\n$3\r\nnew\r\n")
    assert next_one.future.result() == [b"new"]  # not the abandoned batch's reply
