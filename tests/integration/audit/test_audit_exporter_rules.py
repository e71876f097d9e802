"""Exporter delivery rules against a real (private) Redis, with respx as the EHR to script its answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import respx

from audit.events import rest_event
from audit.exporter import AuditExporter, ExportFailed
from fhir_gateway.upstream import Upstream, make_client

pytestmark = pytest.mark.integration

EHR = "http://ehr.test/fhir"
TX_URL = EHR + "/"


def make_event(n: int) -> dict[str, Any]:
    return rest_event(interaction="read", outcome="0", action="R", entity_refs=[],
                      patient_refs=["Patient/pt-0001"], account_ref="Patient/pt-0001", account_id="acct-1",
                      client_id="portal-web", on_behalf_of=None, source_ip="127.0.0.1", request_id=f"req-{n}",
                      query=None)


async def add(redis: aioredis.Redis, stream: str, event: dict[str, Any]) -> None:
    await redis.xadd(stream, {"id": event["id"], "event": json.dumps(event)})


def tx_response(*statuses: str) -> httpx.Response:
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response",
                                     "entry": [{"response": {"status": s}} for s in statuses]})


@pytest.fixture
async def ehr() -> Any:
    client = make_client(EHR, connect_timeout=1, read_timeout=2, max_connections=5, transport="httpx")  # for respx
    try:
        yield Upstream(client, EHR, retries=0)
    finally:
        await client.aclose()


async def pending(redis: aioredis.Redis, stream: str, group: str = "exporter") -> int:
    return int((await redis.xpending(stream, group))["pending"])


@respx.mock
async def test_batch_is_one_transaction_of_idempotent_puts(redis: aioredis.Redis, stream: str, ehr: Upstream) -> None:
    events = [make_event(i) for i in range(3)]
    for e in events:
        await add(redis, stream, e)
    route = respx.post(TX_URL).mock(return_value=tx_response("201 Created", "201 Created", "200 OK"))
    exporter = AuditExporter(redis, ehr, stream=stream, consumer="c1", batch_size=10)
    assert await exporter.export_once() == 3
    bundle = json.loads(route.calls.last.request.content)
    assert bundle["type"] == "transaction"
    assert [x["request"] for x in bundle["entry"]] == [{"method": "PUT", "url": f"AuditEvent/{e['id']}"}
                                                       for e in events]
    assert [x["resource"]["id"] for x in bundle["entry"]] == [e["id"] for e in events]
    assert await redis.xlen(stream) == 0  # acked entries are deleted
    assert await pending(redis, stream) == 0
    assert await exporter.export_once() == 0


@respx.mock
async def test_ehr_failure_acks_nothing_and_the_retry_sends_the_same_batch(redis: aioredis.Redis, stream: str,
                                                                         ehr: Upstream) -> None:
    events = [make_event(i) for i in range(4)]
    for e in events:
        await add(redis, stream, e)
    route = respx.post(TX_URL).mock(side_effect=[httpx.Response(500), httpx.ConnectError("down"),
                                                 tx_response(*["201 Created"] * 4)])
    exporter = AuditExporter(redis, ehr, stream=stream, consumer="c1", batch_size=10)
    with pytest.raises(ExportFailed):
        await exporter.export_once()
    assert await redis.xlen(stream) == 4 and await pending(redis, stream) == 4
    with pytest.raises(ExportFailed):
        await exporter.export_once()
    assert await redis.xlen(stream) == 4
    assert await exporter.export_once() == 4
    sent = json.loads(route.calls.last.request.content)
    assert [x["resource"]["id"] for x in sent["entry"]] == [e["id"] for e in events]
    assert await redis.xlen(stream) == 0


@respx.mock
async def test_only_accepted_entries_are_acked_and_a_refused_one_is_dead_lettered(
    redis: aioredis.Redis, stream: str, ehr: Upstream
) -> None:
    events = [make_event(i) for i in range(3)]
    for e in events:
        await add(redis, stream, e)
    # The EHR rejects the whole transaction because of one event; retried one by one, that one is refused.
    respx.post(TX_URL).mock(return_value=httpx.Response(
        422, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid",
                                                                  "diagnostics": "bad AuditEvent"}]}))
    respx.put(f"{EHR}/AuditEvent/{events[0]['id']}").mock(return_value=httpx.Response(201, json={}))
    respx.put(f"{EHR}/AuditEvent/{events[1]['id']}").mock(return_value=httpx.Response(
        422, json={"resourceType": "OperationOutcome", "issue": [{"diagnostics": "bad AuditEvent"}]}))
    respx.put(f"{EHR}/AuditEvent/{events[2]['id']}").mock(return_value=httpx.Response(200, json={}))
    exporter = AuditExporter(redis, ehr, stream=stream, consumer="c1", batch_size=10)
    assert await exporter.export_once() == 2
    assert await redis.xlen(stream) == 0
    dead = await redis.xrange(f"{stream}:dead")
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields[b"id"].decode() == events[1]["id"]
    assert json.loads(fields[b"event"])["id"] == events[1]["id"]  # kept whole, not lost
    assert fields[b"status"] == b"422"


@respx.mock
async def test_per_entry_status_in_transaction_response_is_checked(redis: aioredis.Redis, stream: str,
                                                                  ehr: Upstream) -> None:
    events = [make_event(i) for i in range(2)]
    for e in events:
        await add(redis, stream, e)
    respx.post(TX_URL).mock(return_value=tx_response("201 Created", "500 Internal Server Error"))
    respx.put(f"{EHR}/AuditEvent/{events[1]['id']}").mock(return_value=httpx.Response(503))
    exporter = AuditExporter(redis, ehr, stream=stream, consumer="c1", batch_size=10)
    with pytest.raises(ExportFailed):
        await exporter.export_once()
    remaining = await redis.xrange(stream)
    assert [f[b"id"].decode() for _i, f in remaining] == [events[1]["id"]]  # first acked, second still owed


@respx.mock
async def test_duplicate_stream_entries_become_one_put(redis: aioredis.Redis, stream: str, ehr: Upstream) -> None:
    event = make_event(1)
    await add(redis, stream, event)
    await add(redis, stream, event)  # e.g. a Redis reply lost after the write was applied
    route = respx.post(TX_URL).mock(return_value=tx_response("200 OK"))
    exporter = AuditExporter(redis, ehr, stream=stream, consumer="c1", batch_size=10)
    assert await exporter.export_once() == 1
    assert len(json.loads(route.calls.last.request.content)["entry"]) == 1
    assert await redis.xlen(stream) == 0


@respx.mock
async def test_entries_of_a_dead_consumer_are_taken_over(redis: aioredis.Redis, stream: str, ehr: Upstream) -> None:
    events = [make_event(i) for i in range(5)]
    for e in events:
        await add(redis, stream, e)
    respx.post(TX_URL).mock(side_effect=[httpx.Response(503), tx_response(*["201 Created"] * 5)])
    first = AuditExporter(redis, ehr, stream=stream, consumer="replica-a", batch_size=10)
    with pytest.raises(ExportFailed):
        await first.export_once()  # replica-a now owns all five, then "dies"
    second = AuditExporter(redis, ehr, stream=stream, consumer="replica-b", batch_size=10, claim_idle=0.05)
    await asyncio.sleep(0.1)
    assert await second.export_once() == 5
    assert await redis.xlen(stream) == 0 and await pending(redis, stream) == 0


@respx.mock
async def test_exporter_recovers_when_the_stream_was_deleted(redis: aioredis.Redis, stream: str,
                                                             ehr: Upstream) -> None:
    exporter = AuditExporter(redis, ehr, stream=stream, consumer="c1", batch_size=10)
    assert await exporter.export_once() == 0
    await redis.delete(stream)  # group gone with it
    await add(redis, stream, make_event(1))
    respx.post(TX_URL).mock(return_value=tx_response("201 Created"))
    assert await exporter.export_once() == 1
