"""Export of the audit stream to the EHR as AuditEvent resources.

One consumer group (`group`) shares the work among replicas; each process is one consumer. A batch is sent
as ONE FHIR transaction of `PUT AuditEvent/<event id>` entries: the PUT is idempotent on the event id, so a
batch re-sent after a crash, a lost response or a duplicate stream entry creates nothing twice.

Delivery rules:
- an entry is XACKed (and then XDELed, so the stream does not grow forever) only after the EHR accepted
  its event (2xx in the transaction-response entry);
- EHR down / timeout / 5xx / 408 / 429: nothing is acked, the entries stay pending to this consumer and
  `run()` retries them first, with capped exponential backoff;
- the EHR rejects the whole transaction with another 4xx (one malformed or refused event would otherwise
  block the queue forever): the batch is retried event by event; an event the EHR refuses on its own is
  sent once more with logical references (a referenced resource may have been deleted since), and only
  if that fails too moved, with the EHR's status, to the dead-letter stream `<stream>:dead` (still in
  Redis, nothing is dropped) and acked in the same MULTI.
- on every call the consumer first re-sends its own pending entries (a restart resumes where it stopped),
  then takes over entries another consumer left pending for `claim_idle` seconds (XAUTOCLAIM), then reads
  new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from redis.exceptions import ResponseError

from .events import EventContext, with_logical_references
from .recorder import REDIS_FAILURES

log = logging.getLogger("audit.exporter")

FHIR_JSON = "application/fhir+json"
RETRYABLE_STATUS = frozenset({408, 425, 429})


class EhrClient(Protocol):
    """What the exporter needs from the EHR client (fhir_gateway.upstream.Upstream satisfies it)."""

    async def request(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response: ...


class ExportFailed(RuntimeError):
    """The EHR did not take the batch now (down, timeout, 5xx); the entries stay pending and are retried."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _status_code(status: str | None) -> int:
    try:
        return int(str(status or "").split(" ", 1)[0])
    except ValueError:
        return 0


def _diagnostic(response: httpx.Response) -> str:
    """A short reason from the EHR's OperationOutcome (our events carry no PHI, so neither does this)."""
    try:
        issues = response.json().get("issue") or []
        return "; ".join(str(i.get("diagnostics") or i.get("code") or "") for i in issues)[:300]
    except ValueError:
        return response.reason_phrase[:300]


@dataclass
class _Event:
    event_id: str
    payload: str
    stream_ids: list[str] = field(default_factory=list)


class AuditExporter:
    def __init__(
        self,
        redis: Any,
        ehr: EhrClient,
        *,
        stream: str = "audit:events",
        group: str = "exporter",
        consumer: str,
        batch_size: int = 100,
        claim_idle: float = 60.0,
        idle_interval: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 60.0,
        dead_stream: str | None = None,
        context: EventContext | None = None,
    ) -> None:
        # With the deployment's context, an event the EHR refuses is retried with logical references.
        self.context = context
        self.redis = redis
        self.ehr = ehr
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.batch_size = batch_size
        self.claim_idle_ms = int(claim_idle * 1000)
        self.idle_interval = idle_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.dead_stream = dead_stream or f"{stream}:dead"
        self._group_ready = False
        self._claim_cursor = "0-0"

    # -- stream side ---------------------------------------------------------------------------------------
    async def ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # id=0: a new group starts with everything already in the stream, nothing recorded is skipped.
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def backlog(self) -> int:
        """Entries in the stream not yet exported (acked entries are deleted)."""
        return int(await self.redis.xlen(self.stream))

    @staticmethod
    def _entries(reply: Any) -> list[tuple[str, dict[Any, Any] | None]]:
        if not reply:
            return []
        streams = reply.items() if isinstance(reply, dict) else reply  # RESP3 dict or RESP2 list
        out: list[tuple[str, dict[Any, Any] | None]] = []
        for _name, messages in streams:
            for message in messages:
                out.append((_text(message[0]), message[1]))
        return out

    async def _next_batch(self) -> list[tuple[str, dict[Any, Any] | None]]:
        # 1. our own pending entries (delivered earlier, never acked: crash, EHR down, restart)
        own = self._entries(await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: "0"}, count=self.batch_size))
        if own:
            return own
        # 2. entries another consumer took and left pending too long (that replica died)
        claimed = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_time=self.claim_idle_ms,
            start_id=self._claim_cursor, count=self.batch_size,
        )
        self._claim_cursor = _text(claimed[0]) if claimed and claimed[0] else "0-0"
        taken = [(_text(mid), fields) for mid, fields in (claimed[1] if claimed else []) if mid]
        if taken:
            return taken
        # 3. new entries
        return self._entries(await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=self.batch_size))

    async def _ack(self, stream_ids: Sequence[str]) -> None:
        if not stream_ids:
            return
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, *stream_ids)
        pipe.xdel(self.stream, *stream_ids)  # only acked entries are ever deleted
        await pipe.execute()

    async def _dead_letter(self, event: _Event | None, stream_ids: Sequence[str], status: int, reason: str,
                           raw: str = "") -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(self.dead_stream, {
            "id": event.event_id if event else "",
            "event": event.payload if event else raw,
            "status": str(status),
            "reason": reason,
            "stream_ids": ",".join(stream_ids),
        })
        pipe.xack(self.stream, self.group, *stream_ids)
        pipe.xdel(self.stream, *stream_ids)
        await pipe.execute()
        log.error("audit event %s refused by the EHR (%s: %s); moved to %s",
                  event.event_id if event else "?", status, reason, self.dead_stream)

    # -- EHR side ------------------------------------------------------------------------------------------
    async def _send(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            response = await self.ehr.request(method, path, json=body, headers={"Content-Type": FHIR_JSON})
        except Exception as exc:  # the EHR client maps transport failures onto several error types
            raise ExportFailed(f"EHR unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUS:
            raise ExportFailed(f"EHR answered {response.status_code}")
        return response

    @staticmethod
    def _bundle(events: Sequence[_Event]) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": json.loads(e.payload),
                    "request": {"method": "PUT", "url": f"AuditEvent/{e.event_id}"},
                }
                for e in events
            ],
        }

    async def _one_by_one(self, events: Sequence[_Event]) -> int:
        accepted = 0
        for event in events:
            body = json.loads(event.payload)
            response = await self._send("PUT", f"AuditEvent/{event.event_id}", body)
            if not response.is_success and self.context is not None:
                # Typically a referenced resource was deleted since: keep the record, by logical reference.
                logical = with_logical_references(body, self.context)
                if logical != body:
                    response = await self._send("PUT", f"AuditEvent/{event.event_id}", logical)
                    if response.is_success:
                        log.warning("audit event %s stored with logical references (the EHR refused the "
                                    "literal ones)", event.event_id)
            if response.is_success:
                await self._ack(event.stream_ids)
                accepted += 1
            else:
                await self._dead_letter(event, event.stream_ids, response.status_code, _diagnostic(response))
        return accepted

    async def export_once(self) -> int:
        """Export one batch; returns how many events the EHR accepted (0: nothing to do).

        Raises ExportFailed when the EHR cannot take the batch now, or a Redis error when Redis is down.
        """
        await self.ensure_group()
        try:
            entries = await self._next_batch()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream (and with it the group) was deleted since we created it: start over.
            self._group_ready = False
            await self.ensure_group()
            entries = await self._next_batch()
        if not entries:
            return 0
        events: dict[str, _Event] = {}
        for stream_id, fields in entries:
            data = {_text(k): _text(v) for k, v in (fields or {}).items()}
            if not fields:
                await self._ack([stream_id])  # deleted while pending: nothing left to send
                continue
            try:
                payload = data["event"]
                event_id = data.get("id") or str(json.loads(payload)["id"])
                json.loads(payload)
            except (KeyError, ValueError, TypeError):
                await self._dead_letter(None, [stream_id], 0, "unreadable stream entry", json.dumps(data))
                continue
            # The same event twice in the stream (an ambiguous Redis timeout) is sent once, acked twice.
            events.setdefault(event_id, _Event(event_id, payload)).stream_ids.append(stream_id)
        batch = list(events.values())
        if not batch:
            return 0

        response = await self._send("POST", "", self._bundle(batch))
        if not response.is_success:
            log.warning("EHR refused an audit transaction of %d events (%s); retrying one by one",
                        len(batch), response.status_code)
            return await self._one_by_one(batch)
        try:
            results = response.json().get("entry") or []
        except ValueError as exc:
            raise ExportFailed("EHR sent an unreadable transaction-response") from exc
        accepted_ids: list[str] = []
        refused: list[_Event] = []
        for index, event in enumerate(batch):
            status = (results[index].get("response") or {}).get("status") if index < len(results) else None
            if 200 <= _status_code(status) < 300:
                accepted_ids.extend(event.stream_ids)
            else:
                refused.append(event)
        await self._ack(accepted_ids)
        accepted = len(batch) - len(refused)
        if refused:
            accepted += await self._one_by_one(refused)
        return accepted

    # -- background task -----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Export until `stop` is set: a full batch goes on at once, an empty poll waits `idle_interval`."""
        backoff = self.backoff_initial
        while not stop.is_set():
            try:
                exported = await self.export_once()
            except (ExportFailed, *REDIS_FAILURES) as exc:
                log.warning("audit export postponed %.1fs: %s", backoff, exc)
            except Exception:  # a bug must not silently end the export; keep retrying and say so loudly
                log.exception("audit export failed unexpectedly; retrying in %.1fs", backoff)
            else:
                backoff = self.backoff_initial
                if exported < self.batch_size:
                    await self._wait(stop, self.idle_interval)
                continue
            # Full jitter keeps many replicas from hammering a recovering EHR in lockstep.
            await self._wait(stop, random.uniform(backoff / 2, backoff))
            backoff = min(backoff * 2, self.backoff_max)

    @staticmethod
    async def _wait(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
