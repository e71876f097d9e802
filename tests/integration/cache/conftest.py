"""A private redis-server for the cache tests (they stop and restart it; the shared 6379 is never touched)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from cache.crypto import CacheCipher
from cache.server import make_cache_redis, redis_server_args
from cache.store import ResponseCache


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server process on a fixed port that a test may stop and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary
        self.proc = subprocess.Popen(
            [binary, *redis_server_args("64mb", port=self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def cache_redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    server = RedisServer(_free_port())
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
