"""The retention purge: events older than the retention period (HIPAA: six years) leave the audit store.

One process of those sharing a store purges at a time (the store's `retention` lease), in chunks, each
its own short transaction, so the feeders and the access log are never held up for long. An event still
waiting for (or refused by) the audit record repository is kept until it has left the export queue:
the retention period never makes an event disappear before it reached the repository.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from .store import AuditStore, StoreUnavailable

log = logging.getLogger("audit.retention")

LEASE = "retention"


async def purge_expired(store: AuditStore, retention: timedelta, *, holder: str, chunk: int = 5000,
                        now_ms: int | None = None) -> int | None:
    """Delete every event recorded before now - `retention`; None when another process is purging."""
    cutoff = (now_ms if now_ms is not None else time.time_ns() // 1_000_000) - int(retention.total_seconds() * 1000)
    total = 0
    while True:
        # Renewed before every chunk: a long purge keeps the job; a dead purger's is free after a minute.
        if not await store.hold_lease(LEASE, holder, 60.0):
            return None if total == 0 else total
        removed = await store.purge(cutoff, chunk)
        total += removed
        if removed < chunk:
            break
        await asyncio.sleep(0)  # let others at the store between chunks
    if total:
        log.info("audit retention: %d events older than %d days purged", total, retention.days)
    return total


async def run_retention(store: AuditStore, retention: timedelta, *, holder: str, interval: float,
                        stop: asyncio.Event) -> None:
    """Background task: purge every `interval` seconds, first right after start."""
    while not stop.is_set():
        try:
            await purge_expired(store, retention, holder=holder)
        except StoreUnavailable as exc:
            log.warning("audit retention purge postponed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
