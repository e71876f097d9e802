"""The audit store of ours: every AuditEvent, kept for the retention period, serving the patient's access
log and feeding the export to the audit record repository.

What every store keeps (the SQLite and PostgreSQL stores share the layout, see `sqlite_store.py`):
- `audit_event`: one row per event id (the primary key makes every write idempotent: a redelivered stream
  entry is stored once), with the time it was recorded (ms since the epoch), the patients it concerns
  and the FHIR JSON, compressed (`encode_event`);
- `audit_patient`: (patient, recorded, seq) for each patient an event concerns, so one patient's log
  newest first is an index range however many events are stored;
- `export_queue`: the events not yet accepted by the audit record repository (only while an export is
  configured), oldest first; `export_refused`: the ones it refused even with logical references, kept
  with its reason until an operator requeues them;
- `lease`: who runs a store-wide job (the export, the retention purge) right now, until when.

Which events concern a patient is decided exactly as the access log decides it (`patients_of`): the
patients named as an entity.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import orjson

from .access_log import AccessLogPage, patients_of

# Compression dictionary of the fragments every AuditEvent of ours repeats. Frozen: rows written with
# format 1 are read with exactly these bytes, so a change needs a new format byte, never an edit.
_ZDICT_V1 = (
    b'"requestor":false},{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/extra-security-role-'
    b'type","code":"datasubject","display":"data subject"}]},"who":{"reference":"Patient/"},"type":{"system":'
    b'"http://dicom.nema.org/resources/ontology/DCM","code":"110114","display":"User Authentication"},"subtype":'
    b'[{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"110122","display":"Login"},{"system":'
    b'"/CodeSystem/portal-auth-event","code":"login","display":"Sign-in"}],"detail":[{"type":"detail",'
    b'"valueString":"},"extension":[{"url":"/StructureDefinition/auditevent-on-behalf-of","valueReference":'
    b'{"reference":"Patient/"}}]"what":{"identifier":{"system":"/fhir-reference","value":"Observation/'
    b'"meta":{"tag":[{"system":"/CodeSystem/audit-source","code":"smart-portal-gateway"}]},'
    b'{"role":{"system":"http://terminology.hl7.org/CodeSystem/object-role","code":"24","display":"Query"},'
    b'"type":{"system":"http://hl7.org/fhir/resource-types","code":"Observation"},"query":"cGF0aWVudD1QYXRpZW50L'
    b'{"resourceType":"AuditEvent","id":"","recorded":"2026-01-01T00:00:00.000+00:00","type":{"system":'
    b'"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest","display":"RESTful Operation"},'
    b'"subtype":[{"system":"http://hl7.org/fhir/restful-interaction","code":"search-type"}],"action":"E",'
    b'"outcome":"0","agent":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/extra-security-'
    b'role-type","code":"humanuser","display":"human user"}]},"requestor":true,"who":{"reference":"Patient/"},'
    b'"altId":"","network":{"address":"","type":"2"}},{"type":{"coding":[{"system":'
    b'"http://dicom.nema.org/resources/ontology/DCM","code":"110150","display":"Application"}]},"who":'
    b'{"identifier":{"system":"/oauth-client","value":"portal-web"}},"requestor":false}],"source":{"site":'
    b'"patient-portal","observer":{"display":"smart-portal-gateway"},"type":[{"system":'
    b'"http://terminology.hl7.org/CodeSystem/security-source-type","code":"4","display":"Application Server"}]},'
    b'"entity":[{"what":{"reference":"Patient/"},"type":{"system":'
    b'"http://terminology.hl7.org/CodeSystem/audit-entity-type","code":"1","display":"Person"},"role":{"system":'
    b'"http://terminology.hl7.org/CodeSystem/object-role","code":"1","display":"Patient"}},{"what":{"reference":'
    b'"Observation/"},"type":{"system":"http://terminology.hl7.org/CodeSystem/audit-entity-type","code":"2",'
    b'"display":"System Object"},"role":{"system":"http://terminology.hl7.org/CodeSystem/object-role","code":"4",'
    b'"display":"Domain Resource"}},{"what":{"identifier":{"value":""}},"type":{"system":'
    b'"http://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType","code":"XrequestId","display":'
    b'"X-Request-Id"}}]}'
)
_FORMAT_ZLIB_V1 = b"\x01"
_FORMAT_PLAIN = b"{"


class StoreUnavailable(RuntimeError):
    """The audit store could not be read or written right now."""


def encode_event(payload: str) -> bytes:
    """The stored form of one event's JSON: a format byte, then zlib with the frozen dictionary (about
    a tenth of the JSON's size)."""
    # Level 3: once per audited request, about 30 % less CPU than the default 6 for rows about 8 % larger.
    packer = zlib.compressobj(3, zdict=_ZDICT_V1)
    return _FORMAT_ZLIB_V1 + packer.compress(payload.encode()) + packer.flush()


def _unpack(blob: bytes) -> bytes:
    data = bytes(blob)
    if data[:1] == _FORMAT_ZLIB_V1:
        unpacker = zlib.decompressobj(zdict=_ZDICT_V1)
        return unpacker.decompress(data[1:]) + unpacker.flush()
    if data[:1] == _FORMAT_PLAIN:
        return data
    raise ValueError("unknown stored audit event format")


def decode_event(blob: bytes) -> dict[str, Any]:
    return orjson.loads(_unpack(blob))


def decode_payload(blob: bytes) -> str:
    """The event's JSON exactly as it was stored."""
    return _unpack(blob).decode()


def instant_ms(value: str) -> int:
    """`2024-06-01T09:30:00.123+00:00` (no zone: UTC) -> ms since the epoch."""
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def bound_ms(value: str, op: str) -> int:
    """The access log's time bounds in ms: `ge`/`le`/`lt` a date (`2024-06-01`, the whole day) or an instant."""
    if "T" not in value:
        day = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        if op == "le":
            day += timedelta(days=1)
            return int(day.timestamp() * 1000) - 1
        return int(day.timestamp() * 1000)
    return instant_ms(value)


def index_of(event: Any) -> tuple[int, tuple[str, ...]]:
    """What the store indexes an event by: its recorded time (ms) and the patients it concerns. Raises
    ValueError for an event the store cannot index (no readable `recorded`)."""
    if not isinstance(event, dict) or not isinstance(event.get("recorded"), str):
        raise ValueError("an audit event needs a recorded time")
    return instant_ms(event["recorded"]), tuple(sorted(patients_of(event)))


@dataclass(frozen=True)
class StoredEvent:
    """One event as the store indexes it."""

    event_id: str
    recorded_ms: int
    patients: tuple[str, ...]
    body: bytes

    @classmethod
    def from_payload(cls, event_id: str, payload: str, parsed: Any = None) -> StoredEvent:
        """Raises ValueError for an event the store cannot index (no readable `recorded`). `parsed`: the
        payload already parsed, when the caller has it."""
        event = orjson.loads(payload) if parsed is None else parsed  # per event: parsed once, by the fast parser
        recorded_ms, patients = index_of(event)
        return cls(event_id, recorded_ms, patients, encode_event(payload))


@dataclass(frozen=True)
class Pending:
    """An event waiting for the audit record repository."""

    seq: int
    event_id: str
    payload: str


class AuditStore(Protocol):
    """What the feeder, the export, the retention job and the access log need from a store."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add(self, events: Sequence[StoredEvent], *, export: bool) -> int:
        """Store events not stored yet (by id), queueing them for export if `export`; returns how many were new."""
        ...

    async def page(self, patient_id: str, *, count: int = 50, since: str | None = None, until: str | None = None,
                   before: str | None = None) -> AccessLogPage:
        """One patient's events, newest first (the access log's source)."""
        ...

    async def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the store-wide job `name` for `holder` for `ttl` seconds; False if another holds it."""
        ...

    async def release_lease(self, name: str, holder: str) -> None: ...

    async def export_batch(self, limit: int) -> list[Pending]:
        """The oldest events waiting for the repository."""
        ...

    async def exported(self, seqs: Sequence[int]) -> None: ...

    async def refused(self, seq: int, status: int, reason: str) -> None: ...

    async def requeue_refused(self, limit: int | None = None) -> int: ...

    async def purge(self, before_ms: int, limit: int = 5000) -> int:
        """Delete up to `limit` events recorded before `before_ms` that no export still needs."""
        ...

    async def stats(self) -> dict[str, int]: ...

    async def export_backlog(self) -> tuple[int, int]:
        """(events waiting for the repository, events it refused): what `stats` counts, without counting
        every stored event."""
        ...

    async def scan(self, after_seq: int, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        """Events in the order they were stored, after `after_seq` (0: from the oldest kept): the
        adoption figures fold them in, page by page."""
        ...
