"""Server-side sessions in Redis and the CSRF tokens bound to them.

A *session* exists only after both factors passed (cookie `portal_session`). Before that, a
*pre-session* (cookie `portal_presession`) carries the CSRF token of the login/enrolment/reset
forms and the state of those multi-step flows. Cookies hold random tokens; Redis keys hold their
SHA-256 so a Redis dump cannot be replayed as cookies.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from fastapi import Request, Response
from markupsafe import Markup
from redis.asyncio import Redis

from web import csrf_input, new_csrf_token

from .models import Account
from .secrets_box import sha256_hex
from .settings import AccountSettings
from .store import AccountStore

SESSION = "auth:session:{}"
ACCOUNT_SESSIONS = "auth:account-sessions:{}"
PRESESSION = "auth:presession:{}"


@dataclass
class Session:
    id: str  # the SHA-256 of the cookie value (safe to log)
    account: Account
    csrf_token: str
    mfa_passed: bool
    created_at: float = 0.0
    last_seen: float = 0.0


@dataclass
class PreSession:
    id: str
    csrf_token: str
    flows: dict[str, Any] = field(default_factory=dict)
    token: str | None = None  # set when freshly created, so the cookie can be written


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class SessionManager:
    def __init__(
        self,
        redis: Redis,
        store: AccountStore,
        settings: AccountSettings,
        *,
        secure_cookies: bool,
        now: Callable[[], float] | None = None,
        on_end: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        self.redis = redis
        self.store = store
        self.settings = settings
        self.secure = secure_cookies
        self.now = now or time.time
        # The OAuth server's GrantStore.revoke_for_session: what ending a session also ends.
        self.on_end = on_end

    # ---- signed-in sessions ---------------------------------------------------------------------
    async def create(self, response: Response, account: Account) -> Session:
        token = secrets.token_urlsafe(32)
        sid = sha256_hex(token)
        now = self.now()
        body = {"account_id": account.id, "csrf": new_csrf_token(), "created": now, "last_seen": now}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(SESSION.format(sid), json.dumps(body), ex=self.settings.session_idle_seconds)
            pipe.sadd(ACCOUNT_SESSIONS.format(account.id), sid)
            pipe.expire(ACCOUNT_SESSIONS.format(account.id), self.settings.session_absolute_seconds + 60)
            await pipe.execute()
        response.set_cookie(
            self.settings.session_cookie, token, httponly=True, samesite="lax", secure=self.secure, path="/"
        )
        return Session(sid, account, body["csrf"], True, now, now)

    async def is_alive(self, session_id: str) -> bool:
        """Whether a signed-in session still exists (it ends by sign-out, or by idling out in Redis)."""
        return bool(await self.redis.exists(SESSION.format(session_id)))

    async def current(self, request: Request) -> Session | None:
        """The fully signed-in session of this request (sliding the idle timeout), or None."""
        cached = getattr(request.state, "portal_session", None)
        if cached is not None:
            return cached
        token = request.cookies.get(self.settings.session_cookie)
        if not token:
            return None
        sid = sha256_hex(token)
        raw = _text(await self.redis.get(SESSION.format(sid)))
        if not raw:
            return None
        body = json.loads(raw)
        now = self.now()
        absolute_left = body["created"] + self.settings.session_absolute_seconds - now
        if absolute_left <= 0 or now - body["last_seen"] > self.settings.session_idle_seconds:
            await self._drop(sid, body.get("account_id"))
            return None
        account = await self.store.get(body["account_id"])
        if account is None:
            await self._drop(sid, body.get("account_id"))
            return None
        body["last_seen"] = now
        ttl = max(1, int(min(self.settings.session_idle_seconds, absolute_left)))
        await self.redis.set(SESSION.format(sid), json.dumps(body), ex=ttl)
        session = Session(sid, account, body["csrf"], True, body["created"], now)
        request.state.portal_session = session
        return session

    async def csrf_tokens(self, request: Request) -> list[str]:
        """The CSRF tokens this browser holds: its signed-in session's and its pre-session's (a form on a
        sign-in or enrolment page carries the latter). Nothing is created here."""
        tokens: list[str] = []
        session = await self.current(request)
        if session is not None:
            tokens.append(session.csrf_token)
        pre = await self._existing_presession(request)
        if pre is not None:
            tokens.append(pre.csrf_token)
        return tokens

    def csrf_field(self, session: Session | PreSession) -> Markup:
        """The hidden form field for templates: `{{ csrf_field }}`."""
        return csrf_input(session.csrf_token)

    async def end(self, request: Request, response: Response) -> Session | None:
        session = await self.current(request)
        token = request.cookies.get(self.settings.session_cookie)
        if token:
            sid = sha256_hex(token)
            raw = _text(await self.redis.get(SESSION.format(sid)))
            account_id = json.loads(raw).get("account_id") if raw else None
            await self._drop(sid, account_id)
        response.delete_cookie(self.settings.session_cookie, path="/", secure=self.secure, httponly=True,
                               samesite="lax")
        request.state.portal_session = None
        return session

    async def end_all_for(self, account_id: str) -> int:
        key = ACCOUNT_SESSIONS.format(account_id)
        sids = [_text(s) for s in await self.redis.smembers(key)]
        if sids:
            await self.redis.delete(*[SESSION.format(s) for s in sids])
        await self.redis.delete(key)
        for sid in sids:
            await self._ended(sid)
        return len(sids)

    async def end_others_for(self, account_id: str, keep: str) -> int:
        """End every signed-in session of the account except `keep` (after a password change there)."""
        key = ACCOUNT_SESSIONS.format(account_id)
        others = [sid for sid in (_text(s) for s in await self.redis.smembers(key)) if sid and sid != keep]
        for sid in others:
            await self._drop(sid, account_id)
        return len(others)

    async def _drop(self, sid: str, account_id: str | None) -> None:
        await self.redis.delete(SESSION.format(sid))
        if account_id:
            await self.redis.srem(ACCOUNT_SESSIONS.format(account_id), sid)
        await self._ended(sid)

    async def _ended(self, sid: str) -> None:
        # online_access grants live only as long as the sign-in session that created them.
        if self.on_end is not None:
            await self.on_end(sid)

    # ---- pre-sessions (before sign-in) ----------------------------------------------------------
    async def presession(self, request: Request) -> PreSession:
        """Load this browser's pre-session or start a new one (write its cookie with `attach`)."""
        existing = await self._existing_presession(request)
        if existing is not None:
            return existing
        token = secrets.token_urlsafe(32)
        pre = PreSession(sha256_hex(token), new_csrf_token(), {}, token)
        await self.save_presession(pre)
        request.state.portal_presession = pre
        return pre

    async def _existing_presession(self, request: Request) -> PreSession | None:
        cached = getattr(request.state, "portal_presession", None)
        if cached is not None:
            return cached
        token = request.cookies.get(self.settings.presession_cookie)
        key = PRESESSION.format(sha256_hex(token)) if token else ""
        raw = _text(await self.redis.get(key)) if token else None
        if not token or not raw:
            return None
        # Flow state holds names, usernames and contact addresses: sealed like the account records.
        try:
            body = json.loads(self.store.box.unseal(raw, key))
        except (InvalidTag, ValueError):  # written before sealing (or tampered with): start afresh
            return None
        pre = PreSession(sha256_hex(token), body["csrf"], body.get("flows", {}))
        request.state.portal_presession = pre
        return pre

    async def save_presession(self, pre: PreSession) -> None:
        key = PRESESSION.format(pre.id)
        body = json.dumps({"csrf": pre.csrf_token, "flows": pre.flows})
        await self.redis.set(key, self.store.box.seal(body, key), ex=self.settings.flow_ttl_seconds)

    def attach_new_presession(self, request: Request, response: Response) -> Response:
        """Write the cookie of a pre-session this request started (every accounts page does this)."""
        pre = getattr(request.state, "portal_presession", None)
        return self.attach(response, pre) if pre is not None else response

    def attach(self, response: Response, pre: PreSession) -> Response:
        if pre.token:
            response.set_cookie(
                self.settings.presession_cookie, pre.token, httponly=True, samesite="lax", secure=self.secure,
                path="/auth",
            )
        return response

    async def end_presession(self, request: Request, response: Response) -> None:
        token = request.cookies.get(self.settings.presession_cookie)
        if token:
            await self.redis.delete(PRESESSION.format(sha256_hex(token)))
        request.state.portal_presession = None
        response.delete_cookie(self.settings.presession_cookie, path="/auth", secure=self.secure, httponly=True,
                               samesite="lax")
