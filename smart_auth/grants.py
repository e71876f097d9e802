"""Grants (one per completed authorization) and their rotating refresh tokens, in Redis.

`auth:grant:<id>` (hash, never expires) holds who/what/which scopes and the hash of the one refresh
token that is currently valid. `auth:refresh:<sha256>` maps every refresh token ever issued to its
grant for as long as it could have been used, so presenting a rotated one is recognised as reuse and
kills the whole grant (`revocation.revoke_grant` makes the gateway refuse its access tokens at once).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from .revocation import revoke_grant

GRANT_KEY = "auth:grant:{}"
REFRESH_KEY = "auth:refresh:{}"
ACCOUNT_GRANTS = "auth:account-grants:{}"
SESSION_GRANTS = "auth:session-grants:{}"

# Compare-and-swap of the current refresh token hash; -1 when the grant is no longer active.
_ROTATE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return -1 end
if redis.call('HGET', KEYS[1], 'refresh_hash') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'refresh_hash', ARGV[2], 'refresh_exp', ARGV[3])
  return 1
end
return 0
"""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_grant_id() -> str:
    return secrets.token_urlsafe(18)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class GrantRecord:
    """One completed authorization as stored (the gateway's "may I?" answer is `scopes.Grant`)."""

    grant_id: str
    client_id: str
    account_id: str
    scope: str
    fhir_user: str | None = None
    patient: str | None = None
    encounter: str | None = None
    on_behalf_of: str | None = None  # RelatedPerson/... when a caregiver acts for a patient
    session_id: str | None = None
    online: bool = False
    need_patient_banner: bool = True
    status: str = "active"
    refresh_hash: str | None = None
    refresh_exp: float = 0.0
    created: float = field(default_factory=time.time)

    def to_redis(self) -> dict[str, str]:
        return {k: json.dumps(v) for k, v in asdict(self).items() if k not in ("status", "refresh_hash")} | {
            "status": self.status,
            "refresh_hash": self.refresh_hash or "",
        }

    @classmethod
    def from_redis(cls, raw: dict[Any, Any]) -> GrantRecord:
        data = {_s(k): _s(v) for k, v in raw.items()}
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name not in data:
                continue
            values[name] = data[name] if name in ("status", "refresh_hash") else json.loads(data[name])
        values["refresh_hash"] = values.get("refresh_hash") or None
        return cls(**values)


class GrantStore:
    """Grants and refresh tokens. `revoke_for` is the seam used by the accounts side."""

    def __init__(
        self,
        redis: Redis,
        *,
        access_token_ttl: int = 3600,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.redis = redis
        self.access_token_ttl = access_token_ttl
        self.now = now or time.time

    async def create(self, grant: GrantRecord, refresh_token: str | None, refresh_ttl: int) -> None:
        if refresh_token:
            grant.refresh_hash = token_hash(refresh_token)
            grant.refresh_exp = self.now() + refresh_ttl
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(GRANT_KEY.format(grant.grant_id), mapping=grant.to_redis())
        pipe.sadd(ACCOUNT_GRANTS.format(grant.account_id), grant.grant_id)
        if grant.session_id:
            pipe.sadd(SESSION_GRANTS.format(grant.session_id), grant.grant_id)
        if refresh_token:
            pipe.set(REFRESH_KEY.format(grant.refresh_hash), grant.grant_id, ex=refresh_ttl)
        await pipe.execute()

    async def get(self, grant_id: str) -> GrantRecord | None:
        raw = await self.redis.hgetall(GRANT_KEY.format(grant_id))
        return GrantRecord.from_redis(raw) if raw else None

    async def grant_for_refresh(self, refresh_token: str) -> GrantRecord | None:
        grant_id = await self.redis.get(REFRESH_KEY.format(token_hash(refresh_token)))
        return await self.get(_s(grant_id)) if grant_id else None

    async def rotate(self, grant: GrantRecord, presented: str, new_token: str, refresh_ttl: int) -> bool:
        """Swap the refresh token; False when `presented` is not the current one (reuse) or dead."""
        new_hash = token_hash(new_token)
        exp = self.now() + refresh_ttl
        swapped = await self.redis.eval(
            _ROTATE, 1, GRANT_KEY.format(grant.grant_id), token_hash(presented), new_hash, json.dumps(exp)
        )
        if int(swapped) != 1:
            return False
        await self.redis.set(REFRESH_KEY.format(new_hash), grant.grant_id, ex=refresh_ttl)
        grant.refresh_hash, grant.refresh_exp = new_hash, exp
        return True

    async def is_active(self, grant_id: str) -> bool:
        status = await self.redis.hget(GRANT_KEY.format(grant_id), "status")
        return status is not None and _s(status) == "active"

    async def revoke(self, grant_id: str) -> bool:
        """Revoke a grant: its refresh token stops working and its access tokens are refused at once."""
        key = GRANT_KEY.format(grant_id)
        was_active = await self.is_active(grant_id)
        # Mark in the shared revocation set first: the gateway sees it on its next request.
        await revoke_grant(self.redis, grant_id, self.access_token_ttl + 60)
        if await self.redis.exists(key):
            await self.redis.hset(key, mapping={"status": "revoked", "refresh_hash": ""})
        return was_active

    async def revoke_for(self, account_id: str, patient_id: str | None = None, *,
                         keep_session: str | None = None) -> int:
        """Revoke every live grant of an account (only those bound to `patient_id` when given; never those
        made in the sign-in session `keep_session`, the one that just changed the password)."""
        count = 0
        index = ACCOUNT_GRANTS.format(account_id)
        for raw_id in await self.redis.smembers(index):
            grant_id = _s(raw_id)
            grant = await self.get(grant_id)
            if grant is None or grant.status != "active":
                await self.redis.srem(index, grant_id)
                continue
            if patient_id is not None and grant.patient != patient_id:
                continue
            if keep_session is not None and grant.session_id == keep_session:
                continue
            if await self.revoke(grant_id):
                count += 1
            await self.redis.srem(index, grant_id)
        return count

    async def revoke_for_session(self, session_id: str) -> int:
        """Sign-out: online_access grants die with the session that created them."""
        count = 0
        index = SESSION_GRANTS.format(session_id)
        for raw_id in await self.redis.smembers(index):
            grant = await self.get(_s(raw_id))
            if grant is not None and grant.online and grant.status == "active" and await self.revoke(grant.grant_id):
                count += 1
        await self.redis.delete(index)
        return count
