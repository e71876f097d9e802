"""The response cache as a user of the gateway sees it: real uvicorn processes, real HAPI, real Redis.

What must hold: one compartment's or one scope set's answer never reaches another; a write through the
gateway is visible at once; a change made straight in the EHR within the staleness bound (5 s);
If-None-Match answers 304 from the cache; a rotated key turns old entries into misses, never errors;
a dead cache Redis costs nothing and heals by itself; a dead EHR leaves kept answers servable, marked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from devstack.procs import free_port
from tests.conftest import GatewayServer, RedisServer, start_gateway_process
from tests.integration.audit.conftest import request_id_of
from tests.integration.gateway.helpers import auth, mint
from tests.tcp_proxy import TcpProxy

from .conftest import cache_redis

pytestmark = pytest.mark.integration

A, B, WRITER = "pt-0010", "pt-0011", "pt-0012"
READ_ALL = "launch/patient patient/*.rs"
LABS = "/Observation?category=laboratory&_sort=-date&_count=7"
STALENESS_BOUND = 5.0


async def feed_ready(gw: GatewayServer, timeout: float = 30) -> None:
    """Wait for the change feed's first round: it drops everything cached before it (no cursor yet)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=10) as c:
        while time.monotonic() < deadline:
            body = (await c.get(gw.url + "/readyz")).json()
            if (body.get("change_feed") or {}).get("seconds_since_success") is not None:
                return
            await asyncio.sleep(0.2)
    raise AssertionError("the change feed never completed a round")


async def until_hit(c: httpx.AsyncClient, path: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await c.get(path)).headers["x-cache"] == "HIT":
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} was never answered from the cache")


def subjects(bundle: dict) -> set[str]:
    return {e["resource"].get("subject", {}).get("reference", "") for e in bundle.get("entry", [])}


def own_gateway(state: Path, env: dict[str, str]) -> GatewayServer:
    state.mkdir(parents=True, exist_ok=True)
    return start_gateway_process(state, {"LOG_LEVEL": "warning", **env})


# -- the session gateway (cache on its own Redis database) ---------------------------------------------
async def test_same_query_for_two_patients_never_shares_an_entry(gateway: GatewayServer) -> None:
    await feed_ready(gateway)
    ta, tb = mint(gateway, READ_ALL, patient=A), mint(gateway, READ_ALL, patient=B)
    async with httpx.AsyncClient(base_url=gateway.fhir, timeout=60) as c:
        a1 = await c.get(LABS, headers=auth(ta))
        b1 = await c.get(LABS, headers=auth(tb))
        a2 = await c.get(LABS, headers=auth(ta))
        b2 = await c.get(LABS, headers=auth(tb))
    assert [r.status_code for r in (a1, b1, a2, b2)] == [200] * 4
    assert (a1.headers["x-cache"], b1.headers["x-cache"]) == ("MISS", "MISS")
    assert (a2.headers["x-cache"], b2.headers["x-cache"]) == ("HIT", "HIT")
    assert a1.json()["entry"] and b1.json()["entry"], "fixture patients have lab results"
    assert subjects(a2.json()) == {f"Patient/{A}"} and subjects(b2.json()) == {f"Patient/{B}"}
    assert a2.content == a1.content and b2.content == b1.content
    assert B not in a2.text and A not in b2.text


async def test_narrower_scopes_do_not_share_entries(gateway: GatewayServer) -> None:
    await feed_ready(gateway)
    query = "/Observation?category=vital-signs&_count=5"
    broad = mint(gateway, READ_ALL, patient=A)
    labs_only = mint(gateway, "launch/patient patient/Observation.rs?category=laboratory", patient=A)
    async with httpx.AsyncClient(base_url=gateway.fhir, timeout=60) as c:
        await c.get(query, headers=auth(broad))
        warm = await c.get(query, headers=auth(broad))
        narrow = await c.get(query, headers=auth(labs_only))
    assert warm.headers["x-cache"] == "HIT" and warm.json()["entry"], "patient has vital signs"
    assert narrow.status_code == 200 and narrow.headers["x-cache"] == "MISS"
    assert not narrow.json().get("entry"), "a labs-only token must not see vital signs, cached or not"


async def test_if_none_match_is_answered_304_from_the_cache(gateway: GatewayServer) -> None:
    await feed_ready(gateway)
    token = mint(gateway, READ_ALL, patient=A)
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        first = await c.get(f"/Patient/{A}")
        etag = first.headers["etag"]
        second = await c.get(f"/Patient/{A}")
        not_modified = await c.get(f"/Patient/{A}", headers={"If-None-Match": etag})
        other = await c.get(f"/Patient/{A}", headers={"If-None-Match": 'W/"0"'})
        labs = await c.get(LABS)
        labs_again = await c.get(LABS, headers={"If-None-Match": labs.headers["etag"]})
    assert labs_again.status_code == 304 and labs_again.headers["etag"] == labs.headers["etag"]
    assert second.headers["x-cache"] == "HIT" and second.headers["etag"] == etag
    assert etag == f'W/"{first.json()["meta"]["versionId"]}"'
    assert not_modified.status_code == 304 and not_modified.headers["x-cache"] == "HIT"
    assert not_modified.content == b"" and not_modified.headers["etag"] == etag
    assert other.status_code == 200 and other.json()["id"] == A


async def test_writes_through_the_gateway_are_read_back_at_once(gateway: GatewayServer, ehr_base_url: str) -> None:
    await feed_ready(gateway)
    token = mint(gateway, "launch/patient patient/*.cruds", patient=WRITER)
    messages = "/Communication?_sort=-sent&_count=50"
    async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        patient = (await c.get(f"/Patient/{WRITER}")).json()
        before = await c.get(messages)
        assert (await c.get(messages)).headers["x-cache"] == "HIT"
        assert (await c.get(f"/Patient/{WRITER}")).headers["x-cache"] == "HIT"

        text = f"cache test {uuid.uuid4().hex}"
        sent = await c.post("/Communication", json={
            "resourceType": "Communication", "status": "completed",
            "recipient": [patient["generalPractitioner"][0]],
            "payload": [{"contentString": text}]})
        assert sent.status_code == 201, sent.text
        after = await c.get(messages)
        assert after.headers["x-cache"] == "MISS" and after.headers["etag"] != before.headers["etag"]
        assert sent.json()["id"] in {e["resource"]["id"] for e in after.json()["entry"]}

        phone = f"555-{uuid.uuid4().int % 10000:04d}"
        changed = {**patient, "telecom": [{"system": "phone", "value": phone, "use": "mobile"}]}
        put = await c.put(f"/Patient/{WRITER}", json=changed, headers={"If-Match": (await c.get(
            f"/Patient/{WRITER}")).headers["etag"]})
        assert put.status_code == 200, put.text
        reread = await c.get(f"/Patient/{WRITER}")
    assert reread.headers["x-cache"] == "MISS" and phone in reread.text
    assert reread.headers["etag"] == put.headers["etag"] != f'W/"{patient["meta"]["versionId"]}"'


async def test_direct_ehr_changes_show_within_the_staleness_bound(gateway: GatewayServer, ehr_base_url: str) -> None:
    await feed_ready(gateway)
    token = mint(gateway, READ_ALL, patient=A)
    marker = uuid.uuid4().hex
    async with httpx.AsyncClient(timeout=60) as ehr, \
            httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as c:
        created = await ehr.post(f"{ehr_base_url}/Observation", json={
            "resourceType": "Observation", "status": "final", "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
            "code": {"text": "cache staleness probe"}, "subject": {"reference": f"Patient/{A}"},
            "valueString": "before"}, headers={"Prefer": "return=representation"})
        assert created.status_code == 201, created.text
        obs = created.json()
        # Newest first: on an EHR where this test ran before, its earlier probes would fill the page.
        survey = "/Observation?category=survey&_sort=-_lastUpdated&_count=50"
        # The feed also reports the creation itself (and may drop these entries once): warm until cached.
        await until_hit(c, f"/Observation/{obs['id']}")
        await until_hit(c, survey)

        # Changed and joined by a new resource straight in the EHR, not through the gateway:
        changed = await ehr.put(f"{ehr_base_url}/Observation/{obs['id']}", json={**obs, "valueString": marker})
        assert changed.status_code == 200
        fresh_obs = {k: v for k, v in obs.items() if k not in ("id", "meta")}
        joined = await ehr.post(f"{ehr_base_url}/Observation", json={**fresh_obs, "valueString": "new"},
                                headers={"Prefer": "return=representation"})
        new_id = joined.json()["id"]
        changed_at = time.monotonic()
        read_seen = search_seen = None
        while time.monotonic() - changed_at < STALENESS_BOUND + 5 and (read_seen is None or search_seen is None):
            if read_seen is None and marker in (await c.get(f"/Observation/{obs['id']}")).text:
                read_seen = time.monotonic() - changed_at
            if search_seen is None and new_id in (await c.get(survey)).text:
                search_seen = time.monotonic() - changed_at
            await asyncio.sleep(0.1)
    print(f"direct EHR change visible through the gateway after: read {read_seen}s, search {search_seen}s")
    assert read_seen is not None and read_seen <= STALENESS_BOUND, f"read stale for {read_seen}"
    assert search_seen is not None and search_seen <= STALENESS_BOUND, f"search stale for {search_seen}"


# -- gateways of our own: key rotation, cache Redis outage, EHR outage ---------------------------------
def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def test_key_rotation_old_entries_open_then_become_misses(
    ehr_base_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    old, new = _key(), _key()
    base = {"PORTAL_FHIR_BASE_URL": ehr_base_url, "PORTAL_REDIS_URL": redis_server.url,
            "PORTAL_CACHE_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/2"}
    state = tmp_path / "gw"
    results: list[str] = []
    for keys in ({"PORTAL_CACHE_KEY": old},
                 {"PORTAL_CACHE_KEY": new, "PORTAL_CACHE_PREVIOUS_KEYS": old},  # rolling: old still opens
                 {"PORTAL_CACHE_KEY": new}):  # old key dropped: its entries are misses, never errors
        gw = own_gateway(state, {**base, **keys})
        try:
            await feed_ready(gw)
            token = mint(gw, READ_ALL, patient=A)
            async with httpx.AsyncClient(base_url=gw.fhir, headers=auth(token), timeout=60) as c:
                for _ in range(2 if not results else 1):
                    r = await c.get(f"/Patient/{A}")
                    assert r.status_code == 200 and r.json()["id"] == A
                    results.append(r.headers["x-cache"])
        finally:
            gw.started.stop()
    # 1st gateway: miss then hit; 2nd (new key + old) still hits the old entry; 3rd (new key only)
    # cannot open it: a miss.
    assert results == ["MISS", "HIT", "HIT", "MISS"]


@pytest.fixture
def outage_redis() -> Iterator[RedisServer]:
    server = cache_redis(free_port())
    server.start()
    yield server
    server.stop()


async def test_cache_redis_outage_serves_uncached_and_recovers(
    ehr_base_url: str, redis_server: RedisServer, outage_redis: RedisServer, tmp_path: Path
) -> None:
    gw = own_gateway(tmp_path / "gw", {"PORTAL_FHIR_BASE_URL": ehr_base_url, "PORTAL_REDIS_URL": redis_server.url,
                                        "PORTAL_CACHE_REDIS_URL": outage_redis.url})
    try:
        await feed_ready(gw)
        token = mint(gw, READ_ALL, patient=A)
        async with httpx.AsyncClient(base_url=gw.fhir, headers=auth(token), timeout=60) as c:
            await c.get(LABS)
            assert (await c.get(LABS)).headers["x-cache"] == "HIT"
            outage_redis.stop()
            during = []
            for _ in range(5):
                started = time.monotonic()
                r = await c.get(LABS)
                during.append((r.status_code, r.headers.get("x-cache"), time.monotonic() - started))
            assert all(status == 200 for status, _, _ in during), during
            assert all(label in ("MISS", "BYPASS") for _, label, _ in during), during
            # A dead cache must not make requests wait for it: the first one pays at most the 1 s op timeout.
            assert max(seconds for *_, seconds in during[1:]) < 1.0, during

            outage_redis.start()
            labels: list[str] = []
            deadline = time.monotonic() + 15
            while "HIT" not in labels and time.monotonic() < deadline:
                r = await c.get(LABS)
                assert r.status_code == 200
                labels.append(r.headers["x-cache"])
                await asyncio.sleep(0.3)
            assert "HIT" in labels, f"the cache never came back by itself: {labels}"
    finally:
        gw.started.stop()


@pytest.fixture
async def ehr_proxy(ehr_base_url: str) -> AsyncIterator[TcpProxy]:
    url = httpx.URL(ehr_base_url)
    proxy = TcpProxy(url.host, url.port or 80, url.path)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_ehr_down_serves_kept_answers_marked_stale_and_503_otherwise(
    ehr_proxy: TcpProxy, redis_server: RedisServer, tmp_path: Path
) -> None:
    stream = f"audit:it-stale:{uuid.uuid4().hex[:8]}"
    gw = own_gateway(tmp_path / "gw", {
        "PORTAL_FHIR_BASE_URL": ehr_proxy.base_url, "PORTAL_REDIS_URL": redis_server.url,
        "PORTAL_CACHE_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/3",
        "PORTAL_CACHE_TTL": "1", "PORTAL_UPSTREAM_RETRIES": "0", "PORTAL_UPSTREAM_CONNECT_TIMEOUT": "1",
        "PORTAL_AUDIT_STREAM": stream, "PORTAL_AUDIT_EXPORT": "false"})
    try:
        await feed_ready(gw)
        token = mint(gw, READ_ALL, patient=A)
        async with httpx.AsyncClient(base_url=gw.fhir, headers=auth(token), timeout=60) as c:
            fresh = await c.get(f"/Patient/{A}", headers={"X-Request-Id": "stale-fresh"})
            assert fresh.status_code == 200 and "warning" not in fresh.headers
            await asyncio.sleep(1.5)  # past the 1 s freshness: only servable as stale now
            await ehr_proxy.stop()
            stale = await c.get(f"/Patient/{A}", headers={"X-Request-Id": "stale-kept"})
            never_cached = await c.get("/Immunization?_count=3", headers={"X-Request-Id": "stale-none"})
            await ehr_proxy.start()
            back = await c.get(f"/Patient/{A}", headers={"X-Request-Id": "stale-back"})
    finally:
        gw.started.stop()
    assert stale.status_code == 200 and stale.headers["x-cache"] == "STALE", stale.text
    assert stale.headers["warning"].startswith("110") and int(stale.headers["age"]) >= 1
    assert stale.content == fresh.content
    assert never_cached.status_code == 503
    assert never_cached.headers["content-type"].startswith("application/fhir+json")
    assert never_cached.json()["resourceType"] == "OperationOutcome"
    assert back.status_code == 200 and back.headers["x-cache"] == "MISS" and "warning" not in back.headers
    # A stale answer is an access like any other (outcome 0, naming the patient); the 503 a failure (8).
    client = Redis.from_url(redis_server.url)
    try:
        events = [json.loads(fields[b"event"]) for _sid, fields in await client.xrange(stream)]
    finally:
        await client.aclose()
    by_request = {request_id_of(e): e for e in events}
    assert len(by_request) == len(events) == 4
    assert {k: e["outcome"] for k, e in by_request.items()} == {
        "stale-fresh": "0", "stale-kept": "0", "stale-none": "8", "stale-back": "0"}
    assert f"Patient/{A}" in {e["what"].get("reference") for e in by_request["stale-kept"]["entity"]}


async def test_metrics_show_cache_and_feed_activity(gateway: GatewayServer) -> None:
    await feed_ready(gateway)
    token = mint(gateway, READ_ALL, patient=B)
    async with httpx.AsyncClient(timeout=60) as c:
        async with httpx.AsyncClient(base_url=gateway.fhir, headers=auth(token), timeout=60) as fhir:
            await until_hit(fhir, f"/Patient/{B}")
        text = (await c.get(gateway.url + "/metrics")).text
    hits = next(line for line in text.splitlines() if line.startswith('portal_cache_lookups_total{result="hit"}'))
    assert float(hits.split()[-1]) >= 1
    assert "portal_change_feed_leader 1.0" in text and "portal_audit_spool_bytes 0.0" in text
    # The audit backlog, read from Redis and the store when scraped (how much is in it depends on how far
    # this gateway has moved its stream on; the unit tests check the figures).
    assert "portal_audit_backlog_readable 1.0" in text
    assert "\nportal_audit_stream_entries " in text and "\nportal_audit_export_backlog " in text
