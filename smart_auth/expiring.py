"""Short-lived records behind an opaque random id (launch contexts, half-finished authorizations)."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis

T = TypeVar("T")


class ExpiringRecords(Generic[T]):
    def __init__(self, redis: Redis, *, key: str, kind: type[T], ttl: int, id_bytes: int = 16) -> None:
        self.redis = redis
        self.key = key  # e.g. "auth:launch:{}"
        self.kind = kind
        self.ttl = ttl
        self.id_bytes = id_bytes

    async def create(self, record: T) -> str:
        """Keep `record` for `ttl` seconds; returns its new id."""
        record_id = secrets.token_urlsafe(self.id_bytes)
        await self.redis.set(self.key.format(record_id), json.dumps(asdict(record)), ex=self.ttl)  # type: ignore[call-overload]
        return record_id

    async def get(self, record_id: str | None) -> T | None:
        if not record_id or len(record_id) > 100:
            return None
        raw: Any = await self.redis.get(self.key.format(record_id))
        if raw is None:
            return None
        return self.kind(**json.loads(raw.decode() if isinstance(raw, bytes) else raw))

    async def drop(self, record_id: str) -> None:
        await self.redis.delete(self.key.format(record_id))
