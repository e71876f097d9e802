"""The audit store on PostgreSQL (for replicas on several nodes), against a real private PostgreSQL server:
the same behaviour as the SQLite store (the same tests, run here on PostgreSQL), replicas sharing it, and a
gateway process keeping its audit trail there."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from audit.postgres_store import PostgresAuditStore
from tests.conftest import GatewayServer, RedisServer, start_gateway_process
from tests.integration.gateway.helpers import auth, mint

# The store's behaviour, as the SQLite store's tests state it, run here against PostgreSQL (`store` below).
from tests.unit.audit.test_audit_store import (  # noqa: F401
    event,
    stored,
    test_a_lease_has_one_holder_until_it_expires_or_is_released,
    test_a_patient_sees_only_their_events_newest_first,
    test_an_event_delivered_twice_is_stored_and_queued_once,
    test_export_queue_oldest_first_and_refusals_kept,
    test_purge_removes_old_events_the_export_no_longer_needs,
    test_purge_works_in_chunks,
    test_time_bounds_and_more,
)
from tests.unit.audit.test_audit_store_export import (  # noqa: F401
    repository,
    test_a_refused_event_is_kept_and_the_rest_goes_on,
    test_batches_of_idempotent_puts_leave_the_queue_once_stored,
    test_one_exporter_per_store_and_a_prompt_take_over,
    test_repository_down_keeps_everything_queued,
    test_retention_purge_runs_in_one_process_at_a_time,
)

from .conftest import fresh_database, request_id_of
from .test_audit_ehr_outage import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(postgres_url: str) -> str:
    return await fresh_database(postgres_url)


@pytest.fixture
async def store(database: str) -> AsyncIterator[PostgresAuditStore]:
    s = PostgresAuditStore(database)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_replicas_sharing_the_database_store_each_event_once(database: str) -> None:
    replicas = [PostgresAuditStore(database) for _ in range(3)]
    await asyncio.gather(*(r.open() for r in replicas))  # the schema is created once, under a lock
    try:
        events = [stored(event(m / 100)) for m in range(200)]
        chunks = [events[i:i + 20] for i in range(0, 200, 20)]
        # every replica gets every event, as consumers would after take-overs, concurrently
        added = await asyncio.gather(*(r.add(chunk, export=True) for chunk in chunks for r in replicas))
        assert sum(added) == 200
        stats = await replicas[1].stats()
        assert (stats["events"], stats["export_backlog"]) == (200, 200)
        assert len((await replicas[2].page("pt-1", count=500)).events) == 200
        holders = await asyncio.gather(*(r.hold_lease("export", f"replica-{n}", 30) for n, r in enumerate(replicas)))
        assert sorted(holders) == [False, False, True]
    finally:
        await asyncio.gather(*(r.close() for r in replicas))


async def test_a_database_missing_at_start_is_used_once_it_is_there(postgres_url: str) -> None:
    from audit.store import StoreUnavailable

    name = f"late_{uuid.uuid4().hex[:8]}"
    late = PostgresAuditStore(postgres_url.rsplit("/", 1)[0] + f"/{name}", timeout=2)
    await late.open()  # the database is not there yet: the gateway still starts ...
    try:
        with pytest.raises(StoreUnavailable):
            await late.page("pt-1")  # ... and the store says it is unavailable until it is
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        await late.add([stored(event())], export=False)
        assert len((await late.page("pt-1")).events) == 1
    finally:
        await late.close()


@pytest.fixture
def pg_gateway(ehr_base_url: str, redis_server: RedisServer, database: str, tmp_path: Path
               ) -> Iterator[GatewayServer]:
    server = start_gateway_process(tmp_path, {
        "PORTAL_FHIR_BASE_URL": ehr_base_url, "PORTAL_REDIS_URL": redis_server.url, "PORTAL_CACHE_ENABLED": "false",
        "PORTAL_AUDIT_STREAM": f"audit:it-pg:{uuid.uuid4().hex[:10]}", "PORTAL_AUDIT_STORE": "postgresql",
        "PORTAL_AUDIT_STORE_URL": database, "PORTAL_AUDIT_EXPORT_INTERVAL": "0.2",
        "PORTAL_AUDIT_EXPORT_SHARE": "1"})
    try:
        yield server
    finally:
        server.started.stop()


async def test_a_gateway_keeps_its_audit_trail_in_postgresql(pg_gateway: GatewayServer, database: str) -> None:
    gw = pg_gateway
    token = mint(gw, "launch/patient openid fhirUser patient/*.rs", patient="pt-0001")
    rids = [f"pg-{uuid.uuid4().hex[:8]}-{n}" for n in range(5)]
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as client:
        for rid in rids:
            r = await client.get("/fhir/Patient/pt-0001", headers={**auth(token), "X-Request-Id": rid})
            assert r.status_code == 200
        conn = await asyncpg.connect(database)
        try:
            async def stored_and_exported() -> bool:
                ids = [request_id_of(json.loads(_inflate(row[0]))) for row in await conn.fetch(
                    "SELECT body FROM audit_event")]
                return set(rids) <= set(ids) and await conn.fetchval("SELECT count(*) FROM export_queue") == 0

            await wait_for(stored_and_exported, 60, "the gateway's events stored and exported")
            bodies = [json.loads(_inflate(row[0])) for row in await conn.fetch("SELECT body FROM audit_event")]
        finally:
            await conn.close()
        assert sorted(r for r in map(request_id_of, bodies) if r in rids) == sorted(rids)  # once each
        log = (await client.get("/portal/api/access-log", headers=auth(token))).json()
    by_id = {e["id"]: e for e in bodies}
    shown = [e for e in log["entries"] if request_id_of(by_id.get(e["id"], {})) in rids]
    assert len(shown) == 5 and all(e["who"] == "You" and e["what"] == "viewed your personal details" for e in shown)


def _inflate(blob: bytes) -> str:
    from audit.store import decode_payload

    return decode_payload(blob)
