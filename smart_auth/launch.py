"""EHR launch contexts: an opaque `launch` id resolving to patient (+ encounter, fhirUser)."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

LAUNCH_KEY = "auth:launch:{}"


@dataclass
class LaunchContext:
    patient: str
    encounter: str | None = None
    fhir_user: str | None = None
    created_by: str | None = None


class LaunchStore:
    def __init__(self, redis: Redis, *, ttl: int = 600) -> None:
        self.redis = redis
        self.ttl = ttl

    async def create(self, context: LaunchContext) -> str:
        launch_id = secrets.token_urlsafe(16)
        await self.redis.set(LAUNCH_KEY.format(launch_id), json.dumps(asdict(context)), ex=self.ttl)
        return launch_id

    async def get(self, launch_id: str) -> LaunchContext | None:
        if not launch_id or len(launch_id) > 100:
            return None
        raw: Any = await self.redis.get(LAUNCH_KEY.format(launch_id))
        if raw is None:
            return None
        return LaunchContext(**json.loads(raw.decode() if isinstance(raw, bytes) else raw))
