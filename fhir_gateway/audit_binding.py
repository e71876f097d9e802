"""Binds the gateway's and smart_auth's audit hooks to the audit package (builder + durable recorder)."""

from __future__ import annotations

from typing import Any

from audit.events import auth_event, rest_event
from audit.recorder import AuditRecorder, AuditUnavailable

from .errors import FHIRError
from .routes import AccessRecord


class GatewayAudit:
    """Turns one AccessRecord into an AuditEvent and records it before the response leaves."""

    def __init__(self, recorder: AuditRecorder) -> None:
        self.recorder = recorder

    async def __call__(self, record: AccessRecord) -> None:
        caller = record.caller
        event = rest_event(
            interaction=record.interaction,
            outcome=record.outcome,
            action=record.action,
            entity_refs=record.entity_refs,
            patient_refs=record.patient_refs,
            account_ref=(caller.fhir_user if caller else None)
            or (f"Device/{caller.client_id}" if caller and caller.context == "system" else None),
            account_id=caller.subject if caller else None,
            client_id=caller.client_id if caller else None,
            on_behalf_of=caller.on_behalf_of if caller else None,
            source_ip=record.source_ip,
            request_id=record.request_id,
            query=record.query,
        )
        try:
            await self.recorder.record(event)
        except AuditUnavailable as exc:
            # Unaudited access to patient data is not allowed: refuse instead.
            raise FHIRError(503, "transient", "The audit trail is unavailable; please try again shortly") from exc


class AuthAudit:
    """smart_auth's AuthAuditSink, recording security events through the same recorder."""

    def __init__(self, recorder: AuditRecorder) -> None:
        self.recorder = recorder

    async def __call__(self, kind: str, outcome: str, **details: Any) -> None:
        await self.recorder.record(auth_event(kind, outcome, **details))


def make_recorder(redis: Any, state_dir: Any) -> AuditRecorder:
    return AuditRecorder(redis, state_dir / "audit-spool.jsonl")
