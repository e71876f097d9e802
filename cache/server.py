"""The cache's own Redis: client construction, server flags, and a memory report for benchmarks.

The cache runs on a separate Redis with ``maxmemory`` + ``allkeys-lru`` so that eviction can only
ever hit cache data; auth state and audit live on the main Redis (noeviction, AOF).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .coalesced_redis import CoalescedRedis


def redis_server_args(maxmemory: str, *, port: int | None = None, bind: str = "127.0.0.1") -> list[str]:
    """Command-line flags for ``redis-server`` running the cache instance (append to the binary)."""
    args = [
        "--bind",
        bind,
        "--protected-mode",
        "yes",
        "--maxmemory",
        maxmemory,
        # Any key may go: every cache key is disposable and has a TTL anyway.
        "--maxmemory-policy",
        "allkeys-lru",
        "--maxmemory-samples",
        "10",
        # A cache needs no persistence: a restart is just a cold cache.
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    if port is not None:
        args = ["--port", str(port), *args]
    return args


def make_cache_redis(url: str, *, timeout: float = 1.0) -> Redis:
    """A client that fails fast: a dead cache Redis must cost a request ~nothing, never hang it; the
    look-ups of concurrent requests share round trips."""
    return CoalescedRedis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        health_check_interval=10,
        decode_responses=False,
    )


async def memory_report(redis: Redis) -> dict[str, Any]:
    """used_memory (bytes), keys, and the eviction settings/counters of the cache instance."""
    memory = await redis.info("memory")
    stats = await redis.info("stats")
    keys = await redis.dbsize()
    return {
        "used_memory": int(memory.get("used_memory", 0)),
        "used_memory_human": memory.get("used_memory_human"),
        "maxmemory": int(memory.get("maxmemory", 0)),
        "maxmemory_policy": memory.get("maxmemory_policy"),
        "evicted_keys": int(stats.get("evicted_keys", 0)),
        "expired_keys": int(stats.get("expired_keys", 0)),
        "keys": int(keys),
    }
