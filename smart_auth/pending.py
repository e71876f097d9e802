"""Authorization requests waiting for the person (patient picker, consent), kept for `pending_ttl`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from .expiring import ExpiringRecords

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


class PendingStore(ExpiringRecords[Pending]):
    def __init__(self, redis: Redis, *, ttl: int) -> None:
        super().__init__(redis, key=PENDING_KEY, kind=Pending, ttl=ttl, id_bytes=18)
