"""EHR launch contexts: an opaque `launch` id resolving to patient (+ encounter, fhirUser)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from .expiring import ExpiringRecords

LAUNCH_KEY = "auth:launch:{}"


@dataclass
class LaunchContext:
    patient: str
    encounter: str | None = None
    fhir_user: str | None = None
    created_by: str | None = None


class LaunchStore(ExpiringRecords[LaunchContext]):
    def __init__(self, redis: Redis, *, ttl: int = 600) -> None:
        super().__init__(redis, key=LAUNCH_KEY, kind=LaunchContext, ttl=ttl)
