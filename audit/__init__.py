"""Audit trail: FHIR AuditEvent builders, durable recording (Redis stream + spool), export to the EHR,
and the patient's access log."""

from .access_log import AccessLogUnavailable, access_log, describe
from .events import EventContext, auth_event, rest_event
from .exporter import AuditExporter, ExportFailed
from .recorder import AuditRecorder, AuditUnavailable
from .settings import AuditSettings

__all__ = [
    "AccessLogUnavailable",
    "AuditExporter",
    "AuditRecorder",
    "AuditSettings",
    "AuditUnavailable",
    "EventContext",
    "ExportFailed",
    "access_log",
    "auth_event",
    "describe",
    "rest_event",
]
