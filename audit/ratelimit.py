"""Pacing limits for the export, one batch at a time:

- `rate`: on average at most `rate` events per second. Each batch of n events pushes the earliest start of
  the next one n / rate seconds further, so batches of 100 at 50 events/s leave every 2 s; time spent idle
  is not saved up into a burst later.
- `share`: the repository is busy with the export at most this share of the time. A batch that took t
  seconds to be answered is followed by a pause of t * (1 - share) / share, so at 0.1 a 3 s transaction
  is followed by 27 s of rest. What one event costs the repository depends on its machine and its load
  (the sandbox EHR took 17-30 ms of CPU per event on one machine, 35-48 ms on a slower one, more while
  it is busy answering), so no events-per-second figure bounds its share; the time it takes to answer does,
  and a busy repository, answering more slowly, is left more time to itself.

Both apply: the next batch waits for the later of the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable


class RateLimit:
    def __init__(self, rate: float | None, *, share: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("the export rate must be positive (None: unlimited)")
        if share is not None and not 0 < share <= 1:
            raise ValueError("the export's share of the repository's time must be above 0 and at most 1")
        self.rate = rate
        self.share = share if share is not None and share < 1 else None
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")

    async def acquire(self, events: int) -> float:
        """Wait until `events` more may go; returns how long it waited (s)."""
        if events <= 0 or (self.rate is None and self.share is None):
            return 0.0
        now = self._clock()
        start = max(now, self._next)
        self._next = start + events / self.rate if self.rate is not None else start
        if start > now:
            await self._sleep(start - now)
        return start - now

    @contextlib.asynccontextmanager
    async def batch(self, events: int) -> AsyncIterator[None]:
        """Around sending one batch: waits its turn, then times the repository's answer (however it ends:
        a failure took the repository's time too) and sets the rest that follows it."""
        await self.acquire(events)
        began = self._clock()
        try:
            yield
        finally:
            if self.share is not None:
                ended = self._clock()
                self._next = max(self._next, ended + (ended - began) * (1 - self.share) / self.share)
