"""The coalescing Redis client against a real redis-server: concurrent commands share round trips, and
each caller still gets exactly its own reply, its own error, or the connection's failure; its own
connection (the wire) times out, reconnects, and speaks over a Unix socket with a password and a database."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import DataError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cache.coalesced_redis import CoalescedRedis
from cache.server import make_cache_redis, redis_server_args
from devstack.procs import free_port
from tests.conftest import RedisServer


@pytest.fixture
async def client(redis_client: Redis) -> AsyncIterator[Redis]:
    # The cache's own client (the one the gateway uses); the fixture flushed its private server.
    assert isinstance(redis_client, CoalescedRedis)
    yield redis_client


async def reads_processed(redis: Redis) -> int:
    return int((await redis.info("stats"))["total_reads_processed"])


async def test_concurrent_commands_share_round_trips_and_each_gets_its_own_typed_reply(client: Redis) -> None:
    await client.set("count", 41)
    await client.set("text", "hello")
    script = client.register_script("return redis.call('GET', KEYS[1]) .. ARGV[1]")
    await client.script_flush()  # the script's first call meets NOSCRIPT and loads it, inside a batch
    before = await reads_processed(client)

    results = await asyncio.gather(
        *(client.incr("count") for _ in range(20)),
        client.get("text"),
        client.exists("text", "missing"),
        client.xadd("stream", {"id": "e-1", "event": "{}"}),
        client.hset("h", mapping={"a": "1", "b": "2"}),
        script(keys=["text"], args=["!"]),
    )

    commands = 26
    reads = await reads_processed(client) - before - 1  # minus the INFO that counts them
    assert sorted(results[:20]) == list(range(42, 62))  # every increment once, each caller its own value
    assert results[20:23] == [b"hello", 1, results[22]] and results[22].endswith(b"-0")
    assert results[23:] == [2, b"hello!"]
    assert 1 <= reads < commands, f"{reads} round trips for {commands} commands"
    assert await client.get("count") == b"61"
    assert await client.xlen("stream") == 1


async def test_an_error_reply_reaches_only_the_command_that_caused_it(client: Redis) -> None:
    await client.set("word", "not a number")
    outcomes = await asyncio.gather(client.incr("word"), client.set("other", "ok"), client.get("word"),
                                    return_exceptions=True)
    assert isinstance(outcomes[0], ResponseError)
    assert outcomes[1:] == [True, b"not a number"]


async def test_an_argument_redis_py_would_refuse_fails_only_its_own_command(client: Redis) -> None:
    outcomes = await asyncio.gather(client.set("flag", True), client.set("other", "ok"), client.get("other"),
                                    return_exceptions=True)
    assert isinstance(outcomes[0], DataError) and "bool" in str(outcomes[0])
    assert outcomes[1:] == [True, b"ok"]
    assert await client.exists("flag") == 0


async def test_a_blocking_command_does_not_hold_the_others(client: Redis) -> None:
    waiting = asyncio.create_task(client.blpop(["empty-list"], timeout=2))
    await asyncio.sleep(0.05)  # BLPOP is now waiting on the server
    started = asyncio.get_running_loop().time()
    assert await asyncio.gather(client.set("a", "1"), client.get("a")) == [True, b"1"]
    assert asyncio.get_running_loop().time() - started < 1
    await client.rpush("empty-list", "x")
    assert list(await waiting) == [b"empty-list", b"x"]


@pytest.mark.parametrize("read", ["xread", "xreadgroup"])
async def test_a_blocking_stream_read_does_not_hold_the_others(client: Redis, read: str) -> None:
    # As redis-py writes them (its BLOCK keyword is bytes): the audit and notice consumers wait this way.
    await client.xgroup_create("quiet-stream", "g", id="0", mkstream=True)
    if read == "xread":
        waiting = asyncio.create_task(client.xread({"quiet-stream": "$"}, block=1500))
    else:
        waiting = asyncio.create_task(client.xreadgroup("g", "c", {"quiet-stream": ">"}, block=1500))
    await asyncio.sleep(0.05)  # the read is now waiting on the server
    started = asyncio.get_running_loop().time()
    assert await asyncio.gather(client.set("a", "1"), client.get("a")) == [True, b"1"]
    assert asyncio.get_running_loop().time() - started < 0.5
    await client.xadd("quiet-stream", {"n": "1"})
    assert await waiting  # the read ended with the new entry, not its timeout


BUSY_FOR_A_MOMENT = """
local started = redis.call('TIME')
repeat local now = redis.call('TIME') until (now[1] - started[1]) * 1000000 + now[2] - started[2] > 200000
return 1
"""


async def test_a_caller_that_gives_up_before_its_batch_leaves_sends_nothing(client: Redis) -> None:
    on_the_wire = asyncio.create_task(client.eval(BUSY_FOR_A_MOMENT, 0))
    await asyncio.sleep(0.05)  # the script holds the round trip for 200 ms
    queued = asyncio.create_task(client.set("abandoned", "1"))
    await asyncio.sleep(0.01)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert await on_the_wire == 1
    await asyncio.sleep(0.05)
    assert await client.exists("abandoned") == 0


async def test_when_redis_dies_every_waiting_caller_fails_fast_and_it_recovers(cache_redis_server: RedisServer,
                                                                               client: Redis) -> None:
    await client.set("k", "v")
    cache_redis_server.kill()
    try:
        started = asyncio.get_running_loop().time()
        outcomes = await asyncio.gather(*(client.get("k") for _ in range(10)), return_exceptions=True)
        elapsed = asyncio.get_running_loop().time() - started
        assert all(isinstance(o, RedisError | OSError) for o in outcomes), outcomes
        assert elapsed < 5  # the client's 1 s timeouts, not a hang
    finally:
        cache_redis_server.start()
    fresh = make_cache_redis(cache_redis_server.url)
    try:
        values = await asyncio.gather(*(fresh.set(f"n{i}", i) for i in range(5)))
        assert values == [True] * 5
        assert await client.mget([f"n{i}" for i in range(5)]) == [b"0", b"1", b"2", b"3", b"4"]
    finally:
        await fresh.aclose()


async def test_a_reply_that_does_not_come_in_time_fails_its_batch_and_the_next_one_connects_afresh(
        cache_redis_server: RedisServer, client: Redis) -> None:
    impatient = make_cache_redis(cache_redis_server.url, timeout=0.1)
    try:
        started = asyncio.get_running_loop().time()
        outcomes = await asyncio.gather(impatient.eval(BUSY_FOR_A_MOMENT, 0), impatient.set("late", "1"),
                                        return_exceptions=True)
        assert all(isinstance(o, RedisTimeoutError) for o in outcomes), outcomes
        assert asyncio.get_running_loop().time() - started < 0.19  # its own 0.1 s, not the script's 0.2 s
        await asyncio.sleep(0.2)  # the script ends; the SET after it on the old connection ran too
        assert await impatient.get("late") == b"1"
        assert await impatient.incr("after") == 1  # a new connection, nothing of the old one left to read
    finally:
        await impatient.aclose()


async def test_a_connection_the_server_closed_is_replaced_before_the_next_command(
        cache_redis_server: RedisServer, client: Redis) -> None:
    await client.set("k", "v")
    admin = Redis.from_url(cache_redis_server.url)
    try:
        killed = await admin.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1
        await asyncio.sleep(0.05)  # the hang-up reaches the client
        assert await asyncio.gather(client.get("k"), client.exists("k")) == [b"v", 1]
    finally:
        await admin.aclose()


@pytest.fixture
def socket_redis() -> Iterator[tuple[RedisServer, Path]]:
    """A private server that also listens on a Unix socket (the short path keeps under the 107-byte limit)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    data = Path(tempfile.mkdtemp(prefix="wire-"))
    sock = data / "redis.sock"
    port = free_port()
    server = RedisServer(port, data, data / "redis.log",
                         cmd=[shutil.which("redis-server") or "redis-server", *redis_server_args("16mb", port=port),
                              "--unixsocket", str(sock), "--unixsocketperm", "700"])
    server.start()
    try:
        yield server, sock
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


async def test_a_unix_socket_with_a_password_and_a_database(socket_redis: tuple[RedisServer, Path]) -> None:
    server, sock = socket_redis
    admin = Redis(host="127.0.0.1", port=server.port)
    await admin.config_set("requirepass", "wire-secret")
    await admin.aclose()
    client = make_cache_redis(f"unix://{sock}?db=2&password=wire-secret")
    wrong = make_cache_redis(f"unix://{sock}?db=2&password=not-it")
    owner = Redis(host="127.0.0.1", port=server.port, password="wire-secret", db=2)
    try:
        assert isinstance(client, CoalescedRedis) and client._wire is not None
        assert client._wire.target.path == str(sock)
        assert await asyncio.gather(client.set("k", "v"), client.get("k"), client.incr("n")) == [True, b"v", 1]
        assert await owner.get("k") == b"v"  # in database 2, through the socket
        assert await owner.execute_command("SELECT", 0) and await owner.exists("k") == 0
        refused = await asyncio.gather(wrong.get("k"), wrong.get("n"), return_exceptions=True)
        assert all(isinstance(o, RedisError) for o in refused), refused
    finally:
        for c in (client, wrong, owner):
            await c.aclose()


async def test_every_kind_of_reply_reaches_the_caller_as_redis_py_itself_returns_it(
        cache_redis_server: RedisServer, client: Redis) -> None:
    plain = Redis.from_url(cache_redis_server.url)  # redis-py's own connections, as the reference
    try:
        await plain.xgroup_create("s", "g", id="0", mkstream=True)
        for n in range(3):
            await plain.xadd("s", {"id": f"e-{n}", "event": "{}", "n": n})
        await plain.xreadgroup("g", "c1", {"s": ">"}, count=2)  # two entries now pending to c1
        await plain.hset("h", mapping={"a": "1", "b": "2"})
        await plain.sadd("set", "x", "y")
        await plain.zadd("z", {"one": 1.5, "two": 2})
        await plain.rpush("l", "p", "q")
        await plain.set("k", "v", ex=300)

        def reads(r: Redis) -> list:
            return [r.xrange("s"), r.xrevrange("s", count=1), r.xpending("s", "g"),
                    r.xautoclaim("s", "g", "c2", min_idle_time=3_600_000, start_id="0-0"), r.xlen("s"),
                    r.hgetall("h"), r.hmget("h", ["a", "zz"]), r.smembers("set"),
                    r.zrange("z", 0, -1, withscores=True), r.zscore("z", "one"), r.lrange("l", 0, -1),
                    r.mget(["k", "none"]), r.exists("k", "h", "none"), r.ttl("k") , r.type("z"),
                    r.get("none"), r.object("encoding", "l"), r.execute_command("PING")]

        expected = [await call for call in reads(plain)]
        got = await asyncio.gather(*reads(client))
        for ours, theirs in zip(got, expected, strict=True):
            assert type(ours) is type(theirs) and ours == theirs
        # Reading one's own pending entries again counts a delivery, so each client reads them once.
        pending = await plain.xreadgroup("g", "c1", {"s": "0"}, count=10)
        assert await client.xreadgroup("g", "c1", {"s": "0"}, count=10) == pending and len(pending[0][1]) == 2
    finally:
        await plain.aclose()
