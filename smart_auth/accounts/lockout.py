"""Sign-in throttling: N failures within a window lock the username for a while.

Keyed by the (normalised) username whether or not an account exists, so a locked response says
nothing about existence.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

FAILS = "auth:login-fail:{}"
LOCK = "auth:login-lock:{}"


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    window_seconds: int = 900
    lockout_seconds: int = 900

    def recent(self, failures: Sequence[float], now: float) -> list[float]:
        return [t for t in failures if now - t < self.window_seconds]

    def locked_until(self, failures: Sequence[float], now: float) -> float | None:
        """When N failures fall within one window, the lock runs from the latest of them."""
        ordered = sorted(t for t in failures if t <= now)
        if not ordered:
            return None
        last = ordered[-1]
        if len([t for t in ordered if last - t < self.window_seconds]) < self.max_failures:
            return None
        until = last + self.lockout_seconds
        return until if until > now else None


def subject_key(username: str) -> str:
    """A plain hash (tests, tools); the app keys it with the accounts secret so usernames cannot be guessed
    back from Redis."""
    return hashlib.sha256(username.strip().casefold().encode()).hexdigest()


class Lockout:
    def __init__(self, redis: Redis, policy: LockoutPolicy, now: Callable[[], float],
                 key: Callable[[str], str] = subject_key) -> None:
        self.redis = redis
        self.policy = policy
        self.now = now
        self.key = key

    async def locked(self, username: str) -> bool:
        key = self.key(username)
        raw = await self.redis.get(LOCK.format(key))
        return raw is not None and float(raw) > self.now()

    async def record_failure(self, username: str) -> bool:
        """Count a failure; True when this failure locks the username."""
        key = self.key(username)
        now = self.now()
        fails = FAILS.format(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(fails, {f"{now}:{uuid.uuid4().hex[:8]}": now})
            pipe.zremrangebyscore(fails, "-inf", now - self.policy.window_seconds)
            pipe.zrange(fails, 0, -1, withscores=True)
            pipe.expire(fails, self.policy.window_seconds + 60)
            _, _, members, _ = await pipe.execute()
        until = self.policy.locked_until([score for _, score in members], now)
        if until is None:
            return False
        await self.redis.set(LOCK.format(key), str(until), ex=max(int(until - now) + 1, 1))
        await self.redis.delete(fails)  # the lock itself now holds the user off; start afresh after it
        return True

    async def clear(self, username: str) -> None:
        await self.redis.delete(FAILS.format(self.key(username)))

    async def unlock(self, username: str) -> None:
        """Lift a lock now (staff who checked the person's identity)."""
        await self.redis.delete(LOCK.format(self.key(username)), FAILS.format(self.key(username)))
