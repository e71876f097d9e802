"""Export of the audit stream straight to the audit record repository, for deployments without an
audit store of ours (`PORTAL_AUDIT_STORE=none`; with a store, `store_export.py` exports from the store).

One consumer group shares the work among replicas; each process is one consumer (`consumer.py`: acking,
dead letters, heartbeat and take-over of dead members). Delivering a batch is `FhirRepository.send`: one
transaction of idempotent `PUT AuditEvent/<id>` (`repository.py`); an event the repository refuses even
with logical references is moved to `<stream>:dead`.
"""

from __future__ import annotations

from typing import Any

from .consumer import Entry, StreamConsumer
from .events import EventContext
from .ratelimit import RateLimit
from .repository import ExportFailed, FhirClient, FhirRepository

__all__ = ["AuditExporter", "ExportFailed"]


class AuditExporter(StreamConsumer):
    def __init__(
        self,
        redis: Any,
        ehr: FhirClient,
        *,
        stream: str = "audit:events",
        group: str = "exporter",
        consumer: str,
        batch_size: int = 100,
        heartbeat_ttl: float = 3.0,
        claim_idle: float = 300.0,
        idle_interval: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 60.0,
        dead_stream: str | None = None,
        context: EventContext | None = None,
        headers: dict[str, str] | None = None,
        rate: RateLimit | None = None,
    ) -> None:
        super().__init__(redis, stream=stream, group=group, consumer=consumer, batch_size=batch_size,
                         heartbeat_ttl=heartbeat_ttl, claim_idle=claim_idle, idle_interval=idle_interval,
                         backoff_initial=backoff_initial, backoff_max=backoff_max, dead_stream=dead_stream)
        self.repository = FhirRepository(ehr, context=context, headers=headers)
        self.rate = rate or RateLimit(None)

    async def deliver(self, batch: list[Entry]) -> int:
        async with self.rate.batch(len(batch)):
            return await self.repository.send(batch, self)

    async def export_once(self) -> int:
        """Export one batch; returns how many events the repository accepted (0: nothing to do).

        Raises ExportFailed when the repository cannot take the batch now, or a Redis error when Redis is down.
        """
        return await self.process_once()
