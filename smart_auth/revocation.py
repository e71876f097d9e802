"""Revocation state shared by the authorization server and the gateway (Redis keys, no I/O policy).

An access token is dead when its own `jti` was revoked or when the grant it came from (`grant_id`
claim) was revoked — refresh-token reuse and proxy withdrawal kill every live token of a grant at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

REVOKED_JTI = "auth:revoked:jti:{}"
REVOKED_GRANT = "auth:revoked:grant:{}"


def _ttl_until(exp: int | float | None, floor: int = 60) -> int:
    if exp is None:
        return 86_400
    return max(int(exp - time.time()) + 5, floor)


async def revoke_access_token(redis: Redis, jti: str, exp: int | float | None) -> None:
    await redis.set(REVOKED_JTI.format(jti), "1", ex=_ttl_until(exp))


async def revoke_grant(redis: Redis, grant_id: str, ttl_seconds: int) -> None:
    """Mark a grant revoked for as long as any token of it could still be alive."""
    await redis.set(REVOKED_GRANT.format(grant_id), "1", ex=max(ttl_seconds, 60))


async def is_revoked(redis: Redis, claims: Mapping[str, Any]) -> bool:
    keys = [REVOKED_JTI.format(claims.get("jti", ""))]
    if claims.get("grant_id"):
        keys.append(REVOKED_GRANT.format(claims["grant_id"]))
    return bool(await redis.exists(*keys))


class RevocationStore:
    """The revocation set as the authorization server uses it (the gateway reads it with `is_revoked`)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def revoke_access_token(self, jti: str, exp: int | float | None) -> None:
        await revoke_access_token(self.redis, jti, exp)

    async def revoke_grant(self, grant_id: str, ttl_seconds: int) -> None:
        await revoke_grant(self.redis, grant_id, ttl_seconds)

    async def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        return await is_revoked(self.redis, claims)
