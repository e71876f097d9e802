"""The audit trail with the store (the default): Redis stream -> audit store -> paced export to the real
HAPI server, through an EHR that loses answers and goes away mid-export, and a running gateway whose
Redis is killed mid-load. Nothing lost, nothing twice, in the store and in the EHR."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from audit.feeder import StoreFeeder
from audit.ratelimit import RateLimit
from audit.recorder import AuditRecorder
from audit.repository import FhirRepository
from audit.sqlite_store import SqliteAuditStore
from audit.store_export import StoreExporter
from tests.conftest import GatewayServer, RedisServer, start_gateway_process
from tests.integration.gateway.helpers import auth, mint
from tests.tcp_proxy import FaultyProxy

from .conftest import (
    RedisProcess,
    count_tagged,
    fast_redis,
    redis_process,
    request_id_of,
    stored_events,
    tagged_ids,
    upstream_for,
)
from .test_audit_ehr_outage import wait_for
from .test_audit_export_hapi import make_event

pytestmark = pytest.mark.integration

PT = "pt-0001"
PATIENT_SCOPES = "launch/patient openid fhirUser patient/*.rs"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteAuditStore]:
    s = SqliteAuditStore(tmp_path / "audit.sqlite3")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_stream_to_store_to_ehr_through_an_ehr_outage_loses_and_doubles_nothing(
    redis: aioredis.Redis, stream: str, hapi: str, run_tag: tuple[str, str], tmp_path: Path,
    store: SqliteAuditStore,
) -> None:
    url = httpx.URL(hapi)
    proxy = FaultyProxy(url.host, url.port or 80, url.path)
    await proxy.start()
    via_proxy = upstream_for(proxy.base_url)
    recorder = AuditRecorder(redis, tmp_path / "spool.jsonl", stream=stream)
    feeder = StoreFeeder(redis, store, export=True, stream=stream, consumer="feeder", batch_size=20,
                         idle_interval=0.05, backoff_initial=0.05, backoff_max=0.5)
    exporter = StoreExporter(store, FhirRepository(via_proxy), holder="exporter", batch_size=20,
                             rate=RateLimit(200), idle_interval=0.05, backoff_initial=0.05, backoff_max=0.5)
    events = [make_event(i, run_tag) for i in range(150)]

    async def produce() -> None:
        for event in events:
            await recorder.record(event)
            await asyncio.sleep(0.01)

    stop = asyncio.Event()
    tasks = [asyncio.create_task(produce()), asyncio.create_task(feeder.run(stop)),
             asyncio.create_task(exporter.run(stop))]
    try:
        async def some_exported() -> bool:
            return await count_tagged(hapi, run_tag) >= 20

        await wait_for(some_exported, 60, "the first batches to reach the EHR")
        proxy.lose = lambda _line: True  # the next transaction is applied, its answer lost ...

        async def answer_lost() -> bool:
            return proxy.lost > 0

        await wait_for(answer_lost, 30, "a transaction whose answer is lost")
        await proxy.stop()  # ... and then the EHR is gone altogether
        at_outage = await count_tagged(hapi, run_tag)
        await asyncio.sleep(1.0)  # the export retries with backoff while events keep being stored
        assert await count_tagged(hapi, run_tag) == at_outage
        assert (await store.stats())["export_backlog"] > 0  # what was not accepted waits, on disk
        proxy.lose = None
        await proxy.start()
        await asyncio.wait_for(tasks[0], 60)

        async def drained() -> bool:
            stats = await store.stats()
            return stats["events"] == len(events) and stats["export_backlog"] == 0 and await redis.xlen(stream) == 0

        await wait_for(drained, 90, "the store and the export to catch up")
    finally:
        stop.set()
        tasks[0].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await proxy.stop()
        await via_proxy.client.aclose()

    ids = await tagged_ids(hapi, run_tag)
    assert Counter(ids).most_common(1)[0][1] == 1, "an event reached the EHR twice"
    assert set(ids) == {e["id"] for e in events}, "an event never reached the EHR"
    page = await store.page("pt-0001", count=500)
    assert {e["id"] for e in events} <= {e["id"] for e in page.events}
    assert (await store.stats())["export_refused"] == 0


# -- a running gateway with its store, Redis killed mid-load ------------------------------------------------


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with redis_process(tmp_path_factory, "store-redis") as server:
        yield server


@pytest.fixture
def store_gateway(ehr_base_url: str, own_redis: RedisProcess, tmp_path: Path) -> Iterator[GatewayServer]:
    server = start_gateway_process(tmp_path, {
        "PORTAL_FHIR_BASE_URL": ehr_base_url, "PORTAL_REDIS_URL": own_redis.url, "PORTAL_CACHE_ENABLED": "false",
        "PORTAL_AUDIT_STREAM": f"audit:it-store:{uuid.uuid4().hex[:10]}", "PORTAL_AUDIT_REPOSITORY": "off",
        "PORTAL_AUDIT_REPLAY_INTERVAL": "0.3", "PORTAL_AUDIT_EXPORT_INTERVAL": "0.2"})
    try:
        yield server
    finally:
        server.started.stop()


async def test_gateway_with_its_store_survives_a_redis_kill_mid_load(
    store_gateway: GatewayServer, own_redis: RedisServer
) -> None:
    gw = store_gateway
    token = mint(gw, PATIENT_SCOPES, patient=PT)
    sent: list[tuple[str, int]] = []
    counter = itertools.count()
    run = uuid.uuid4().hex[:8]

    async def worker(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        for seq in itertools.count():
            if stop.is_set():
                return
            rid = f"store-{run}-{next(counter)}"
            if seq % 2 == 0:
                r = await client.get(f"/fhir/Patient/{PT}", headers={**auth(token), "X-Request-Id": rid})
            else:  # refused token requests are audited too, and need no Redis before their event
                r = await client.post("/auth/token", data={"client_id": "it-app"}, headers={"X-Request-Id": rid})
            sent.append((rid, r.status_code))

    async def load(client: httpx.AsyncClient, seconds: float) -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(worker(client, stop)) for _ in range(6)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)

    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as client:
        running = asyncio.create_task(load(client, 6.0))
        await asyncio.sleep(2.0)
        await asyncio.to_thread(own_redis.kill)  # Redis dies under load ...
        await asyncio.sleep(1.5)
        await asyncio.to_thread(own_redis.start)  # ... and comes back while the load goes on
        await running
        await load(client, 1.0)

    # Every request leaves exactly one event, the refused ones too: a 503 (revocation status unknown while
    # Redis is down) is recorded, through the spool, as a failure (outcome 8), never as an access.
    every = {rid for rid, _status in sent}
    refused = {rid for rid, status in sent if status == 503}
    assert len(every) - len(refused) > 50

    redis = fast_redis(own_redis.url)
    try:
        async def in_store() -> bool:
            spool = gw.state_dir / "audit-spool.jsonl"
            spooled = spool.exists() and spool.stat().st_size > 0
            return not spooled and await redis.xlen(gw.env["PORTAL_AUDIT_STREAM"]) == 0 and len(
                await asyncio.to_thread(stored_events, gw.state_dir)) >= len(every)

        await wait_for(in_store, 60, "the spool and the stream to drain into the store")
    finally:
        await redis.aclose()
    events = await asyncio.to_thread(stored_events, gw.state_dir)
    counts = Counter(request_id_of(e) for e in events)
    assert not [rid for rid in every if counts[rid] != 1], "a request lost its event or got two"
    outcome = {request_id_of(e): e["outcome"] for e in events}
    assert {outcome[rid] for rid in refused} <= {"8"}, "a refused (503) request was recorded as an access"
    print(f"\n{len(every)} requests ({len(refused)} refused while Redis was down), each stored once; "
          f"store rows: {sum(counts.values())}")
    assert set(counts) == every  # nothing else in the store
