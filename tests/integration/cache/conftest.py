"""A private redis-server for the cache tests (they stop and restart it; the shared 6379 is never touched)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from cache.crypto import CacheCipher
from cache.server import make_cache_redis, redis_server_args
from cache.store import ResponseCache
from devstack.procs import free_port
from tests.conftest import RedisServer


def cache_redis(port: int) -> RedisServer:
    """Started with the cache instance's flags (bounded memory, LRU, no persistence)."""
    data = Path(tempfile.mkdtemp(prefix="cache-redis-"))
    binary = shutil.which("redis-server") or "redis-server"
    return RedisServer(port, data, data / "redis.log", cmd=[binary, *redis_server_args("64mb", port=port)])


@pytest.fixture(scope="session")
def cache_redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    server = cache_redis(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(cache_redis_server: RedisServer) -> AsyncIterator[Redis]:
    if cache_redis_server.proc is None:
        cache_redis_server.start()
    client = make_cache_redis(cache_redis_server.url, timeout=1.0)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def cipher() -> CacheCipher:
    return CacheCipher(b"k" * 32)


@pytest.fixture
def cache(redis_client: Redis, cipher: CacheCipher) -> ResponseCache:
    return ResponseCache(redis_client, cipher, ttl=300, stale_ttl=600)


@pytest.fixture(scope="session")
def hapi_base(ehr_base_url: str) -> str:
    # Through the session fixture, so HAPI is started (and loaded) when it is not running yet.
    return ehr_base_url.rstrip("/")
