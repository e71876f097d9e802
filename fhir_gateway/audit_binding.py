"""Binds the gateway's and smart_auth's audit hooks to the audit package (builder + durable recorder), and
runs the audit trail's background work for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from audit.events import EventContext, auth_event, rest_event
from audit.recorder import AuditRecorder, AuditUnavailable
from audit.settings import AuditSettings
from audit.workers import AuditWorkers

from .errors import FHIRError
from .pipeline import AccessRecord


def make_recorder(redis: Any, settings: AuditSettings) -> AuditRecorder:
    return AuditRecorder(redis, settings.spool_path, stream=settings.audit_stream, maxlen=settings.audit_stream_maxlen)


class GatewayAudit:
    """Turns one AccessRecord into an AuditEvent and records it before the response leaves."""

    def __init__(self, recorder: AuditRecorder, context: EventContext) -> None:
        self.recorder = recorder
        self.context = context

    async def __call__(self, record: AccessRecord) -> None:
        caller = record.caller
        account_ref = None
        if caller is not None:
            account_ref = caller.fhir_user or (f"Device/{caller.client_id}" if caller.context == "system" else None)
        event = rest_event(
            interaction=record.interaction,
            outcome=record.outcome,
            action=record.action,
            entity_refs=record.entity_refs,
            patient_refs=record.patient_refs,
            account_ref=account_ref,
            account_id=caller.subject if caller else None,
            client_id=caller.client_id if caller else None,
            on_behalf_of=caller.on_behalf_of if caller else None,
            source_ip=record.source_ip,
            request_id=record.request_id,
            query=record.query,
            context=self.context,
            purpose_of_use="BTG" if caller is not None and caller.break_glass else None,
            purpose_reason=caller.break_glass.reason if caller is not None and caller.break_glass else None,
        )
        try:
            await self.recorder.record(event)
        except AuditUnavailable as exc:
            # Unaudited access to patient data is not allowed: refuse instead.
            raise FHIRError(503, "transient", "The audit trail is unavailable; please try again shortly") from exc


class AuthAudit:
    """smart_auth's AuthAuditSink, recording security events through the same recorder."""

    def __init__(self, recorder: AuditRecorder, context: EventContext) -> None:
        self.recorder = recorder
        self.context = context

    async def __call__(self, kind: str, outcome: str, **details: Any) -> None:
        await self.recorder.record(auth_event(kind, outcome, context=self.context, **details))


@contextlib.asynccontextmanager
async def background_audit(recorder: AuditRecorder, workers: AuditWorkers, settings: AuditSettings, *,
                           move_stream: bool) -> AsyncIterator[None]:
    """For as long as the app runs: the spool replayed into Redis, the audit store open (it serves the
    access log), and with `move_stream` the stream moved into the store and on to the audit record
    repository, and the retention purge."""
    replayer = asyncio.create_task(recorder.run_replayer(settings.audit_replay_interval), name="audit-replayer")
    try:
        async with workers.running(background=move_stream):
            yield
    finally:
        replayer.cancel()
        await asyncio.gather(replayer, return_exceptions=True)
