"""Leader lock and shared cursor of the change feed on a real Redis (the EHR is respx)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis

from cache.changefeed import CURSOR_KEY, LEADER_KEY, ChangeFeed
from cache.keys import compartment_tag, search_key
from cache.store import CachedResponse, ResponseCache

pytestmark = pytest.mark.integration

BASE = "http://ehr.test/fhir/"


def history(entries: list[dict[str, Any]], stamp: str) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "history", "meta": {"lastUpdated": stamp}, "entry": entries}


@respx.mock
async def test_one_leader_shared_cursor_and_real_invalidation(cache: ResponseCache, redis_client: Redis) -> None:
    route = respx.get(f"{BASE}_history")
    route.mock(return_value=httpx.Response(200, json=history([], "2025-03-01T10:00:00.000+00:00")))
    async with httpx.AsyncClient(base_url=BASE) as http:
        a = ChangeFeed(http, cache, compartments_of=lambda r: {r["subject"]["reference"]}, lock_ttl=5)
        b = ChangeFeed(http, cache, compartments_of=lambda r: {r["subject"]["reference"]}, lock_ttl=5)
        assert await a.step() == 0  # bootstrap round: leader, cursor set from the EHR clock
        assert await b.step() is None
        assert await redis_client.get(LEADER_KEY) == a.instance_id.encode()
        assert 0 < await redis_client.pttl(LEADER_KEY) <= 5000
        assert await redis_client.get(CURSOR_KEY) == b"2025-03-01T09:59:58.000+00:00"

        key = search_key("Patient/pt-0001", "fp", "Observation", [])
        tags = [compartment_tag("Patient/pt-0001", "Observation")]
        body = CachedResponse(200, b"{}", None, None, "application/fhir+json", time.time(), ())
        assert await cache.put(key, body, tags)
        change = {
            "resource": {
                "resourceType": "Observation",
                "id": "obs-x",
                "meta": {"versionId": "2"},
                "subject": {"reference": "Patient/pt-0001"},
            }
        }
        route.mock(return_value=httpx.Response(200, json=history([change], "2025-03-01T10:00:01.000+00:00")))
        await a.stop()  # the leader leaves; b takes over and continues from the SHARED cursor
        assert await b.step() == 1
        assert route.calls.last.request.url.params["_since"] == "2025-03-01T09:59:58.000+00:00"
        assert await cache.get(key) is None
        await b.stop()
