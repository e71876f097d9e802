"""`Idempotency-Key` on writes: a retried request gets the first answer instead of a second write.

Redis keeps no FHIR content here: a finished write is remembered as its status and the reference and
version of the resource it wrote. A repeat is answered by reading that version again through the access
path (compartment-checked and audited like any read), so a message text never sits in Redis.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .errors import FHIRError

log = logging.getLogger("fhir_gateway.idempotency")
PENDING_TTL = 120


@dataclass(frozen=True)
class Stored:
    """The first answer to a write, as much of it as is kept: status and what was written."""

    status: int
    ref: str | None  # "Type/id" of the resource written
    version: str | None


def fingerprint(method: str, target: str, body: Any) -> str:
    """What makes two requests "the same write" (a key reused for another request is refused)."""
    return hashlib.sha256(f"{method} {target} {json.dumps(body, sort_keys=True)}".encode()).hexdigest()


def _stored(record: dict[str, Any]) -> Stored:
    if "body" in record:
        # Written before bodies were dropped from the store (kept at most a day): only its address is used.
        body = record.get("body") or {}
        ref = f"{body['resourceType']}/{body['id']}" if body.get("resourceType") and body.get("id") else None
        return Stored(record["status"], ref, (body.get("meta") or {}).get("versionId"))
    return Stored(record["status"], record.get("ref"), record.get("version"))


class IdempotencyStore:
    def __init__(self, redis: Redis, ttl: int = 86_400) -> None:
        self.redis = redis
        self.ttl = ttl

    @staticmethod
    def _key(binding: str, key: str) -> str:
        return "idem:" + hashlib.sha256(f"{binding}|{key}".encode()).hexdigest()

    async def begin(self, binding: str, key: str, fingerprint: str) -> Stored | None:
        """None: go ahead and write. A Stored: answer with it. Raises on a clash."""
        if not key or len(key) > 200:
            raise FHIRError(400, "invalid", "Idempotency-Key must be 1 to 200 characters")
        rkey = self._key(binding, key)
        try:
            claimed = await self.redis.set(rkey, json.dumps({"state": "pending", "fp": fingerprint}),
                                           nx=True, ex=PENDING_TTL)
            if claimed:
                return None
            raw = await self.redis.get(rkey)
        except RedisError:
            log.warning("idempotency store unavailable; relying on the write's own guards")
            return None
        if raw is None:
            return None
        record = json.loads(raw)
        if record.get("fp") != fingerprint:
            raise FHIRError(422, "business-rule", "This Idempotency-Key was already used for a different request")
        if record.get("state") == "pending":
            raise FHIRError(409, "conflict", "A request with this Idempotency-Key is still being processed")
        return _stored(record)

    async def finish(self, binding: str, key: str, fingerprint: str, stored: Stored) -> None:
        record = {"state": "done", "fp": fingerprint, "status": stored.status, "ref": stored.ref,
                  "version": stored.version}
        try:
            await self.redis.set(self._key(binding, key), json.dumps(record), ex=self.ttl)
        except RedisError:
            log.warning("idempotency result not stored")

    async def abandon(self, binding: str, key: str) -> None:
        try:
            await self.redis.delete(self._key(binding, key))
        except RedisError:
            log.warning("idempotency claim not released")
