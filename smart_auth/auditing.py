"""Audit calls that must succeed: if the sink cannot record the event, the request fails (503)."""

from __future__ import annotations

import logging

from .deps import AuthAuditSink
from .errors import TemporarilyUnavailableError

log = logging.getLogger("smart_auth.audit")


class Auditor:
    def __init__(self, sink: AuthAuditSink) -> None:
        self.sink = sink

    async def __call__(self, kind: str, outcome: str, **fields: str | None) -> None:
        try:
            await self.sink(kind, outcome, **fields)
        except Exception as exc:  # any sink failure: refuse instead of acting unaudited
            log.warning("audit sink failed for %s/%s: %s", kind, outcome, type(exc).__name__)
            raise TemporarilyUnavailableError(
                description="The audit trail is unavailable; please try again shortly"
            ) from exc
