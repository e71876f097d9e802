"""Moves the audit stream into the audit store: one consumer of the stream's group per process.

The rules of the stream side (ack only what is stored, pending entries resent first after a restart,
heartbeat and take-over of dead members) are `consumer.py`'s. Storing is idempotent on the event id, so
an entry delivered twice (a take-over, a lost ack) is stored once. An entry that is not an event the
store can index (no readable `recorded`) goes to `<stream>:dead` rather than blocking the stream.
"""

from __future__ import annotations

from typing import Any

import orjson

from .consumer import DeliveryFailed, Entry, StreamConsumer
from .store import AuditStore, StoredEvent, StoreUnavailable, encode_event


class StoreFeeder(StreamConsumer):
    def __init__(self, redis: Any, store: AuditStore, *, export: bool, **options: Any) -> None:
        """`export`: queue each new event for the audit record repository. `options`: StreamConsumer's."""
        super().__init__(redis, **options)
        self.store = store
        self.export = export

    def read_entry(self, data: dict[str, str]) -> Entry:
        # The recorder writes the store's index beside the event (`recorder.stream_fields`), so the 4 KB event
        # needs no parse here. Entries without it (replayed from the spool, requeued, written by an older
        # version) are parsed as every consumer parses them.
        if "at" in data and "patients" in data and data.get("id"):
            patients = orjson.loads(data["patients"])
            if not isinstance(patients, list) or not all(isinstance(p, str) for p in patients):
                raise ValueError("unreadable patients index")
            return Entry(data["id"], data["event"], index=(int(data["at"]), tuple(patients)))
        return super().read_entry(data)

    @staticmethod
    def _row(entry: Entry) -> StoredEvent:
        if entry.index is not None:
            return StoredEvent(entry.event_id, entry.index[0], entry.index[1], encode_event(entry.payload))
        return StoredEvent.from_payload(entry.event_id, entry.payload, entry.event)

    async def deliver(self, batch: list[Entry]) -> int:
        rows: list[StoredEvent] = []
        readable: list[Entry] = []
        for entry in batch:
            try:
                rows.append(self._row(entry))
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
