"""The SQLite audit store: idempotent writes, one patient's log newest first, the export queue, leases and
the retention purge - against a real SQLite file (embedded, no server)."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from audit.events import auth_event, rest_event
from audit.sqlite_store import SqliteAuditStore
from audit.store import StoredEvent, decode_event, encode_event, instant_ms

T0 = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)


def event(minutes: float = 0, patient: str = "pt-1", **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        interaction="read", outcome="0", action="R", entity_refs=[f"Patient/{patient}"],
        patient_refs=[f"Patient/{patient}"], account_ref="Practitioner/prac-01", account_id="acct-9",
        client_id="portal-web", on_behalf_of=None, source_ip="203.0.113.9", request_id="r-1", query=None,
        recorded=T0 + timedelta(minutes=minutes),
    )
    args.update(overrides)
    return rest_event(**args)


def stored(e: dict[str, Any]) -> StoredEvent:
    return StoredEvent.from_payload(e["id"], json.dumps(e))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteAuditStore]:
    s = SqliteAuditStore(tmp_path / "state" / "audit.sqlite3")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def test_stored_form_is_a_small_lossless_copy() -> None:
    e = event(query="patient=Patient/pt-1&category=laboratory", interaction="search-type", action="E")
    payload = json.dumps(e, separators=(",", ":"))
    blob = encode_event(payload)
    assert decode_event(blob) == e
    assert len(blob) < len(payload) / 4
    assert decode_event(payload.encode()) == e  # plain JSON rows read too
    with pytest.raises(ValueError):
        decode_event(b"\x09junk")


async def test_file_is_private_and_in_wal_mode(store: SqliteAuditStore) -> None:
    await store.add([stored(event())], export=False)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.path.with_name(store.path.name + "-wal").exists()


async def test_an_event_delivered_twice_is_stored_and_queued_once(store: SqliteAuditStore) -> None:
    e = stored(event())
    assert await store.add([e], export=True) == 1
    assert await store.add([e, e], export=True) == 0
    stats = await store.stats()
    assert (stats["events"], stats["export_backlog"]) == (1, 1)
    assert len((await store.page("pt-1")).events) == 1


async def test_a_patient_sees_only_their_events_newest_first(store: SqliteAuditStore) -> None:
    mine = [event(m) for m in (0, 2, 1)]
    theirs = [event(5, patient="pt-2")]
    both = event(3, patient="pt-1", entity_refs=["Patient/pt-2"], patient_refs=["Patient/pt-1", "Patient/pt-2"])
    signin = auth_event("login", "success", fhir_user="Patient/pt-1", patient_id="pt-1", recorded=T0)
    await store.add([stored(e) for e in [*mine, *theirs, both, signin]], export=False)
    page = await store.page("Patient/pt-1", count=10)
    # one millisecond, two events: the one stored last comes first
    assert [e["id"] for e in page.events] == [both["id"], mine[1]["id"], mine[2]["id"], signin["id"], mine[0]["id"]]
    assert not page.more
    assert [e["id"] for e in (await store.page("pt-2", count=10)).events] == [theirs[0]["id"], both["id"]]
    assert (await store.page("pt-3")).events == []


async def test_time_bounds_and_more(store: SqliteAuditStore) -> None:
    events = [event(m) for m in range(6)]  # 09:30 ... 09:35
    await store.add([stored(e) for e in events], export=False)
    ids = [e["id"] for e in events]

    async def found(**kw: Any) -> list[str]:
        return [e["id"] for e in (await store.page("pt-1", count=10, **kw)).events]

    assert await found(since="2024-06-01T09:33:00+00:00") == ids[:2:-1]
    assert await found(until=events[2]["recorded"]) == ids[2::-1]
    assert await found(before=events[2]["recorded"]) == ids[1::-1]
    assert await found(since="2024-06-01", until="2024-06-01") == ids[::-1]  # a date is the whole day
    assert await found(since="2024-06-02") == []
    assert await found(before="2024-06-01") == []
    two = await store.page("pt-1", count=2)
    assert [e["id"] for e in two.events] == ids[:3:-1] and two.more


async def test_export_queue_oldest_first_and_refusals_kept(store: SqliteAuditStore) -> None:
    events = [event(m) for m in range(4)]
    await store.add([stored(e) for e in events], export=True)
    batch = await store.export_batch(3)
    assert [p.event_id for p in batch] == [e["id"] for e in events[:3]]
    assert json.loads(batch[0].payload) == events[0]
    await store.exported([batch[0].seq, batch[2].seq])
    await store.refused(batch[1].seq, 422, "bad AuditEvent")
    assert [p.event_id for p in await store.export_batch(10)] == [events[3]["id"]]
    stats = await store.stats()
    assert (stats["events"], stats["export_backlog"], stats["export_refused"]) == (4, 1, 1)
    assert await store.export_backlog() == (1, 1)  # what /metrics shows, without counting every event
    assert await store.requeue_refused() == 1
    assert [p.event_id for p in await store.export_batch(10)] == [events[1]["id"], events[3]["id"]]
    await store.add([stored(event(9))], export=False)  # with the export off nothing is queued
    assert (await store.stats())["export_backlog"] == 2
    assert await store.export_backlog() == (2, 0)


async def test_purge_removes_old_events_the_export_no_longer_needs(store: SqliteAuditStore) -> None:
    old_done, old_queued, old_refused, recent = event(0), event(1), event(2), event(60 * 24 * 30)
    await store.add([stored(e) for e in (old_done, old_queued, old_refused)], export=True)
    await store.add([stored(recent)], export=False)
    queue = {p.event_id: p.seq for p in await store.export_batch(10)}
    await store.exported([queue[old_done["id"]]])
    await store.refused(queue[old_refused["id"]], 422, "refused")
    cutoff = instant_ms((T0 + timedelta(days=1)).isoformat())
    assert await store.purge(cutoff) == 1
    assert {e["id"] for e in (await store.page("pt-1", count=10)).events} == {old_queued["id"], old_refused["id"],
                                                                              recent["id"]}
    await store.exported([queue[old_queued["id"]]])
    assert await store.purge(cutoff, limit=10) == 1
    assert await store.purge(cutoff) == 0
    assert (await store.stats())["events"] == 2


async def test_purge_works_in_chunks(store: SqliteAuditStore) -> None:
    await store.add([stored(event(m)) for m in range(25)], export=False)
    cutoff = instant_ms((T0 + timedelta(days=1)).isoformat())
    assert [await store.purge(cutoff, limit=10) for _ in range(4)] == [10, 10, 5, 0]


async def test_a_lease_has_one_holder_until_it_expires_or_is_released(store: SqliteAuditStore) -> None:
    assert await store.hold_lease("export", "a", 30)
    assert not await store.hold_lease("export", "b", 30)
    assert await store.hold_lease("export", "a", 0.05)  # renewed, shorter
    await asyncio.sleep(0.1)
    assert await store.hold_lease("export", "b", 30)  # a stopped renewing
    assert not await store.hold_lease("export", "a", 30)
    await store.release_lease("export", "a")  # not a's to release
    assert not await store.hold_lease("export", "a", 30)
    await store.release_lease("export", "b")
    assert await store.hold_lease("export", "a", 30)
    assert await store.hold_lease("retention", "b", 30)  # another job, another lease


async def test_two_processes_sharing_the_file_store_each_event_once(tmp_path: Path) -> None:
    first, second = SqliteAuditStore(tmp_path / "audit.sqlite3"), SqliteAuditStore(tmp_path / "audit.sqlite3")
    await first.open()
    await second.open()
    try:
        events = [stored(event(m / 100)) for m in range(200)]
        # both get every event, as two consumers would after a take-over, concurrently
        chunks = [events[i:i + 20] for i in range(0, 200, 20)]
        await asyncio.gather(*(s.add(chunk, export=True) for chunk in chunks for s in (first, second)))
        stats = await second.stats()
        assert (stats["events"], stats["export_backlog"]) == (200, 200)
        assert len((await first.page("pt-1", count=500)).events) == 200
    finally:
        await first.close()
        await second.close()


async def test_closed_store_says_so(tmp_path: Path) -> None:
    from audit.store import StoreUnavailable

    store = SqliteAuditStore(tmp_path / "audit.sqlite3")
    with pytest.raises(StoreUnavailable):
        await store.page("pt-1")
