"""Robustness against the real EHR (uvicorn in its own process, real HAPI, private Redis): repeated and
racing idempotent writes are audited and keep no message text in Redis, bad input is a clean 4xx, the
EHR's own 4xx reaches the caller cleaned, booking leaks nothing about other records, and $summary is the
patient's own document or a clean 501. Every request here is checked for exactly one audit event."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import GatewayServer, RedisServer, start_gateway_process
from tests.integration.audit.conftest import redis_process, request_id_of

from .helpers import auth, ehr_search, first_id, mint

pytestmark = pytest.mark.integration

OWNER, OTHER = "pt-0005", "pt-0006"
SCOPES = "launch/patient openid fhirUser patient/*.cruds"


@pytest.fixture(scope="module")
def state_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Its own Redis: a gateway registers the portal's client at start-up, which must not touch the
    session gateway's."""
    with redis_process(tmp_path_factory, "robust-redis") as server:
        yield server


@pytest.fixture(scope="module")
def audited(ehr_base_url: str, state_redis: RedisServer,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayServer, str]]:
    """A gateway whose audit stream is kept (no export), so each request's events can be counted."""
    stream = f"audit:it-robust:{uuid.uuid4().hex[:10]}"
    server = start_gateway_process(Path(tmp_path_factory.mktemp("robust-gw")), {
        "PORTAL_FHIR_BASE_URL": ehr_base_url, "PORTAL_REDIS_URL": state_redis.url, "PORTAL_AUDIT_STREAM": stream,
        "PORTAL_AUDIT_EXPORT": "false", "PORTAL_CACHE_ENABLED": "false"})
    try:
        yield server, stream
    finally:
        server.started.stop()


async def events_of(redis_url: str, stream: str, request_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The audit events of these requests, by request id (the event is durable before the answer leaves)."""
    client = aioredis.from_url(redis_url)
    try:
        entries = await client.xrange(stream)
    finally:
        await client.aclose()
    found: dict[str, list[dict[str, Any]]] = {rid: [] for rid in request_ids}
    for _sid, fields in entries:
        event = json.loads(fields[b"event"])
        if (rid := request_id_of(event)) in found:
            found[rid].append(event)
    return found


def summary_of(event: dict[str, Any]) -> tuple[str, str]:
    return event["subtype"][0]["code"], event["outcome"]


class Client:
    """Requests with their own X-Request-Id, remembered so their audit events can be looked up."""

    def __init__(self, gw: GatewayServer, token: str) -> None:
        self.http = httpx.AsyncClient(base_url=gw.fhir, headers=auth(token), timeout=60)
        self.sent: list[str] = []

    async def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        request_id = f"rb-{uuid.uuid4().hex[:12]}"
        self.sent.append(request_id)
        headers = {"X-Request-Id": request_id, **kw.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kw)


@pytest.fixture
async def owner(audited: tuple[GatewayServer, str]) -> AsyncIterator[Client]:
    client = Client(audited[0], mint(audited[0], SCOPES, patient=OWNER))
    yield client
    await client.http.aclose()


async def assert_one_event_each(audited: tuple[GatewayServer, str], state_redis: RedisServer,
                                client: Client) -> dict[str, dict[str, Any]]:
    found = await events_of(state_redis.url, audited[1], client.sent)
    assert {rid: len(events) for rid, events in found.items()} == dict.fromkeys(client.sent, 1)
    return {rid: events[0] for rid, events in found.items()}


def message(gp: str, text: str) -> dict[str, Any]:
    return {"resourceType": "Communication", "status": "completed", "recipient": [{"reference": gp}],
            "payload": [{"contentString": text}]}


async def test_repeated_and_racing_idempotent_writes_are_audited_and_keep_no_text(
    audited: tuple[GatewayServer, str], state_redis: RedisServer, owner: Client, ehr_base_url: str
) -> None:
    gp = httpx.get(f"{ehr_base_url}/Patient/{OWNER}", timeout=30).json()["generalPractitioner"][0]["reference"]
    text = f"Question {uuid.uuid4().hex}: may I take ibuprofen?"
    before = len(ehr_search(ehr_base_url, "Communication", {"subject": f"Patient/{OWNER}"}))
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await owner("POST", "/Communication", json=message(gp, text), headers=key)
    again = await owner("POST", "/Communication", json=message(gp, text), headers=key)
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json(), again.headers["location"]) == (201, first.json(),
                                                                             first.headers["location"])
    racing_key = {"Idempotency-Key": uuid.uuid4().hex}
    racers = await asyncio.gather(*(owner("POST", "/Communication", json=message(gp, text + " (2)"),
                                          headers=racing_key) for _ in range(4)))
    assert Counter(r.status_code for r in racers).keys() <= {201, 409} and 201 in [r.status_code for r in racers]
    assert len({r.json()["id"] for r in racers if r.status_code == 201}) == 1
    after = ehr_search(ehr_base_url, "Communication", {"subject": f"Patient/{OWNER}"})
    assert len(after) == before + 2  # one message per key, however often it was sent

    events = await assert_one_event_each(audited, state_redis, owner)
    assert summary_of(events[first.request.headers["x-request-id"]]) == ("create", "0")
    # the repeat re-read what the first request wrote: to the audit trail it is a read of that version
    repeat = events[again.request.headers["x-request-id"]]
    assert summary_of(repeat) == ("vread", "0")
    assert f"Communication/{first.json()['id']}" in {e["what"].get("reference") for e in repeat["entity"]}
    outcomes = Counter(summary_of(events[r.request.headers["x-request-id"]]) for r in racers)
    assert outcomes[("create", "4")] == sum(r.status_code == 409 for r in racers)

    client = aioredis.from_url(state_redis.url)
    try:
        stored = [await client.get(k) async for k in client.scan_iter(match="idem:*")]
    finally:
        await client.aclose()
    assert stored and not [v for v in stored if v and (b"ibuprofen" in v or b"payload" in v)]


async def test_bad_input_is_a_clean_4xx_with_its_event(audited: tuple[GatewayServer, str],
                                                       state_redis: RedisServer, owner: Client) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    headers = {"Content-Type": "application/fhir+json"}
    answers = [
        (await owner("POST", "/Communication", content=nested, headers=headers), 400),
        (await owner("PUT", f"/Patient/{OWNER}", content=nested, headers=headers), 400),
        (await owner("POST", "/Communication", json={"resourceType": "Communication", "status": "completed",
                                                     "inResponseTo": "Communication/x"}), 422),
        (await owner("GET", "/Patient/%00"), 400),
        (await owner("GET", "/Observation/a%1Fb"), 400),
        (await owner("GET", "/Observation/a%0Ab/_history"), 400),
        (await owner("POST", "/Observation/_search", content=b"code=" + b"x" * 2_000_000,
                     headers={"Content-Type": "application/x-www-form-urlencoded"}), 413),
    ]
    started = time.monotonic()
    answers.append((await owner("GET", "/Observation", params=[("code", str(n)) for n in range(200)]), 400))
    assert time.monotonic() - started < 5, "an oversized search must be refused before the EHR is asked"
    for response, status in answers:
        assert response.status_code == status, response.text
        assert response.json()["resourceType"] == "OperationOutcome"
    events = await assert_one_event_each(audited, state_redis, owner)
    assert {e["outcome"] for e in events.values()} == {"4"}


async def test_the_ehrs_own_4xx_reaches_the_caller_cleaned(audited: tuple[GatewayServer, str],
                                                           state_redis: RedisServer, owner: Client) -> None:
    for params in ({"date": "notadate"}, {"_sort": "nonsense"}):
        r = await owner("GET", "/Observation", params=params)
        assert r.status_code == 400, r.text
        diagnostics = r.json()["issue"][0]["diagnostics"]
        assert diagnostics and "HAPI-" not in diagnostics and "127.0.0.1" not in r.text
    events = await assert_one_event_each(audited, state_redis, owner)
    assert {e["outcome"] for e in events.values()} == {"4"}


async def test_booking_a_path_into_another_record_answers_like_a_made_up_slot(
    audited: tuple[GatewayServer, str], state_redis: RedisServer, owner: Client, ehr_base_url: str
) -> None:
    theirs = first_id(ehr_base_url, "Observation", {"patient": f"Patient/{OTHER}"})

    def booking(slot: str) -> dict[str, Any]:
        return {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": slot}],
                "participant": [{"actor": {"reference": f"Patient/{OWNER}"}, "status": "accepted"}]}

    made_up = await owner("POST", "/Appointment", json=booking(f"Slot/no-such-{uuid.uuid4().hex[:8]}"))
    probe = await owner("POST", "/Appointment", json=booking(f"Slot/../Observation/{theirs}"))
    assert made_up.status_code == 422, made_up.text
    assert (probe.status_code, probe.json()) == (made_up.status_code, made_up.json())
    await assert_one_event_each(audited, state_redis, owner)


async def test_summary_is_the_patients_own_document_or_a_clean_501(
    audited: tuple[GatewayServer, str], state_redis: RedisServer, owner: Client, ehr_base_url: str
) -> None:
    metadata = httpx.get(f"{ehr_base_url}/metadata", timeout=60).json()
    patient = next(r for r in metadata["rest"][0]["resource"] if r["type"] == "Patient")
    offered = "summary" in {op["name"] for op in patient.get("operation", [])}
    own = await owner("GET", f"/Patient/{OWNER}/$summary")
    if offered:
        assert own.status_code == 200 and own.json()["type"] == "document", own.text
        subjects = {json.dumps(e["resource"].get("subject") or {}) for e in own.json()["entry"]}
        assert not [s for s in subjects if OTHER in s]
    else:
        assert own.status_code == 501, own.text
        assert own.json()["issue"][0]["code"] == "not-supported"
    other = await owner("GET", f"/Patient/{OTHER}/$summary")
    assert other.status_code == 404
    events = await assert_one_event_each(audited, state_redis, owner)
    assert summary_of(events[other.request.headers["x-request-id"]]) == ("operation", "4")
