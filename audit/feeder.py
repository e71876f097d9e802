"""Moves the audit stream into the audit store: one consumer of the stream's group per process.

The rules of the stream side (ack only what is stored, pending entries resent first after a restart,
heartbeat and take-over of dead members) are `consumer.py`'s. Storing is idempotent on the event id, so
an entry delivered twice (a take-over, a lost ack) is stored once. An entry that is not an event the
store can index (no readable `recorded`) goes to `<stream>:dead` rather than blocking the stream.
"""

from __future__ import annotations

from typing import Any

from .consumer import DeliveryFailed, Entry, StreamConsumer
from .store import AuditStore, StoredEvent, StoreUnavailable


class StoreFeeder(StreamConsumer):
    def __init__(self, redis: Any, store: AuditStore, *, export: bool, **options: Any) -> None:
        """`export`: queue each new event for the audit record repository. `options`: StreamConsumer's."""
        super().__init__(redis, **options)
        self.store = store
        self.export = export

    async def deliver(self, batch: list[Entry]) -> int:
        rows: list[StoredEvent] = []
        readable: list[Entry] = []
        for entry in batch:
            try:
                rows.append(StoredEvent.from_payload(entry.event_id, entry.payload, entry.event))
            except (ValueError, TypeError, KeyError) as exc:
                await self.refused(entry, 0, f"not an AuditEvent the store can keep: {exc}"[:300])
                continue
            readable.append(entry)
        try:
            await self.store.add(rows, export=self.export)
        except StoreUnavailable as exc:
            raise DeliveryFailed(str(exc)) from exc
        await self.accepted(readable)
        return len(readable)

    async def feed_once(self) -> int:
        """Store one batch; returns how many events it held (0: nothing to do)."""
        return await self.process_once()
