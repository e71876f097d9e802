"""Faults in the middle of requests, for every kind of interaction: the EHR cut off while it answers, and the
state Redis killed while requests are in flight. Whatever happens, each request leaves exactly one audit
event (or is refused with 503 because the audit trail is unavailable; never answered unaudited).

The gateway runs as users run it (uvicorn in its own process) with the export off, so its stream keeps
every event; "the EHR" is a loopback proxy in front of the shared HAPI server, which is never touched.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayServer, start_gateway_process
from tests.integration.gateway.helpers import auth, mint
from tests.tcp_proxy import FaultyProxy

from .conftest import RedisProcess, fast_redis, redis_process, request_id_of

pytestmark = pytest.mark.integration

PT = "pt-0008"
SCOPES = "launch/patient openid fhirUser patient/*.cruds"
AUDIT_UNAVAILABLE = "audit trail is unavailable"


@pytest.fixture
async def faulty_ehr(hapi: str) -> AsyncIterator[FaultyProxy]:
    async with FaultyProxy.in_front_of(hapi) as proxy:
        yield proxy


@pytest.fixture
def state_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with redis_process(tmp_path_factory, "fault-redis") as server:
        yield server


@pytest.fixture
def fault_gateway(faulty_ehr: FaultyProxy, state_redis: RedisProcess,
                  tmp_path: Path) -> Iterator[tuple[GatewayServer, str]]:
    stream = "audit:it-faults"
    server = start_gateway_process(tmp_path, {
        "PORTAL_FHIR_BASE_URL": faulty_ehr.base_url, "PORTAL_REDIS_URL": state_redis.url,
        "PORTAL_AUDIT_STREAM": stream, "PORTAL_AUDIT_EXPORT": "false", "PORTAL_CACHE_ENABLED": "false",
        "PORTAL_UPSTREAM_RETRIES": "0", "PORTAL_AUDIT_REPLAY_INTERVAL": "0.3"})
    try:
        yield server, stream
    finally:
        server.started.stop()


Send = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


@dataclass
class Sent:
    kind: str
    request_id: str
    status: int
    body: str


async def prepare(c: httpx.AsyncClient) -> dict[str, Send]:
    """One request of every interaction type, each ready to send again (set up while nothing fails)."""
    patient = (await c.get(f"/Patient/{PT}")).json()
    gp = patient["generalPractitioner"][0]["reference"]
    first = await c.get("/Observation", params={"patient": f"Patient/{PT}", "_count": "1"})
    next_link = next(link["url"] for link in first.json()["link"] if link["relation"] == "next")
    key = uuid.uuid4().hex

    def msg() -> dict[str, Any]:
        return {"resourceType": "Communication", "status": "completed", "recipient": [{"reference": gp}],
                "payload": [{"contentString": f"fault test {uuid.uuid4().hex[:8]}"}]}

    replayed = msg()
    assert (await c.post("/Communication", json=replayed, headers={"Idempotency-Key": key})).status_code == 201

    def get(path: str, **params: str) -> Send:
        return lambda client, rid: client.get(path, params=params, headers={"X-Request-Id": rid})

    def update(client: httpx.AsyncClient, rid: str) -> Awaitable[httpx.Response]:
        # No If-Match: the write rules base the change on the record as it is then.
        changed = {**patient, "telecom": [{"system": "phone", "value": f"555-{uuid.uuid4().int % 10000:04d}"}]}
        return client.put(f"/Patient/{PT}", json=changed, headers={"X-Request-Id": rid})

    return {
        "read": get(f"/Patient/{PT}"),
        "vread": get(f"/Patient/{PT}/_history/{patient['meta']['versionId']}"),
        "search": get("/Observation", patient=f"Patient/{PT}", _count="3"),
        "page": lambda client, rid: client.get(next_link, headers={"X-Request-Id": rid}),
        "history": get(f"/Patient/{PT}/_history", _count="3"),
        "everything": get(f"/Patient/{PT}/$everything", _count="5"),
        "create": lambda client, rid: client.post("/Communication", json=msg(), headers={"X-Request-Id": rid}),
        "update": update,
        "replayed write": lambda client, rid: client.post("/Communication", json=replayed, headers={
            "X-Request-Id": rid, "Idempotency-Key": key}),
    }


async def send_all(c: httpx.AsyncClient, requests: dict[str, Send], phase: str) -> list[Sent]:
    async def one(kind: str, send: Send) -> Sent:
        rid = f"{phase}-{kind.replace(' ', '-')}-{uuid.uuid4().hex[:8]}"
        response = await send(c, rid)
        return Sent(kind, rid, response.status_code, response.text)

    return list(await asyncio.gather(*(one(kind, send) for kind, send in requests.items())))


async def events_by_request(redis_url: str, stream: str) -> dict[str, list[dict[str, Any]]]:
    redis = fast_redis(redis_url)
    try:
        entries = await redis.xrange(stream)
    finally:
        await redis.aclose()
    found: dict[str, list[dict[str, Any]]] = {}
    for _sid, fields in entries:
        event = json.loads(fields[b"event"])
        found.setdefault(request_id_of(event) or "", []).append(event)
    return found


def spool_empty(state_dir: Path) -> bool:
    return not any((state_dir / name).exists() and (state_dir / name).stat().st_size
                   for name in ("audit-spool.jsonl", "audit-spool.jsonl.replaying"))


def assert_one_event_per_request(sent: list[Sent], events: dict[str, list[dict[str, Any]]]) -> None:
    for s in sent:
        recorded = events.get(s.request_id, [])
        if s.status == 503 and AUDIT_UNAVAILABLE in s.body:
            assert recorded == [], (s.kind, "refused for want of an audit trail, yet recorded")
            continue
        assert len(recorded) == 1, (s.kind, s.status, len(recorded))
        expected = "0" if s.status < 400 else ("4" if s.status < 500 else "8")
        assert recorded[0]["outcome"] == expected, (s.kind, s.status, recorded[0]["outcome"])


async def test_every_interaction_keeps_one_event_through_ehr_and_redis_failures(
    fault_gateway: tuple[GatewayServer, str], faulty_ehr: FaultyProxy, state_redis: RedisProcess
) -> None:
    gw, stream = fault_gateway
    token = mint(gw, SCOPES, patient=PT)
    async with httpx.AsyncClient(base_url=gw.fhir, headers=auth(token), timeout=60) as c:
        requests = await prepare(c)
        assert len(requests) == 9

        # 1. The EHR cut off while it answers: reads lose every answer; writes lose the answer to the
        #    write itself (the EHR may have done it, the gateway cannot know).
        writes = {"create", "update"}
        faulty_ehr.lose = lambda line: True
        cut_reads = await send_all(c, {k: v for k, v in requests.items() if k not in writes}, "cut")
        faulty_ehr.lose = lambda line: line.startswith((b"POST", b"PUT"))
        cut_writes = await send_all(c, {k: v for k, v in requests.items() if k in writes}, "cut")
        faulty_ehr.lose = None
        print("EHR cut mid-request:", sorted((s.kind, s.status) for s in cut_reads + cut_writes))
        assert {s.status for s in cut_reads + cut_writes} <= {502, 503, 504}, [(s.kind, s.status) for s in
                                                                                cut_reads + cut_writes]

        # 2. The state Redis killed while every kind of request waits for the EHR's (slow) answer.
        faulty_ehr.answer_delay = 0.8
        in_flight = asyncio.ensure_future(send_all(c, requests, "redis"))
        await asyncio.sleep(0.4)
        await asyncio.to_thread(state_redis.kill)
        during = await in_flight
        faulty_ehr.answer_delay = 0.0
    assert {s.status for s in during} <= {200, 201, 503}, [(s.kind, s.status, s.body[:120]) for s in during]
    assert [s for s in during if s.status < 300], "answers go on through a Redis outage (the spool takes them)"

    await asyncio.to_thread(state_redis.start)
    deadline = time.monotonic() + 30
    while not spool_empty(gw.state_dir) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert spool_empty(gw.state_dir), "the spool was not replayed after Redis came back"
    events = await events_by_request(state_redis.url, stream)
    assert_one_event_per_request(cut_reads + cut_writes + during, events)
    print("redis killed mid-request:", sorted((s.kind, s.status) for s in during))
