"""An in-memory stand-in for the few redis.asyncio commands the accounts store, sessions and lockout use, so
the accounts pages can be driven in unit tests: the real classes under test, only the storage is fake.
Expiry times are ignored (the classes under test keep their own clocks in the values they store)."""

from __future__ import annotations

from typing import Any


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class MemoryRedis:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def get(self, key: str) -> bytes | None:
        value = self.data.get(key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: Any, ex: int | None = None, nx: bool = False, keepttl: bool = False
                  ) -> bool:
        if nx and key in self.data:
            return False
        self.data[key] = _b(value)
        return True

    async def delete(self, *keys: str) -> int:
        return sum(self.data.pop(k, None) is not None for k in keys)

    async def exists(self, *keys: str) -> int:
        return sum(k in self.data for k in keys)

    async def expire(self, key: str, seconds: int) -> bool:
        return key in self.data

    async def incr(self, key: str) -> int:
        value = int(self.data.get(key, b"0")) + 1
        self.data[key] = _b(value)
        return value

    async def sadd(self, key: str, *members: Any) -> int:
        group = self.data.setdefault(key, set())
        new = {_b(m) for m in members} - group
        group |= new
        return len(new)

    async def srem(self, key: str, *members: Any) -> int:
        group = self.data.get(key, set())
        gone = {_b(m) for m in members} & group
        group -= gone
        return len(gone)

    async def smembers(self, key: str) -> set[bytes]:
        return set(self.data.get(key, set()))

    async def scard(self, key: str) -> int:
        return len(self.data.get(key, set()))

    async def zadd(self, key: str, mapping: dict[str, float]) -> int:
        zset = self.data.setdefault(key, {})
        zset.update({_b(m): float(s) for m, s in mapping.items()})
        return len(mapping)

    async def zremrangebyscore(self, key: str, low: Any, high: float) -> int:
        zset = self.data.get(key, {})
        floor = float("-inf") if low == "-inf" else float(low)
        gone = [m for m, s in zset.items() if floor <= s <= high]
        for m in gone:
            del zset[m]
        return len(gone)

    async def zrange(self, key: str, start: int, end: int, withscores: bool = False) -> list[Any]:
        ordered = sorted(self.data.get(key, {}).items(), key=lambda item: item[1])
        ordered = ordered[start:] if end == -1 else ordered[start:end + 1]
        return ordered if withscores else [m for m, _ in ordered]

    async def zrevrange(self, key: str, start: int, end: int) -> list[Any]:
        ordered = sorted(self.data.get(key, {}).items(), key=lambda item: item[1], reverse=True)
        ordered = ordered[start:] if end == -1 else ordered[start:end + 1]
        return [m for m, _ in ordered]

    async def zrem(self, key: str, *members: Any) -> int:
        zset = self.data.get(key, {})
        return sum(zset.pop(_b(m), None) is not None for m in members)

    async def scan_iter(self, match: str = "*", count: int | None = None) -> Any:
        prefix = match.rstrip("*")
        for key in list(self.data):
            if key.startswith(prefix) and isinstance(self.data.get(key), bytes):
                yield key.encode()

    def pipeline(self, transaction: bool = True) -> MemoryPipeline:
        return MemoryPipeline(self)


class MemoryPipeline:
    """Queues commands and runs them in order on `execute()` (one caller at a time: no interleaving)."""

    def __init__(self, redis: MemoryRedis) -> None:
        self.redis = redis
        self.queued: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    async def __aenter__(self) -> MemoryPipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.queued.clear()

    def __getattr__(self, name: str) -> Any:
        def queue(*args: Any, **kwargs: Any) -> MemoryPipeline:
            self.queued.append((name, args, kwargs))
            return self

        return queue

    async def execute(self) -> list[Any]:
        results = [await getattr(self.redis, name)(*args, **kwargs) for name, args, kwargs in self.queued]
        self.queued.clear()
        return results
