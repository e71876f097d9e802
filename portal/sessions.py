"""Portal sessions: what a signed-in browser's cookie stands for, kept server-side in the state Redis.

The cookie holds a random token; Redis keys hold its SHA-256. The session body (tokens, the open
record's name) is sealed with AES-GCM (`TokenBox`), so a Redis dump reveals neither tokens nor names.
An account's sessions are indexed so the person can see where they are signed in, and the last few
sign-in times are kept for "last signed in".
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
from redis.exceptions import WatchError

from .token_box import TokenBox

SESSION_KEY = "portal:session:{}"
ACCOUNT_SESSIONS = "portal:account-sessions:{}"
SIGN_INS = "portal:sign-ins:{}"
REFRESH_LOCK = "portal:refresh-lock:{}"
LOGIN_KEY = "portal:login:{}"
KEPT_SIGN_INS = 10


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class Tokens:
    access_token: str
    expires_at: float
    refresh_token: str | None = None
    scope: str = ""


@dataclass
class PortalSession:
    id: str  # SHA-256 of the cookie value
    account_id: str
    fhir_user: str  # Patient/... for the patient, RelatedPerson/... for a caregiver
    patient_id: str  # whose record is open
    patient_name: str
    tokens: Tokens
    csrf_token: str
    created: float
    last_seen: float
    device: str = ""  # "Chrome on Windows": for the person's list of sessions
    address: str | None = None
    previous_sign_in: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_caregiver(self) -> bool:
        return self.fhir_user.startswith("RelatedPerson/")

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> PortalSession:
        data = json.loads(raw)
        data["tokens"] = Tokens(**data["tokens"])
        return cls(**data)


@dataclass(frozen=True)
class SessionSummary:
    """What the person sees of one of their sessions (no tokens)."""

    id: str
    created: float
    last_seen: float
    device: str
    address: str | None
    current: bool


@dataclass(frozen=True)
class PendingLogin:
    """A sign-in the portal started: PKCE verifier, where to go afterwards, which browser started it."""

    verifier: str
    next_url: str
    browser: str  # SHA-256 of the login cookie the browser holds


class SessionStore:
    def __init__(self, redis: Redis, box: TokenBox, *, idle_seconds: int, max_seconds: int,
                 login_ttl: int, now: Callable[[], float] | None = None, namespace: str = "portal") -> None:
        # The staff area keeps its sessions under its own namespace: a staff cookie never opens a patient
        # session, nor the other way round.
        self.keys = {name: template.replace("portal:", f"{namespace}:", 1) for name, template in
                     (("session", SESSION_KEY), ("account", ACCOUNT_SESSIONS), ("sign_ins", SIGN_INS),
                      ("refresh", REFRESH_LOCK), ("login", LOGIN_KEY))}
        self.redis = redis
        self.box = box
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.login_ttl = login_ttl
        self.now = now or time.time

    # -- sessions ---------------------------------------------------------------------------------
    def _ttl(self, session: PortalSession) -> int:
        left = session.created + self.max_seconds - self.now()
        return max(1, int(min(self.idle_seconds, left)))

    async def create(self, *, account_id: str, fhir_user: str, patient_id: str, patient_name: str, tokens: Tokens,
                     device: str, address: str | None, extra: dict[str, Any] | None = None
                     ) -> tuple[str, PortalSession]:
        """A new session; returns the cookie value and the session."""
        cookie = secrets.token_urlsafe(32)
        now = self.now()
        previous = await self.redis.lindex(self.keys["sign_ins"].format(account_id), 0)
        session = PortalSession(
            id=sha256_hex(cookie), account_id=account_id, fhir_user=fhir_user, patient_id=patient_id,
            patient_name=patient_name, tokens=tokens, csrf_token=secrets.token_urlsafe(24), created=now,
            last_seen=now, device=device, address=address,
            previous_sign_in=float(previous) if previous is not None else None, extra=dict(extra or {}),
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys["session"].format(session.id), self._seal(session), ex=self._ttl(session))
            pipe.sadd(self.keys["account"].format(account_id), session.id)
            pipe.expire(self.keys["account"].format(account_id), self.max_seconds + 60)
            pipe.lpush(self.keys["sign_ins"].format(account_id), repr(now))
            pipe.ltrim(self.keys["sign_ins"].format(account_id), 0, KEPT_SIGN_INS - 1)
            await pipe.execute()
        return cookie, session

    def _seal(self, session: PortalSession) -> bytes:
        return self.box.seal(session.to_json(), self.keys["session"].format(session.id))

    def _open(self, sid: str, raw: bytes | None) -> PortalSession | None:
        plain = self.box.open(raw, self.keys["session"].format(sid)) if raw is not None else None
        return PortalSession.from_json(plain) if plain is not None else None

    async def _load(self, sid: str) -> PortalSession | None:
        return self._open(sid, await self.redis.get(self.keys["session"].format(sid)))

    async def _touch(self, session: PortalSession, seen: bytes) -> None:
        """Slide the idle time, unless the session changed since it was read (another tab refreshed its
        tokens meanwhile): writing back what was read would bring a rotated refresh token back to life, and
        using it would revoke the whole grant."""
        key = self.keys["session"].format(session.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                if await pipe.get(key) != seen:
                    return
                pipe.multi()
                pipe.set(key, self._seal(session), ex=self._ttl(session))
                await pipe.execute()
            except WatchError:
                return

    async def load(self, cookie: str | None, *, touch: bool = True) -> PortalSession | None:
        """The live session behind a cookie (sliding its idle time), or None when it has ended."""
        if not cookie or len(cookie) > 100:
            return None
        sid = sha256_hex(cookie)
        raw = await self.redis.get(self.keys["session"].format(sid))
        session = self._open(sid, raw)
        if session is None or raw is None:
            return None
        now = self.now()
        if now - session.last_seen > self.idle_seconds or now - session.created > self.max_seconds:
            await self.drop(session)
            return None
        if touch:
            session.last_seen = now
            await self._touch(session, raw)
        return session

    async def save(self, session: PortalSession) -> None:
        await self.redis.set(self.keys["session"].format(session.id), self._seal(session), ex=self._ttl(session))

    async def drop(self, session: PortalSession) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys["session"].format(session.id))
            pipe.srem(self.keys["account"].format(session.account_id), session.id)
            await pipe.execute()

    async def of_account(self, account_id: str, current_id: str | None = None) -> list[SessionSummary]:
        """The account's live portal sessions, most recently used first."""
        out: list[SessionSummary] = []
        for raw in await self.redis.smembers(self.keys["account"].format(account_id)):
            sid = raw.decode() if isinstance(raw, bytes) else str(raw)
            session = await self._load(sid)
            if session is None or self.now() - session.last_seen > self.idle_seconds:
                await self.redis.srem(self.keys["account"].format(account_id), sid)
                continue
            out.append(SessionSummary(sid, session.created, session.last_seen, session.device, session.address,
                                      sid == current_id))
        return sorted(out, key=lambda s: s.last_seen, reverse=True)

    async def get_of_account(self, account_id: str, sid: str) -> PortalSession | None:
        """One of this account's sessions by id (None for an id that is not theirs)."""
        if not await self.redis.sismember(self.keys["account"].format(account_id), sid):
            return None
        session = await self._load(sid)
        return session if session is not None and session.account_id == account_id else None

    # -- refresh lock (a rotated refresh token used twice would revoke the whole grant) --------------
    async def refresh_lock(self, session: PortalSession, seconds: int = 10) -> bool:
        return bool(await self.redis.set(self.keys["refresh"].format(session.id), "1", nx=True, ex=seconds))

    async def refresh_unlock(self, session: PortalSession) -> None:
        await self.redis.delete(self.keys["refresh"].format(session.id))

    async def reload(self, session: PortalSession) -> PortalSession | None:
        return await self._load(session.id)

    # -- sign-ins in progress ----------------------------------------------------------------------
    async def start_login(self, state: str, pending: PendingLogin) -> None:
        key = self.keys["login"].format(sha256_hex(state))
        await self.redis.set(key, self.box.seal(json.dumps(asdict(pending)).encode(), key), ex=self.login_ttl)

    async def finish_login(self, state: str) -> PendingLogin | None:
        """The pending sign-in for ``state``, once (a replayed callback finds nothing)."""
        if not state or len(state) > 200:
            return None
        key = self.keys["login"].format(sha256_hex(state))
        raw = await self.redis.getdel(key)
        plain = self.box.open(raw, key) if raw is not None else None
        return PendingLogin(**json.loads(plain)) if plain is not None else None
