"""The audit trail after recording: where events go once they are in the Redis stream.

    recorder -> Redis stream --(StoreFeeder)--> audit store --(StoreExporter, paced)--> audit record repository
                                                     `--> access log, retention purge

With `PORTAL_AUDIT_STORE=none` there is no store: the stream goes straight to the repository
(`AuditExporter`) and the access log is an AuditEvent search in the EHR.

`AuditWorkers.build` makes the parts from `AuditSettings`; the composition root hands in Redis and the
repository's FHIR client (the EHR's client, one for a separate repository, or None when the export is
off), and runs `running()` for the app's lifetime: the store is open for the access log in every
process, the background work only where it is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .access_log import AccessLogSource, EhrAccessLog, EhrSearchClient
from .consumer import StreamConsumer
from .exporter import AuditExporter
from .feeder import StoreFeeder
from .ratelimit import RateLimit
from .repository import FhirClient, FhirRepository
from .retention import run_retention
from .settings import AuditSettings
from .sqlite_store import SqliteAuditStore
from .store import AuditStore
from .store_export import StoreExporter

log = logging.getLogger("audit.workers")


def build_store(settings: AuditSettings) -> AuditStore | None:
    if settings.audit_store == "sqlite":
        return SqliteAuditStore(settings.store_path)
    if settings.audit_store == "postgresql":
        from .postgres_store import PostgresAuditStore  # only deployments that use it need its driver

        assert settings.audit_store_url is not None  # the settings refuse postgresql without a URL
        return PostgresAuditStore(settings.audit_store_url.get_secret_value())
    return None


@dataclass
class AuditWorkers:
    store: AuditStore | None
    mover: StreamConsumer | None  # stream -> store, or stream -> repository without a store
    exporter: StoreExporter | None  # store -> repository
    retention: timedelta | None
    purge_interval: float
    holder: str

    @classmethod
    def build(cls, redis: Any, settings: AuditSettings, repository: FhirClient | None) -> AuditWorkers:
        """`repository`: the FHIR client of the audit record repository, None when the export is off."""
        store = build_store(settings)
        headers = ({"Authorization": f"Bearer {settings.audit_repository_token.get_secret_value()}"}
                   if settings.audit_repository == "fhir" and settings.audit_repository_token else None)
        target = (FhirRepository(repository, context=settings.event_context(), headers=headers)
                  if repository is not None and settings.audit_repository != "off" else None)
        stream = dict(stream=settings.audit_stream, group=settings.audit_export_group,
                      consumer=settings.audit_export_consumer, batch_size=settings.audit_export_batch_size,
                      heartbeat_ttl=settings.audit_heartbeat_ttl, claim_idle=settings.audit_export_claim_idle,
                      idle_interval=settings.audit_export_interval, backoff_max=settings.audit_export_backoff_max)
        rate = RateLimit(settings.audit_export_rate or None, share=settings.audit_export_share)
        mover: StreamConsumer | None
        exporter = None
        if store is not None:
            mover = StoreFeeder(redis, store, export=target is not None, **stream)
            if target is not None:
                exporter = StoreExporter(store, target, holder=settings.audit_export_consumer,
                                         batch_size=settings.audit_export_batch_size, rate=rate,
                                         lease_ttl=settings.audit_heartbeat_ttl,
                                         idle_interval=settings.audit_export_interval,
                                         backoff_max=settings.audit_export_backoff_max)
        elif target is not None:
            mover = AuditExporter(redis, target.client, context=target.context, headers=headers, rate=rate, **stream)
        else:
            mover = None
        return cls(store, mover, exporter, settings.retention if store is not None else None,
                   settings.audit_purge_interval, settings.audit_export_consumer)

    def access_log(self, ehr: EhrSearchClient) -> AccessLogSource:
        """Where the patient's access log comes from: the store, or without one the EHR."""
        return self.store if self.store is not None else EhrAccessLog(ehr)

    @contextlib.asynccontextmanager
    async def running(self, *, background: bool) -> AsyncIterator[None]:
        """The store open for the app's lifetime; with `background`, the stream moved on, the export and
        the retention purge running too."""
        if self.store is not None:
            await self.store.open()
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if background:
            if self.mover is None:
                log.warning("audit: no store and no repository; the audit stream is kept in Redis only")
            else:
                tasks.append(asyncio.create_task(self.mover.run(stop), name="audit-stream"))
            if self.exporter is not None:
                tasks.append(asyncio.create_task(self.exporter.run(stop), name="audit-export"))
            if self.store is not None and self.retention is not None:
                tasks.append(asyncio.create_task(run_retention(
                    self.store, self.retention, holder=self.holder, interval=self.purge_interval, stop=stop),
                    name="audit-retention"))
        try:
            yield
        finally:
            stop.set()
            # A clean stop lets every task finish its step (acks, lease release, heartbeat removal), so the
            # others take over at once; a task that does not finish in time is cancelled.
            _done, late = await asyncio.wait(tasks, timeout=5) if tasks else (set(), set())
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.store is not None:
                await self.store.close()
