"""Authorization requests waiting for the person (patient picker, consent), kept for `pending_ttl`."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

PENDING_KEY = "auth:pending:{}"


@dataclass
class Pending:
    """A validated authorization request waiting for the person."""

    client_id: str
    redirect_uri: str
    state: str
    code_challenge: str
    requested: list[str]
    account_id: str
    session_id: str
    nonce: str | None = None
    launch_patient: str | None = None  # EHR launch context
    encounter: str | None = None
    launch_fhir_user: str | None = None
    ehr_launch: bool = False
    patient: str | None = None
    on_behalf_of: str | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    offered: list[str] = field(default_factory=list)


class PendingStore:
    def __init__(self, redis: Redis, *, ttl: int) -> None:
        self.redis = redis
        self.ttl = ttl

    async def save(self, pending: Pending) -> str:
        """Keep the request; returns the id the page posts back."""
        pending_id = secrets.token_urlsafe(18)
        await self.redis.set(PENDING_KEY.format(pending_id), json.dumps(asdict(pending)), ex=self.ttl)
        return pending_id

    async def load(self, pending_id: str) -> Pending | None:
        if not pending_id or len(pending_id) > 100:
            return None
        raw: Any = await self.redis.get(PENDING_KEY.format(pending_id))
        if raw is None:
            return None
        return Pending(**json.loads(raw.decode() if isinstance(raw, bytes) else raw))

    async def drop(self, pending_id: str) -> None:
        await self.redis.delete(PENDING_KEY.format(pending_id))
