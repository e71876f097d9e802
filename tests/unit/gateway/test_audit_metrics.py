"""The audit backlog on /metrics: read when scraped, and a part that cannot be read is left out and said so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError

from audit.events import rest_event
from audit.sqlite_store import SqliteAuditStore
from audit.store import StoredEvent
from fhir_gateway.audit_metrics import AuditBacklog


class StreamLengths:
    def __init__(self, lengths: dict[str, int], *, down: bool = False) -> None:
        self.lengths = lengths
        self.down = down

    async def xlen(self, key: str) -> int:
        if self.down:
            raise RedisConnectionError("Redis is down")
        return self.lengths.get(key, 0)


def event(n: int) -> dict[str, Any]:
    return rest_event(interaction="read", outcome="0", action="R", entity_refs=[], patient_refs=["Patient/pt-1"],
                      account_ref="Patient/pt-1", account_id="acct-1", client_id="portal-web", on_behalf_of=None,
                      source_ip="127.0.0.1", request_id=f"req-{n}", query=None)


def scrape(backlog: AuditBacklog) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(backlog)
    lines = generate_latest(registry).decode().splitlines()
    return {line.split()[0]: float(line.split()[1]) for line in lines if line.startswith("portal_audit_")}


async def test_the_backlog_is_what_waits_in_the_stream_and_in_the_store(tmp_path: Path) -> None:
    store = SqliteAuditStore(tmp_path / "audit.sqlite3")
    await store.open()
    try:
        events = [event(n) for n in range(5)]
        await store.add([StoredEvent.from_payload(e["id"], json.dumps(e)) for e in events], export=True)
        batch = await store.export_batch(5)
        await store.exported([p.seq for p in batch[:2]])
        await store.refused(batch[2].seq, 422, "not valid there")
        backlog = AuditBacklog(StreamLengths({"audit:events": 7, "audit:events:dead": 1}), "audit:events", store)
        await backlog.read()
        assert scrape(backlog) == {
            "portal_audit_stream_entries": 7.0, "portal_audit_stream_dead_letters": 1.0,
            "portal_audit_export_backlog": 2.0, "portal_audit_export_refused": 1.0,
            "portal_audit_backlog_readable": 1.0}

        # Redis down: the stream's series are left out (not shown at their last value), the store's still read.
        down = AuditBacklog(StreamLengths({}, down=True), "audit:events", store)
        await down.read()
        assert scrape(down) == {"portal_audit_export_backlog": 2.0, "portal_audit_export_refused": 1.0,
                                "portal_audit_backlog_readable": 0.0}
    finally:
        await store.close()


async def test_without_a_store_only_the_stream_is_shown() -> None:
    backlog = AuditBacklog(StreamLengths({"s": 3}), "s", None)
    await backlog.read()
    assert scrape(backlog) == {"portal_audit_stream_entries": 3.0, "portal_audit_stream_dead_letters": 0.0,
                               "portal_audit_backlog_readable": 1.0}
