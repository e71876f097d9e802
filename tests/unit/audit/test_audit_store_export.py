"""Export from the audit store to the audit record repository: batches of idempotent PUTs, paced, one
exporter per store, nothing leaves the queue that the repository did not take. respx is the repository."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from audit.events import EventContext, rest_event
from audit.ratelimit import RateLimit
from audit.repository import ExportFailed, FhirRepository
from audit.retention import purge_expired
from audit.sqlite_store import SqliteAuditStore
from audit.store import StoredEvent, encode_event
from audit.store_export import StoreExporter
from fhir_gateway.upstream import Upstream, make_client

ARR = "http://arr.test/fhir"


def make_event(n: int) -> dict[str, Any]:
    return rest_event(interaction="read", outcome="0", action="R", entity_refs=[], patient_refs=["Patient/pt-1"],
                      account_ref="Patient/pt-1", account_id="acct-1", client_id="portal-web", on_behalf_of=None,
                      source_ip="127.0.0.1", request_id=f"req-{n}", query=None)


def tx_response(request: httpx.Request) -> httpx.Response:
    sent = json.loads(request.content)
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response",
                                     "entry": [{"response": {"status": "201 Created"}} for _ in sent["entry"]]})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteAuditStore]:
    s = SqliteAuditStore(tmp_path / "audit.sqlite3")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def repository() -> AsyncIterator[FhirRepository]:
    client = make_client(ARR, connect_timeout=1, read_timeout=2, max_connections=5, transport="httpx")
    try:
        yield FhirRepository(Upstream(client, ARR, retries=0), context=EventContext(),
                             headers={"Authorization": "Bearer arr-token"})
    finally:
        await client.aclose()


async def fill(store: SqliteAuditStore, n: int) -> list[dict[str, Any]]:
    events = [make_event(i) for i in range(n)]
    await store.add([StoredEvent.from_payload(e["id"], json.dumps(e)) for e in events], export=True)
    return events


class FakeClock:
    """A clock that moves only when told to, or when something sleeps on it (the sleeps are kept)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


async def test_rate_limit_paces_batches_without_saving_up_idle_time() -> None:
    clock = FakeClock()
    slept = clock.slept
    limit = RateLimit(50, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await limit.acquire(100)
    assert slept == [2.0, 2.0]  # 100 events at 50/s: one batch every 2 s, the first at once
    clock.now += 60  # a quiet minute is not a licence for a burst afterwards
    await limit.acquire(100)
    await limit.acquire(100)
    assert slept == [2.0, 2.0, 2.0]
    assert await RateLimit(None).acquire(10_000) == 0.0
    with pytest.raises(ValueError):
        RateLimit(0)


async def test_share_rests_the_repository_in_proportion_to_how_long_it_took_to_answer() -> None:
    clock = FakeClock()
    slept = clock.slept
    limit = RateLimit(None, share=0.1, clock=clock, sleep=clock.sleep)
    async with limit.batch(100):
        clock.now += 3.0  # the repository takes 3 s to answer the first batch
    async with limit.batch(100):
        clock.now += 0.5  # a quicker answer earns a shorter rest
    with pytest.raises(RuntimeError):
        async with limit.batch(100):
            clock.now += 1.0  # a failed batch took the repository's time too
            raise RuntimeError("repository down")
    await limit.acquire(100)
    assert slept == [27.0, 4.5, 9.0]  # a tenth of the time busy: 9 s of rest per second it took

    # With a rate as well, the later of the two: 100 events at 50/s wait 2 s, a 0.1 s answer only 0.9 s.
    slept.clear()
    both = RateLimit(50, share=0.1, clock=clock, sleep=clock.sleep)
    for _ in range(2):
        async with both.batch(100):
            clock.now += 0.1
    async with both.batch(100):
        clock.now += 1.0
    await both.acquire(100)
    assert slept == [1.9, 1.9, 9.0]  # 2 s after the start of the previous batch; then 9 s after a slow one
    share_of_one = RateLimit(None, share=1.0, clock=clock, sleep=clock.sleep)
    async with share_of_one.batch(100):
        clock.now += 5
    assert await share_of_one.acquire(100) == 0.0  # 1: no rest
    with pytest.raises(ValueError):
        RateLimit(None, share=0)


@respx.mock
async def test_batches_of_idempotent_puts_leave_the_queue_once_stored(
    store: SqliteAuditStore, repository: FhirRepository
) -> None:
    events = await fill(store, 25)
    route = respx.post(ARR + "/").mock(side_effect=tx_response)
    exporter = StoreExporter(store, repository, holder="a", batch_size=10)
    assert [await exporter.export_once() for _ in range(4)] == [10, 10, 5, 0]
    sent = [json.loads(call.request.content) for call in route.calls]
    assert [len(b["entry"]) for b in sent] == [10, 10, 5]
    assert [x["request"] for b in sent for x in b["entry"]] == [
        {"method": "PUT", "url": f"AuditEvent/{e['id']}"} for e in events]
    assert [x["resource"] for b in sent for x in b["entry"]] == events
    assert route.calls.last.request.headers["authorization"] == "Bearer arr-token"
    assert (await store.stats())["export_backlog"] == 0


@respx.mock
async def test_repository_down_keeps_everything_queued(store: SqliteAuditStore, repository: FhirRepository) -> None:
    await fill(store, 5)
    respx.post(ARR + "/").mock(side_effect=[httpx.ConnectError("down"), httpx.Response(503),
                                            httpx.Response(429), tx_response])
    exporter = StoreExporter(store, repository, holder="a", batch_size=10)
    for _ in range(3):
        with pytest.raises(ExportFailed):
            await exporter.export_once()
        assert (await store.stats())["export_backlog"] == 5
    assert await exporter.export_once() == 5


@respx.mock
async def test_a_refused_event_is_kept_and_the_rest_goes_on(store: SqliteAuditStore,
                                                           repository: FhirRepository) -> None:
    events = await fill(store, 3)
    outcome = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "bad AuditEvent"}]}
    respx.post(ARR + "/").mock(return_value=httpx.Response(422, json=outcome))
    respx.put(f"{ARR}/AuditEvent/{events[0]['id']}").mock(return_value=httpx.Response(201, json={}))
    refused = respx.put(f"{ARR}/AuditEvent/{events[1]['id']}").mock(return_value=httpx.Response(422, json=outcome))
    respx.put(f"{ARR}/AuditEvent/{events[2]['id']}").mock(return_value=httpx.Response(200, json={}))
    exporter = StoreExporter(store, repository, holder="a", batch_size=10)
    assert await exporter.export_once() == 2
    assert refused.call_count == 2  # literal references, then logical ones
    stats = await store.stats()
    assert (stats["export_backlog"], stats["export_refused"], stats["events"]) == (0, 1, 3)


@respx.mock
async def test_a_stored_event_that_is_not_json_is_kept_as_refused_and_the_rest_goes_on(
    store: SqliteAuditStore, repository: FhirRepository
) -> None:
    events = await fill(store, 2)
    await store.add([StoredEvent("broken-1", 1, ("Patient/pt-1",), encode_event('{"resourceType": "Audit'))],
                    export=True)
    outcome = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "unparseable body"}]}
    respx.post(ARR + "/").mock(return_value=httpx.Response(400, json=outcome))
    for event in events:
        respx.put(f"{ARR}/AuditEvent/{event['id']}").mock(return_value=httpx.Response(201, json={}))
    broken = respx.put(f"{ARR}/AuditEvent/broken-1").mock(return_value=httpx.Response(400, json=outcome))
    exporter = StoreExporter(store, repository, holder="a", batch_size=10)
    assert await exporter.export_once() == 2
    assert broken.call_count == 1  # nothing to turn into logical references
    stats = await store.stats()
    assert (stats["export_backlog"], stats["export_refused"], stats["events"]) == (0, 1, 3)


@respx.mock
async def test_one_exporter_per_store_and_a_prompt_take_over(store: SqliteAuditStore,
                                                              repository: FhirRepository) -> None:
    await fill(store, 6)
    route = respx.post(ARR + "/").mock(side_effect=tx_response)
    first = StoreExporter(store, repository, holder="a", batch_size=2, lease_ttl=0.3)
    second = StoreExporter(store, repository, holder="b", batch_size=2, lease_ttl=0.3)
    assert await first.export_once() == 2
    assert await second.export_once() is None  # "a" exports; "b" waits
    await asyncio.sleep(0.35)  # "a" died without a word
    assert await second.export_once() == 2
    assert await first.export_once() is None
    assert route.call_count == 2
    assert (await store.stats())["export_backlog"] == 2


@respx.mock
async def test_an_idle_exporter_writes_nothing_and_takes_the_lease_when_work_comes(
    tmp_path: Path, repository: FhirRepository
) -> None:
    store = CountingLeases(tmp_path / "audit.sqlite3")
    await store.open()
    try:
        respx.post(ARR + "/").mock(side_effect=tx_response)
        exporter = StoreExporter(store, repository, holder="a", batch_size=10, lease_ttl=0.3, idle_interval=0.02)
        stop = asyncio.Event()
        task = asyncio.create_task(exporter.run(stop))
        await asyncio.sleep(0.4)  # idle: several rounds and renewal periods
        assert store.holds == 0
        assert await store.hold_lease("export", "b", 0.05)  # nobody holds it while there is nothing to do
        asked = store.holds
        await asyncio.sleep(0.06)
        await fill(store, 3)
        for _ in range(200):
            if not (await store.stats())["export_backlog"]:
                break
            await asyncio.sleep(0.02)
        assert (await store.stats())["export_backlog"] == 0
        assert store.holds > asked  # the exporter took the lease for the work
        stop.set()
        await asyncio.wait_for(task, 5)
    finally:
        await store.close()


@respx.mock
async def test_the_paced_export_runs_until_stopped_and_hands_over_at_once(
    store: SqliteAuditStore, repository: FhirRepository
) -> None:
    await fill(store, 30)
    route = respx.post(ARR + "/").mock(side_effect=tx_response)
    exporter = StoreExporter(store, repository, holder="a", batch_size=10, rate=RateLimit(100), idle_interval=0.05)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.create_task(exporter.run(stop))
    while (await store.stats())["export_backlog"] and loop.time() - started < 10:
        await asyncio.sleep(0.02)
    elapsed = loop.time() - started
    stop.set()
    await asyncio.wait_for(task, 5)
    assert route.call_count == 3
    assert elapsed >= 0.2  # 30 events at 100/s: the 2nd batch after 0.1 s, the 3rd after 0.2 s
    assert await store.hold_lease("export", "b", 1)  # released on a clean stop


class CountingLeases(SqliteAuditStore):
    """A store that counts the lease writes asked of it."""

    holds = 0

    async def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        self.holds += 1
        return await super().hold_lease(name, holder, ttl)


class SlowRenewals(SqliteAuditStore):
    """A store whose lease renewals wait on their thread before they write, like a busy disk."""

    async def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        def slow(conn: Any) -> bool:
            time.sleep(0.1)
            return self._hold(conn, name, holder, ttl)
        return await self._call(self._write, slow)


async def test_a_renewal_under_way_at_a_clean_stop_does_not_keep_the_lease(tmp_path: Path,
                                                                            repository: FhirRepository) -> None:
    store = SlowRenewals(tmp_path / "audit.sqlite3")
    await store.open()
    try:
        exporter = StoreExporter(store, repository, holder="a", lease_ttl=0.06, idle_interval=0.01)
        stop = asyncio.Event()
        task = asyncio.create_task(exporter.run(stop))
        await asyncio.sleep(0.15)  # renewals every 20 ms, each 100 ms on its thread: one is under way
        stop.set()
        await asyncio.wait_for(task, 5)
        await asyncio.sleep(0.15)  # whatever was still running on a store thread has landed by now
        assert await SqliteAuditStore.hold_lease(store, "export", "b", 60)  # "b" takes over at once
    finally:
        await store.close()


async def test_retention_purge_runs_in_one_process_at_a_time(store: SqliteAuditStore) -> None:
    from datetime import timedelta

    await fill(store, 3)
    await store.exported([p.seq for p in await store.export_batch(10)])
    far_future = (await store.stats())["newest_ms"] + 10 * 86_400_000
    assert await store.hold_lease("retention", "other", 60)
    assert await purge_expired(store, timedelta(days=1), holder="me", now_ms=far_future) is None
    await store.release_lease("retention", "other")
    assert await purge_expired(store, timedelta(days=1), holder="me", now_ms=far_future, chunk=2) == 3
    assert await purge_expired(store, timedelta(days=30), holder="me", now_ms=far_future) == 0
    assert (await store.stats())["events"] == 0
