"""A pacing limit for the export: on average at most `rate` events per second, one batch at a time.

Each batch of n events pushes the earliest start of the next one n / rate seconds further, so batches of
100 at 50 events/s leave every 2 s; time spent idle is not saved up into a burst later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimit:
    def __init__(self, rate: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("the export rate must be positive (None: unlimited)")
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")

    async def acquire(self, events: int) -> float:
        """Wait until `events` more may go; returns how long it waited (s)."""
        if self.rate is None or events <= 0:
            return 0.0
        now = self._clock()
        start = max(now, self._next)
        self._next = start + events / self.rate
        if start > now:
            await self._sleep(start - now)
        return start - now
