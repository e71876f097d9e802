"""How the audit's background workers wait and retry: a pause that a stop request cuts short, and a loop
that runs one step after another, pausing when there is nothing left to do and backing off (with jitter)
while the step's destination is failing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("audit")


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleeps `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@dataclass(frozen=True)
class Pacing:
    idle_interval: float  # pause after a step that found nothing more waiting
    backoff_initial: float
    backoff_max: float


async def repeat_until_stopped(step: Callable[[], Awaitable[bool]], stop: asyncio.Event, pacing: Pacing, *,
                               expected: tuple[type[BaseException], ...], what: str) -> None:
    """Runs `step` until `stop` is set. `step` answers whether more work is waiting (a full batch): then the
    next step follows at once, else after the idle pause. A failure named in `expected` (the destination is
    down) is retried after a growing pause; any other is logged loudly and retried the same way, so a bug
    never silently ends the worker."""
    backoff = pacing.backoff_initial
    while not stop.is_set():
        try:
            more = await step()
        except expected as exc:
            log.warning("%s postponed %.1fs: %s", what, backoff, exc)
        except Exception:
            log.exception("%s failed unexpectedly; retrying in %.1fs", what, backoff)
        else:
            backoff = pacing.backoff_initial
            if not more:
                await wait_or_stop(stop, pacing.idle_interval)
            continue
        # Full jitter keeps many replicas from hammering a recovering destination in lockstep.
        await wait_or_stop(stop, random.uniform(backoff / 2, backoff))
        backoff = min(backoff * 2, pacing.backoff_max)
