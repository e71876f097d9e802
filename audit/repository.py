"""The audit record repository that receives our events as FHIR AuditEvents: the EHR (default), or a
separate FHIR server (an IHE BALP Audit Record Repository).

A batch is sent as ONE FHIR transaction of `PUT AuditEvent/<event id>` entries: the PUT is idempotent on
the event id, so a batch re-sent after a crash, a lost response or a take-over creates nothing twice.

- the repository down / timeout / 5xx / 408 / 425 / 429: `ExportFailed`, the caller keeps the events and
  sends them again later;
- the repository rejects the whole transaction with another 4xx (one malformed or refused event would
  otherwise block the queue forever): the batch is sent event by event; an event refused on its own is
  sent once more with logical references (a referenced resource may have been deleted since), and only
  if that is refused too is it reported as refused, with the repository's status and reason;
- each entry's status in the transaction-response is checked: only a 2xx counts as stored.

What was stored or refused is reported to the caller's `Receipts` as soon as it is known, so a failure
half-way through a batch keeps what was settled before it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

import httpx
import orjson

from .consumer import DeliveryFailed
from .events import EventContext, with_logical_references

log = logging.getLogger("audit.repository")

FHIR_JSON = "application/fhir+json"
RETRYABLE_STATUS = frozenset({408, 425, 429})


class FhirClient(Protocol):
    """What the export needs from a FHIR client (fhir_gateway.upstream.Upstream satisfies it)."""

    async def request(
        self, method: str, path: str, *, content: bytes | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response: ...


class ExportFailed(DeliveryFailed):
    """The repository did not take the batch now (down, timeout, 5xx); it is kept and retried."""


class Outgoing(Protocol):
    @property
    def event_id(self) -> str: ...

    @property
    def payload(self) -> str: ...


E = TypeVar("E", bound=Outgoing)
E_contra = TypeVar("E_contra", bound=Outgoing, contravariant=True)


class Receipts(Protocol[E_contra]):
    """Told, as soon as the repository has answered, which events it stored and which it refused."""

    async def accepted(self, events: Sequence[E_contra]) -> None: ...

    async def refused(self, event: E_contra, status: int, reason: str) -> None: ...


def _status_code(status: str | None) -> int:
    try:
        return int(str(status or "").split(" ", 1)[0])
    except ValueError:
        return 0


def _diagnostic(response: httpx.Response) -> str:
    """A short reason from the repository's OperationOutcome (our events carry no PHI, so neither does this)."""
    try:
        issues = orjson.loads(response.content).get("issue") or []
        return "; ".join(str(i.get("diagnostics") or i.get("code") or "") for i in issues)[:300]
    except (ValueError, AttributeError, TypeError):
        return response.reason_phrase[:300]


class FhirRepository:
    def __init__(self, client: FhirClient, *, context: EventContext | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.client = client
        # With the deployment's context, an event the repository refuses is retried with logical references.
        self.context = context
        self.headers = {"Content-Type": FHIR_JSON, **(headers or {})}

    async def _send(self, method: str, path: str, body: bytes) -> httpx.Response:
        try:
            response = await self.client.request(method, path, content=body, headers=self.headers)
        except Exception as exc:  # the client maps transport failures onto several error types
            raise ExportFailed(f"audit repository unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUS:
            raise ExportFailed(f"audit repository answered {response.status_code}")
        return response

    @staticmethod
    def bundle(events: Sequence[Outgoing]) -> bytes:
        """The transaction, with each event's JSON put in as it is: the recorder wrote it (orjson, from the
        event), and parsing a whole batch again only to write it out once more cost the exporting process
        far more than the batch's own sending. Should one payload not be JSON after all, the repository
        refuses the transaction and the events go one by one (below), where that one is kept as refused."""
        entries = b",".join(
            b'{"resource":' + e.payload.encode() + b',"request":{"method":"PUT","url":'
            + orjson.dumps(f"AuditEvent/{e.event_id}") + b"}}"
            for e in events
        )
        return b'{"resourceType":"Bundle","type":"transaction","entry":[' + entries + b"]}"

    async def send(self, events: Sequence[E], receipts: Receipts[E]) -> int:
        """Store `events`; returns how many the repository took. Raises ExportFailed when it cannot now."""
        if not events:
            return 0
        response = await self._send("POST", "", self.bundle(events))
        if not response.is_success:
            log.warning("audit repository refused a transaction of %d events (%s); sending them one by one",
                        len(events), response.status_code)
            return await self._one_by_one(events, receipts)
        try:
            results = orjson.loads(response.content).get("entry") or []
        except (ValueError, AttributeError) as exc:
            raise ExportFailed("audit repository sent an unreadable transaction-response") from exc
        stored: list[E] = []
        again: list[E] = []
        for index, event in enumerate(events):
            status = (results[index].get("response") or {}).get("status") if index < len(results) else None
            (stored if 200 <= _status_code(status) < 300 else again).append(event)
        await receipts.accepted(stored)
        return len(stored) + (await self._one_by_one(again, receipts) if again else 0)

    async def _one_by_one(self, events: Sequence[E], receipts: Receipts[E]) -> int:
        accepted = 0
        for event in events:
            response = await self._send("PUT", f"AuditEvent/{event.event_id}", event.payload.encode())
            if not response.is_success and self.context is not None:
                # Typically a referenced resource was deleted since: keep the record, by logical reference.
                try:
                    body = orjson.loads(event.payload)
                except orjson.JSONDecodeError:
                    body = None  # not JSON: refused below, with the repository's reason, not retried
                logical = with_logical_references(body, self.context) if isinstance(body, dict) else body
                if logical != body:
                    response = await self._send("PUT", f"AuditEvent/{event.event_id}", orjson.dumps(logical))
                    if response.is_success:
                        log.warning("audit event %s stored with logical references (the repository refused "
                                    "the literal ones)", event.event_id)
            if response.is_success:
                await receipts.accepted([event])
                accepted += 1
            else:
                await receipts.refused(event, response.status_code, _diagnostic(response))
        return accepted
