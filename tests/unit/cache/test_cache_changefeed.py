"""Change-feed paging, cursor and leader logic against a respx EHR (no servers)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from cache.changefeed import CURSOR_KEY, LEADER_KEY, ChangeFeed, FeedError
from cache.keys import compartment_tag, resource_tag, type_tag
from web.tls import client_tls

BASE = "http://ehr.test/fhir/"
T0 = "2025-03-01T10:00:00.000+00:00"
T1 = "2025-03-01T10:00:05.250+00:00"


class FakeRedis:
    """Just the commands the feed uses (GET/SET and its two lock scripts)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def set(self, key: str, value: Any, nx: bool = False, px: int | None = None, ex: int | None = None) -> Any:
        if nx and key in self.data:
            return None
        self.data[key] = value.encode() if isinstance(value, str) else value
        return True

    def register_script(self, text: str) -> Any:
        async def run(keys: list[str], args: list[Any], client: Any = None) -> int:
            if self.data.get(keys[0]) != str(args[0]).encode():
                return 0
            if "PEXPIRE" not in text:
                del self.data[keys[0]]
            return 1

        return run


class FakeCache:
    def __init__(self) -> None:
        self.redis = FakeRedis()
        self.op_timeout = 1.0
        self.invalidated: list[list[str]] = []
        self.invalidated_all = 0
        self.fail = False

    async def try_invalidate(self, tags: Any) -> int | None:
        if self.fail:
            return None
        self.invalidated.append(list(tags))
        return 0

    async def invalidate_all(self) -> bool:
        if self.fail:
            return False
        self.invalidated_all += 1
        return True

    @property
    def tags(self) -> set[str]:
        return {t for call in self.invalidated for t in call}


def compartments_of(resource: dict[str, Any]) -> set[str]:
    if resource["resourceType"] == "Patient":
        return {f"Patient/{resource['id']}"}
    ref = (resource.get("subject") or {}).get("reference")
    return {ref} if ref else set()


def obs(rid: str, patient: str, version: str = "1") -> dict[str, Any]:
    return {
        "fullUrl": f"{BASE}Observation/{rid}",
        "resource": {
            "resourceType": "Observation",
            "id": rid,
            "meta": {"versionId": version},
            "subject": {"reference": f"Patient/{patient}"},
        },
        "request": {"method": "PUT", "url": f"Observation/{rid}"},
    }


def history(entries: list[dict[str, Any]], *, next_url: str | None = None, stamp: str | None = T1) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "entry": entries, "link": []}
    if stamp:
        bundle["meta"] = {"lastUpdated": stamp}
    if next_url:
        bundle["link"].append({"relation": "next", "url": next_url})
    return bundle


@pytest.fixture
def cache() -> FakeCache:
    return FakeCache()


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient(base_url=BASE, verify=client_tls()) as client:
        yield client


def make_feed(http: httpx.AsyncClient, cache: FakeCache, **kw: Any) -> ChangeFeed:
    return ChangeFeed(http, cache, compartments_of=compartments_of, overlap=2.0, **kw)  # type: ignore[arg-type]


@respx.mock
async def test_first_round_without_cursor_drops_everything_and_starts_at_the_ehr_clock(
    http: httpx.AsyncClient, cache: FakeCache
) -> None:
    route = respx.get(f"{BASE}_history").mock(return_value=httpx.Response(200, json=history([], stamp=T0)))
    feed = make_feed(http, cache)
    assert await feed.poll_once() == 0
    assert cache.invalidated_all == 1
    assert route.calls.last.request.url.params["_count"] == "1"
    assert cache.redis.data[CURSOR_KEY] == b"2025-03-01T09:59:58.000+00:00"


@respx.mock
async def test_pages_are_followed_and_every_change_invalidated(http: httpx.AsyncClient, cache: FakeCache) -> None:
    cache.redis.data[CURSOR_KEY] = T0.encode()
    page2_url = "http://ehr.test/fhir?_getpages=abc&_getpagesoffset=2&_count=2"
    patient = {
        "resource": {"resourceType": "Patient", "id": "pt-0002", "meta": {"versionId": "3"}},
        "request": {"method": "PUT", "url": "Patient/pt-0002"},
    }
    deleted = {
        "fullUrl": f"{BASE}Observation/obs-9",
        "request": {"method": "DELETE", "url": "Observation/obs-9/_history/4"},
    }
    first = respx.get(f"{BASE}_history").mock(
        return_value=httpx.Response(200, json=history([obs("obs-1", "pt-0001", "2"), patient], next_url=page2_url))
    )
    second = respx.get("http://ehr.test/fhir", params={"_getpages": "abc"}).mock(
        return_value=httpx.Response(200, json=history([deleted], stamp="2025-03-01T10:00:06.000+00:00"))
    )
    feed = make_feed(http, cache, page_size=2)
    assert await feed.poll_once() == 3

    sent = first.calls.last.request
    assert sent.url.params["_since"] == T0
    assert sent.url.params["_count"] == "2"
    assert sent.headers["Cache-Control"] == "no-cache"
    assert second.called
    assert cache.tags >= {
        resource_tag("Observation", "obs-1"),
        compartment_tag("Patient/pt-0001", "Observation"),
        type_tag("Observation"),
        resource_tag("Patient", "pt-0002"),
        compartment_tag("Patient/pt-0002", "Patient"),
        resource_tag("Observation", "obs-9"),
    }
    assert compartment_tag("Patient/pt-0002", "Observation") not in cache.tags
    assert cache.invalidated_all == 0
    # The next _since is the FIRST page's EHR time minus the overlap.
    assert cache.redis.data[CURSOR_KEY] == b"2025-03-01T10:00:03.250+00:00"


@respx.mock
async def test_overlap_does_not_reinvalidate_the_same_version(http: httpx.AsyncClient, cache: FakeCache) -> None:
    cache.redis.data[CURSOR_KEY] = T0.encode()
    respx.get(f"{BASE}_history").mock(return_value=httpx.Response(200, json=history([obs("obs-1", "pt-0001", "2")])))
    feed = make_feed(http, cache)
    assert await feed.poll_once() == 1
    assert await feed.poll_once() == 0  # same version again inside the overlap window
    assert resource_tag("Observation", "obs-1") not in cache.invalidated[-1]


@respx.mock
async def test_date_header_is_the_fallback_clock(http: httpx.AsyncClient, cache: FakeCache) -> None:
    cache.redis.data[CURSOR_KEY] = T0.encode()
    respx.get(f"{BASE}_history").mock(
        return_value=httpx.Response(
            200, json=history([], stamp=None), headers={"Date": "Sat, 01 Mar 2025 10:01:00 GMT"}
        )
    )
    await make_feed(http, cache).poll_once()
    assert cache.redis.data[CURSOR_KEY] == b"2025-03-01T10:00:58.000+00:00"


@respx.mock
async def test_cursor_never_moves_backwards(http: httpx.AsyncClient, cache: FakeCache) -> None:
    cache.redis.data[CURSOR_KEY] = T1.encode()
    respx.get(f"{BASE}_history").mock(return_value=httpx.Response(200, json=history([], stamp=T0)))
    await make_feed(http, cache).poll_once()
    assert cache.redis.data[CURSOR_KEY] == T1.encode()


@respx.mock
async def test_ehr_error_keeps_the_cursor(http: httpx.AsyncClient, cache: FakeCache) -> None:
    cache.redis.data[CURSOR_KEY] = T0.encode()
    respx.get(f"{BASE}_history").mock(return_value=httpx.Response(500, json={"resourceType": "OperationOutcome"}))
    with pytest.raises(FeedError):
        await make_feed(http, cache).poll_once()
    assert cache.redis.data[CURSOR_KEY] == T0.encode()
    assert cache.invalidated == []


@respx.mock
async def test_ehr_down_keeps_the_cursor(http: httpx.AsyncClient, cache: FakeCache) -> None:
    cache.redis.data[CURSOR_KEY] = T0.encode()
    respx.get(f"{BASE}_history").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(FeedError):
        await make_feed(http, cache).poll_once()
    assert cache.redis.data[CURSOR_KEY] == T0.encode()


@respx.mock
async def test_failed_invalidation_is_retried_next_round(http: httpx.AsyncClient, cache: FakeCache) -> None:
    cache.redis.data[CURSOR_KEY] = T0.encode()
    respx.get(f"{BASE}_history").mock(return_value=httpx.Response(200, json=history([obs("obs-1", "pt-0001", "2")])))
    feed = make_feed(http, cache)
    cache.fail = True
    with pytest.raises(FeedError):
        await feed.poll_once()
    assert cache.redis.data[CURSOR_KEY] == T0.encode()
    cache.fail = False
    assert await feed.poll_once() == 1  # not swallowed by the de-duplication
    assert resource_tag("Observation", "obs-1") in cache.tags


@respx.mock
async def test_huge_backlog_gives_up_paging_and_drops_everything(http: httpx.AsyncClient, cache: FakeCache) -> None:
    cache.redis.data[CURSOR_KEY] = T0.encode()
    endless = history([obs("obs-1", "pt-0001")], next_url=f"{BASE}?_getpages=x")
    first = respx.get(f"{BASE}_history").mock(return_value=httpx.Response(200, json=endless))
    more = respx.get(BASE.rstrip("/") + "/", params={"_getpages": "x"}).mock(
        return_value=httpx.Response(200, json=endless)
    )
    await make_feed(http, cache, max_pages=3).poll_once()
    assert first.call_count + more.call_count == 3
    assert cache.invalidated_all == 1
    assert cache.redis.data[CURSOR_KEY] == b"2025-03-01T10:00:03.250+00:00"


@respx.mock
async def test_compartment_mapping_failure_falls_back_to_invalidate_all(
    http: httpx.AsyncClient, cache: FakeCache
) -> None:
    cache.redis.data[CURSOR_KEY] = T0.encode()
    respx.get(f"{BASE}_history").mock(return_value=httpx.Response(200, json=history([obs("obs-1", "pt-0001")])))

    def broken(resource: dict[str, Any]) -> set[str]:
        raise KeyError("subject")

    feed = ChangeFeed(http, cache, compartments_of=broken)  # type: ignore[arg-type]
    await feed.poll_once()
    assert cache.invalidated_all == 1


@respx.mock
async def test_only_one_replica_polls(http: httpx.AsyncClient, cache: FakeCache) -> None:
    cache.redis.data[CURSOR_KEY] = T0.encode()
    route = respx.get(f"{BASE}_history").mock(return_value=httpx.Response(200, json=history([])))
    a, b = make_feed(http, cache), make_feed(http, cache)
    assert await a.step() == 0
    assert await b.step() is None
    assert await a.step() == 0  # renews its own lock
    assert route.call_count == 2
    await a.stop()  # releases the lock: b takes over at once
    assert LEADER_KEY not in cache.redis.data
    assert await b.step() == 0
    assert b.is_leader and not a.is_leader


@respx.mock
async def test_listeners_get_each_new_version_once_after_the_cache_and_a_failing_one_stops_nothing(
        http: httpx.AsyncClient, cache: FakeCache) -> None:
    cache.redis.data[CURSOR_KEY] = T0.encode()
    respx.get(f"{BASE}_history").mock(return_value=httpx.Response(200, json=history(
        [obs("obs-1", "pt-0001", "2"), obs("obs-2", "pt-0002", "1")])))
    feed = make_feed(http, cache)
    heard: list[list[str]] = []

    async def listener(resources: list[dict[str, Any]]) -> None:
        assert cache.tags, "the cache is invalidated before anyone hears of a change"
        heard.append([r["id"] for r in resources])

    async def broken(resources: list[dict[str, Any]]) -> None:
        raise RuntimeError("boom")

    feed.subscribe(broken)
    feed.subscribe(listener)
    assert await feed.poll_once() == 2
    assert await feed.poll_once() == 0  # the same versions again, inside the overlap window
    assert heard == [["obs-1", "obs-2"]]
