"""Authorization codes: stored hashed for `code_ttl` seconds, redeemable once.

After redemption a marker (`auth:code-used:<hash>` → grant id) stays for a while, so a second
presentation of the same code is recognised and the tokens issued from it are revoked (RFC 6749 §4.1.2).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

from .grants import token_hash

CODE_KEY = "auth:code:{}"
USED_KEY = "auth:code-used:{}"


@dataclass
class CodeData:
    client_id: str
    redirect_uri: str
    code_challenge: str
    grant_id: str
    scope: str
    account_id: str
    fhir_user: str | None = None
    patient: str | None = None
    encounter: str | None = None
    on_behalf_of: str | None = None
    nonce: str | None = None
    session_id: str | None = None
    need_patient_banner: bool = True
    auth_time: int | None = None


@dataclass
class Redemption:
    data: CodeData | None
    reused_grant_id: str | None = None  # set when the code had already been redeemed


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CodeStore:
    def __init__(self, redis: Redis, *, ttl: int = 60, reuse_window: int = 3600) -> None:
        self.redis = redis
        self.ttl = ttl
        self.reuse_window = reuse_window

    async def issue(self, data: CodeData) -> str:
        code = secrets.token_urlsafe(32)
        await self.redis.set(CODE_KEY.format(token_hash(code)), json.dumps(asdict(data)), ex=self.ttl)
        return code

    async def redeem(self, code: str) -> Redemption:
        h = token_hash(code)
        raw = await self.redis.get(CODE_KEY.format(h))
        if raw is None:
            used = await self.redis.get(USED_KEY.format(h))
            return Redemption(None, _s(used) if used else None)
        data = CodeData(**json.loads(_s(raw)))
        # SET NX decides the one winner even when two redemptions race.
        first = await self.redis.set(USED_KEY.format(h), data.grant_id, nx=True, ex=self.reuse_window)
        if not first:
            return Redemption(None, data.grant_id)
        await self.redis.delete(CODE_KEY.format(h))
        return Redemption(data)
