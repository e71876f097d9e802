"""Change feed against the REAL HAPI: a change made directly in the EHR drops the cached entry in time."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cache.changefeed import ChangeFeed
from cache.keys import compartment_tag, read_key, resource_tag, scope_fingerprint, search_key
from cache.store import CachedResponse, ResponseCache

pytestmark = pytest.mark.integration

BOUND = 5.0  # seconds: the documented staleness bound for direct EHR changes
FP = scope_fingerprint("patient/*.rs")
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def compartments_of(resource: dict[str, Any]) -> set[str]:
    """Test stand-in for the gateway's patient-compartment rules (enough for Patient and Observation)."""
    if resource.get("resourceType") == "Patient":
        return {f"Patient/{resource['id']}"}
    ref = (resource.get("subject") or {}).get("reference", "")
    return {ref} if ref.startswith("Patient/") else set()


def entry(text: bytes) -> CachedResponse:
    return CachedResponse(200, text, None, None, "application/fhir+json", time.time(), ("1",))


@pytest.fixture
async def ehr(hapi_base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=hapi_base + "/", timeout=30) as client:
        yield client


async def put_resource(ehr: httpx.AsyncClient, resource: dict[str, Any]) -> None:
    response = await ehr.put(f"{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text


async def wait_for_miss(cache: ResponseCache, key: str, since: float) -> float | None:
    while time.monotonic() - since < BOUND + 5:
        if await cache.get(key) is None:
            return time.monotonic() - since
        await asyncio.sleep(0.05)
    return None


async def test_direct_ehr_changes_invalidate_within_the_bound(ehr: httpx.AsyncClient, cache: ResponseCache) -> None:
    suffix = uuid.uuid4().hex[:10]
    pid, other_pid, oid = f"cachetest-{suffix}", f"cachetest-{suffix}-b", f"cachetest-obs-{suffix}"
    patient = {"resourceType": "Patient", "id": pid, "active": True}
    other = {"resourceType": "Patient", "id": other_pid, "active": True}
    await put_resource(ehr, patient)
    await put_resource(ehr, other)

    feed = ChangeFeed(ehr, cache, interval=1.0, compartments_of=compartments_of)
    feed.start()
    try:
        # Wait for the first complete round (the bootstrap drops everything cached before it).
        deadline = time.monotonic() + 20
        while feed.last_success is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert feed.last_success is not None, "the change feed never completed a round"

        mine = f"Patient/{pid}"
        search = search_key(mine, FP, "Observation", [("code", "8867-4")])
        other_search = search_key(f"Patient/{other_pid}", FP, "Observation", [("code", "8867-4")])
        patient_read = read_key(mine, FP, "Patient", pid)
        assert await cache.put(search, entry(b"no observations"), [compartment_tag(mine, "Observation")])
        assert await cache.put(
            other_search, entry(b"other patient"), [compartment_tag(f"Patient/{other_pid}", "Observation")]
        )
        assert await cache.put(patient_read, entry(b"patient v1"), [resource_tag("Patient", pid)])
        await asyncio.sleep(1.5)  # a couple of quiet rounds must not drop unrelated entries
        assert await cache.get(search) is not None

        # 1) A new Observation for this patient, written DIRECTLY to HAPI: the compartment search goes.
        observation = {
            "resourceType": "Observation",
            "id": oid,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": mine},
            "valueQuantity": {"value": 72, "unit": "/min"},
        }
        started = time.monotonic()
        await put_resource(ehr, observation)
        delay = await wait_for_miss(cache, search, started)
        print(f"\nchange feed: new Observation invalidated the compartment search after {delay}s")
        assert delay is not None and delay <= BOUND
        assert await cache.get(other_search) is not None  # another patient's entry is untouched

        # 2) An update of the Patient itself: its cached read goes.
        started = time.monotonic()
        await put_resource(ehr, {**patient, "active": False})
        delay = await wait_for_miss(cache, patient_read, started)
        print(f"change feed: Patient update invalidated its cached read after {delay}s")
        assert delay is not None and delay <= BOUND

        # 3) A delete (history entry without a resource): entries tagged with the resource go.
        obs_read = read_key(mine, FP, "Observation", oid)
        assert await cache.put(obs_read, entry(b"obs v1"), [resource_tag("Observation", oid)])
        started = time.monotonic()
        response = await ehr.delete(f"Observation/{oid}")
        assert response.status_code in (200, 204)
        delay = await wait_for_miss(cache, obs_read, started)
        print(f"change feed: Observation delete invalidated its cached read after {delay}s")
        assert delay is not None and delay <= BOUND
        assert feed.is_leader
    finally:
        await feed.stop()
        for ref in (f"Observation/{oid}", f"Patient/{pid}", f"Patient/{other_pid}"):
            await ehr.delete(ref)
