"""The audit trail of the running gateway (uvicorn in its own process, real HAPI, private Redis): one
AuditEvent per request under concurrent load, and nothing lost or doubled when Redis dies mid-run.

Each gateway here runs with the export to the EHR switched off, so its Redis stream keeps every event and
the test can count them; the export itself is tested in test_audit_export_hapi.py and
test_audit_ehr_outage.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import GatewayServer, RedisServer, start_gateway_process
from tests.integration.gateway.helpers import auth, mint

from .conftest import RedisProcess, fast_redis, redis_process, request_id_of

pytestmark = pytest.mark.integration

PT, OTHER = "pt-0001", "pt-0002"
PATIENT_SCOPES = "launch/patient openid fhirUser patient/*.rs"


async def stream_events(redis: aioredis.Redis, stream: str) -> list[dict[str, Any]]:
    return [json.loads(fields[b"event"]) for _sid, fields in await redis.xrange(stream)]


def gateway_env(redis_url: str, ehr: str, stream: str, **extra: str) -> dict[str, str]:
    return {"PORTAL_FHIR_BASE_URL": ehr, "PORTAL_REDIS_URL": redis_url, "PORTAL_AUDIT_STREAM": stream,
            "PORTAL_AUDIT_EXPORT": "false", **extra}


@pytest.fixture
def load_gateway(ehr_base_url: str, redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[GatewayServer, str]]:
    stream = f"audit:it-load:{uuid.uuid4().hex[:10]}"
    server = start_gateway_process(tmp_path, gateway_env(
        redis_server.url, ehr_base_url, stream,
        # The response cache on (own database of the private Redis): cache hits must be audited too.
        PORTAL_CACHE_REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/5"))
    try:
        yield server, stream
    finally:
        server.started.stop()


async def test_sixty_concurrent_requests_give_sixty_events_one_each(
    load_gateway: tuple[GatewayServer, str], redis_server: RedisServer
) -> None:
    gw, stream = load_gateway
    own = mint(gw, PATIENT_SCOPES, patient=PT)
    staff = mint(gw, "openid fhirUser user/*.rs", fhir_user="Practitioner/prac-01")
    # (token, path, params, expected status, expected outcome code in the event)
    kinds: list[tuple[str, str, dict[str, str], int, str]] = [
        (own, f"/Patient/{PT}", {}, 200, "0"),  # read (repeated: cache hits after the first)
        (own, "/Observation", {"category": "laboratory", "_count": "5"}, 200, "0"),  # search
        (own, f"/Patient/{OTHER}", {}, 404, "4"),  # another patient's record: refused as unknown
        (own, "/Observation", {"_has:Observation:patient:code": "x"}, 403, "4"),  # refused search
        (staff, "/Condition", {"patient": f"Patient/{PT}", "_count": "3"}, 200, "0"),  # staff search
    ]
    run = uuid.uuid4().hex[:8]
    plan = [(f"load-{run}-{n}", *kinds[n % len(kinds)]) for n in range(60)]

    async with httpx.AsyncClient(base_url=gw.fhir, timeout=120,
                                 limits=httpx.Limits(max_connections=60)) as client:
        async def one(rid: str, token: str, path: str, params: dict[str, str]) -> httpx.Response:
            return await client.get(path, params=params, headers={**auth(token), "X-Request-Id": rid})

        responses = await asyncio.gather(*(one(rid, tok, path, params) for rid, tok, path, params, _s, _o in plan))

    for (rid, _tok, path, _params, status, _outcome), response in zip(plan, responses, strict=True):
        assert response.status_code == status, (path, response.text)
        assert response.headers["x-request-id"] == rid
    redis = fast_redis(redis_server.url)
    try:
        events = await stream_events(redis, stream)
    finally:
        await redis.aclose()
    # The event is durable before the response leaves: no waiting needed.
    by_request = Counter(request_id_of(e) for e in events)
    assert by_request == Counter({rid: 1 for rid, *_ in plan}), "missing or duplicated audit events"
    assert len(events) == 60
    expected = {rid: (path, outcome) for rid, _tok, path, _params, _status, outcome in plan}
    for event in events:
        path, outcome = expected[request_id_of(event)]
        assert event["outcome"] == outcome, (path, event)
        patients = {e["what"].get("reference") for e in event["entity"] if e.get("role", {}).get("code") == "1"}
        if outcome == "0":
            assert patients == {f"Patient/{PT}"}, (path, event)  # whose data was touched
        else:
            # a refused attempt names what was asked for only logically: it is nobody's record access
            assert patients == set(), (path, event)


# -- Redis killed mid-run ------------------------------------------------------------------------------------


@dataclass
class Sent:
    rid: str
    kind: str  # "fhir" or "auth"
    worker: int
    seq: int
    status: int
    body: str
    started: float = 0.0  # time.monotonic() when it was sent


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with redis_process(tmp_path_factory, "gw-redis") as server:
        yield server


@pytest.fixture
def crash_gateway(ehr_base_url: str, own_redis: RedisProcess, tmp_path: Path) -> Iterator[tuple[GatewayServer, str]]:
    stream = "audit:it-crash"
    server = start_gateway_process(tmp_path, gateway_env(
        own_redis.url, ehr_base_url, stream, PORTAL_CACHE_ENABLED="false", PORTAL_AUDIT_REPLAY_INTERVAL="0.3"))
    try:
        yield server, stream
    finally:
        server.started.stop()


def spooled_ids(state_dir: Path) -> list[str]:
    """Event ids waiting in the gateway's spool, oldest first (a half-done replay comes first)."""
    ids = []
    for name in ("audit-spool.jsonl.replaying", "audit-spool.jsonl"):
        path = state_dir / name
        if path.exists():
            ids += [json.loads(line)["event"]["id"] for line in path.read_text().splitlines() if line.strip()]
    return ids


async def settled_spool(state_dir: Path) -> list[str]:
    """The spool read twice alike (the replayer may be renaming it to `.replaying` right now)."""
    last = spooled_ids(state_dir)
    for _ in range(50):
        await asyncio.sleep(0.1)
        now = spooled_ids(state_dir)
        if now == last:
            return now
        last = now
    raise AssertionError("the spool kept changing with no requests coming in")


def spool_pending(state_dir: Path) -> bool:
    return any((state_dir / name).exists() and (state_dir / name).stat().st_size
               for name in ("audit-spool.jsonl.replaying", "audit-spool.jsonl"))


async def test_redis_killed_mid_run_then_restarted_loses_and_doubles_nothing(
    crash_gateway: tuple[GatewayServer, str], own_redis: RedisProcess
) -> None:
    gw, stream = crash_gateway
    token = mint(gw, PATIENT_SCOPES, patient=PT)
    sent: list[Sent] = []
    counter = itertools.count()
    run = uuid.uuid4().hex[:8]

    async def worker(client: httpx.AsyncClient, w: int, stop: asyncio.Event) -> None:
        for seq in itertools.count():
            if stop.is_set():
                return
            rid = f"crash-{run}-{next(counter)}"
            started = time.monotonic()
            if seq % 2 == 0:
                kind = "fhir"
                r = await client.get(f"/fhir/Patient/{PT}", headers={**auth(token), "X-Request-Id": rid})
            else:
                # A token request without grant_type: refused with 400, and the refusal is an auth event.
                # It needs no Redis before it is audited, so it keeps being answered while Redis is down.
                kind = "auth"
                r = await client.post("/auth/token", data={"client_id": "it-app"}, headers={"X-Request-Id": rid})
            sent.append(Sent(rid, kind, w, seq, r.status_code, r.text, started))

    async def load_until(client: httpx.AsyncClient, first_worker: int, done: Any, timeout: float = 60) -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(worker(client, w, stop)) for w in range(first_worker, first_worker + 6)]
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.gather(*tasks)
        assert done(), "the load phase did not reach its goal in time"

    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as client:
        # 1. Redis up; Redis is killed while requests are in flight
        await load_until(client, 0, lambda: len(sent) >= 40)
        killed_at = len(sent)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(worker(client, w, stop)) for w in range(6, 12)]
        await asyncio.sleep(0.2)
        await asyncio.to_thread(own_redis.kill)
        # 2. Redis down: keep going until enough auth refusals were answered (and audited via the spool)
        await asyncio.sleep(0.5)
        # Requests sent from here on: a request sent before may have passed its revocation check before the
        # kill and still be answered 200 (its event in the spool) after this point.
        down_since = time.monotonic()
        deadline = time.monotonic() + 60
        while sum(1 for s in sent if s.started >= down_since and s.kind == "auth") < 10 \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
        during_outage = [s for s in sent if s.started >= down_since]
        snapshot = await settled_spool(gw.state_dir)
        # 3. Redis back: the load goes on while the replayer drains the spool
        restart_ms = time.time_ns() // 1_000_000
        await asyncio.to_thread(own_redis.start)
        restarted_at = len(sent)
        await load_until(client, 12, lambda: len(sent) >= restarted_at + 40)

    deadline = time.monotonic() + 30
    while spool_pending(gw.state_dir) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not spool_pending(gw.state_dir), "the spool was not replayed after Redis came back"

    # What the user saw while Redis was down: data requests refused (the revocation list cannot be checked:
    # fail closed), refused token requests still answered.
    assert {s.status for s in during_outage if s.kind == "fhir"} == {503}
    assert all("revocation" in s.body for s in during_outage if s.kind == "fhir")
    assert {s.status for s in during_outage if s.kind == "auth"} == {400}
    assert {s.status for s in sent[:killed_at]} <= {200, 400}
    assert {s.status for s in sent} <= {200, 400, 503}
    # A 503 only ever means "revocation status unknown", never "audit trail unavailable": the spool took over.
    assert all(s.kind == "fhir" and "revocation" in s.body for s in sent if s.status == 503)
    # Right after the restart, a pooled Redis connection that died with the server fails once more (the
    # gateway's Redis client does not retry it), which costs that one request a 503; then all is well again.
    assert {s.status for s in sent[-20:]} <= {200, 400}
    assert len(snapshot) >= 10, "answered requests during the outage must be in the spool"

    redis = fast_redis(own_redis.url)
    try:
        entries = await redis.xrange(stream)
    finally:
        await redis.aclose()
    events = [json.loads(fields[b"event"]) for _sid, fields in entries]
    counts = Counter(request_id_of(e) for e in events)
    # Every request left exactly one event, the refused ones too: a 503 (revocation status unknown) is
    # recorded, through the spool, as a failure (outcome 8) and never as an access.
    assert not [s.rid for s in sent if counts[s.rid] != 1], "a request lost its event or got two"
    outcome = {request_id_of(e): e["outcome"] for e in events}
    assert {outcome[s.rid] for s in sent if s.status == 503} <= {"8"}
    assert len(events) == len(sent)  # nothing else, nothing twice
    assert len({e["id"] for e in events}) == len(events)

    # A write in flight when Redis died may have landed although the gateway saw an error and spooled the
    # event: it stays where Redis put it (before the crash) and the replay must not add it again.
    position = {e["id"]: n for n, e in enumerate(events)}
    added_ms = {e["id"]: int(sid.decode().split("-")[0]) for e, (sid, _f) in zip(events, entries, strict=True)}
    landed_before_crash = [i for i in snapshot if added_ms[i] < restart_ms]
    replayed = [i for i in snapshot if added_ms[i] >= restart_ms]
    print(f"spooled {len(snapshot)}, of which {len(landed_before_crash)} had reached Redis before the crash")
    assert len(landed_before_crash) <= 12  # at most the requests in flight at the crash (12 clients)
    # The replayed events reached the stream in the order they were spooled ...
    assert [position[i] for i in replayed] == sorted(position[i] for i in replayed)
    snapshot = replayed
    # ... which is each client's own order of requests
    rid_of_event = {e["id"]: request_id_of(e) for e in events}
    seq_of = {s.rid: (s.worker, s.seq) for s in sent}
    for w in {s.worker for s in sent}:
        mine = [seq_of[rid_of_event[i]][1] for i in snapshot if seq_of[rid_of_event[i]][0] == w]
        assert mine == sorted(mine)
    # every auth refusal answered during the outage is among them
    assert {s.rid for s in during_outage if s.kind == "auth"} <= {rid_of_event[i] for i in snapshot}
