"""The coalescing Redis client against a real redis-server: concurrent commands share round trips, and
each caller still gets exactly its own reply, its own error, or the connection's failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from cache.coalesced_redis import CoalescedRedis
from cache.server import make_cache_redis
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


async def test_a_blocking_command_does_not_hold_the_others(client: Redis) -> None:
    waiting = asyncio.create_task(client.blpop(["empty-list"], timeout=2))
    await asyncio.sleep(0.05)  # BLPOP is now waiting on the server
    started = asyncio.get_running_loop().time()
    assert await asyncio.gather(client.set("a", "1"), client.get("a")) == [True, b"1"]
    assert asyncio.get_running_loop().time() - started < 1
    await client.rpush("empty-list", "x")
    assert list(await waiting) == [b"empty-list", b"x"]


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
