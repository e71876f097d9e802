"""Export from the audit store to the audit record repository: batched, paced, one exporter at a time.

Of all the processes sharing a store, the one holding the store's `export` lease exports (it renews the
lease every third of `lease_ttl` while it has something to export; another process takes over `lease_ttl`
seconds after it stops renewing, or at once when it stopped cleanly and released it). While the queue is
empty the lease is left to run out: an idle process reads the queue once a round and writes nothing. With
one exporter, `RateLimit` paces the export of the whole store (events per second, and the repository's
share of time spent on it), not of each process. Oldest first; an event
leaves the queue only once the repository stored it (`PUT AuditEvent/<id>`, idempotent: a batch resent
after a crash or a take-over creates nothing twice) or refused it even with logical references (then it is
kept in `export_refused` with the reason). While the repository is down nothing leaves the queue and the
export retries with capped backoff; the store keeps everything meanwhile, on disk, however long the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from .consumer import DeliveryFailed
from .pacing import Pacing, repeat_until_stopped, wait_or_stop
from .ratelimit import RateLimit
from .repository import FhirRepository
from .store import AuditStore, Pending, StoreUnavailable

log = logging.getLogger("audit.store_export")

LEASE = "export"


class StoreExporter:
    def __init__(self, store: AuditStore, repository: FhirRepository, *, holder: str, batch_size: int = 100,
                 rate: RateLimit | None = None, lease_ttl: float = 3.0, idle_interval: float = 1.0,
                 backoff_initial: float = 0.5, backoff_max: float = 60.0) -> None:
        self.store = store
        self.repository = repository
        self.holder = holder
        self.batch_size = batch_size
        self.rate = rate or RateLimit(None)
        self.lease_ttl = lease_ttl
        self.idle_interval = idle_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._holding = False  # we hold the lease and keep it: a batch is (or was just) under way

    # -- receipts from the repository -------------------------------------------------------------------------
    async def accepted(self, events: Sequence[Pending]) -> None:
        await self.store.exported([e.seq for e in events])

    async def refused(self, event: Pending, status: int, reason: str) -> None:
        log.error("audit event %s refused by the audit record repository (%s: %s); kept as refused",
                  event.event_id, status, reason)
        await self.store.refused(event.seq, status, reason)

    # -- one round ------------------------------------------------------------------------------------------
    async def export_once(self) -> int | None:
        """Export one batch; returns how many the repository took, or None when another process exports.

        Raises ExportFailed when the repository cannot take it now, StoreUnavailable when the store fails.
        """
        batch = await self.store.export_batch(self.batch_size)
        if not batch:
            self._holding = False  # nothing to do: the lease is left to run out (no write per idle round)
            return 0
        held_before = self._holding
        self._holding = await self.store.hold_lease(LEASE, self.holder, self.lease_ttl)
        if not self._holding:
            return None
        if not held_before:
            # The lease was someone else's until now: what it exported meanwhile has left the queue.
            batch = await self.store.export_batch(self.batch_size)
            if not batch:
                return 0
        async with self.rate.batch(len(batch)):
            return await self.repository.send(batch, self)

    # -- background task ------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        done = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lease(done), name="audit-export-lease")
        try:
            await self._loop(stop)
        finally:
            # Told to finish rather than cancelled: a cancelled renewal still runs to its end on a store
            # thread, and could land after the release below, holding the lease for a process that left.
            done.set()
            await keeper
            with contextlib.suppress(StoreUnavailable):
                await self.store.release_lease(LEASE, self.holder)

    async def _keep_lease(self, done: asyncio.Event) -> None:
        """Renews the lease while a slow repository call is under way (only if it is still ours)."""
        while True:
            await wait_or_stop(done, self.lease_ttl / 3)
            if done.is_set():
                return
            if self._holding:
                with contextlib.suppress(StoreUnavailable):
                    await self.store.hold_lease(LEASE, self.holder, self.lease_ttl)

    async def _loop(self, stop: asyncio.Event) -> None:
        async def step() -> bool:
            exported = await self.export_once()
            return exported is not None and exported >= self.batch_size

        pacing = Pacing(self.idle_interval, self.backoff_initial, self.backoff_max)
        await repeat_until_stopped(step, stop, pacing, expected=(DeliveryFailed, StoreUnavailable),
                                   what="audit export")
