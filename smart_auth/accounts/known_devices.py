"""Which browsers an account has signed in from, so a sign-in from a new one can be told to the person.

A browser that completes a sign-in gets a long-lived random cookie (HttpOnly; it opens nothing by itself);
the account keeps keyed digests of the cookies it has seen. A sign-in whose cookie is missing or unknown is
"from a new device" - unless the account has never signed in before (enrolment is not news to anyone).
"""

from __future__ import annotations

import secrets
from typing import Any

COOKIE = "portal_device"
MAX_AGE = 400 * 86_400  # the longest a browser keeps a cookie
KEY = "auth:devices:{}"
MAX_DEVICES = 50


class KnownDevices:
    def __init__(self, redis: Any, digest: Any, *, secure: bool) -> None:
        self.redis = redis
        self.digest = digest  # SecretBox.digest: keyed, so the stored values say nothing about the cookie
        self.secure = secure

    async def signed_in(self, account_id: str, request: Any, response: Any) -> bool:
        """Remember this browser for the account; True when it is new and the account had others before."""
        token = request.cookies.get(COOKIE) or ""
        if len(token) < 20 or len(token) > 64:
            token = secrets.token_urlsafe(24)
        response.set_cookie(COOKIE, token, max_age=MAX_AGE, httponly=True, secure=self.secure, samesite="lax",
                            path="/")
        key, mark = KEY.format(account_id), self.digest("device", token)
        pipe = self.redis.pipeline(transaction=True)
        pipe.scard(key)
        pipe.sadd(key, mark)
        pipe.expire(key, MAX_AGE)
        before, added, _ = await pipe.execute()
        if int(before) >= MAX_DEVICES:
            await self.redis.spop(key)  # bounded: an old one goes (at worst, one more notice later)
        return bool(added) and int(before) > 0
