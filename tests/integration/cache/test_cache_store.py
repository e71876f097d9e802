"""ResponseCache against a real redis-server: isolation, invalidation, races, rotation, encryption, outages."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from cache.crypto import CacheCipher
from cache.keys import compartment_tag, resource_tag, scope_fingerprint, search_key
from cache.store import CachedResponse, ResponseCache

pytestmark = pytest.mark.integration

MARKER = b"PLAINTEXT-MARKER-Smithson"
FULL = scope_fingerprint({"allowed": True, "unconstrained": True, "constraint_sets": []})


def bundle(patient: str, extra: bytes = b"") -> CachedResponse:
    body = (
        b'{"resourceType":"Bundle","entry":[{"subject":"' + patient.encode() + b'"}],"note":"' + MARKER + extra + b'"}'
    )
    return CachedResponse(
        status=200,
        body=body,
        etag=None,
        last_modified=None,
        content_type="application/fhir+json",
        stored_at=time.time(),
        version_ids=("1",),
    )


def obs_search(patient: str, fp: str = FULL) -> tuple[str, list[str]]:
    compartment = f"Patient/{patient}"
    key = search_key(compartment, fp, "Observation", [("code", "8867-4")])
    return key, [compartment_tag(compartment, "Observation"), resource_tag("Observation", f"obs-{patient}")]


async def test_round_trip_and_no_cross_compartment_hits(cache: ResponseCache) -> None:
    key_a, tags_a = obs_search("pt-0001")
    key_b, tags_b = obs_search("pt-0002")
    assert key_a != key_b
    assert await cache.put(key_a, bundle("pt-0001"), tags_a)
    got = await cache.get(key_a)
    assert got is not None and b"pt-0001" in got.body and got.version_ids == ("1",)
    # Same query for another patient: never A's body.
    assert await cache.get(key_b) is None
    assert await cache.put(key_b, bundle("pt-0002"), tags_b)
    got_b = await cache.get(key_b)
    assert got_b is not None and b"pt-0002" in got_b.body and b"pt-0001" not in got_b.body


async def test_narrower_scope_never_shares_the_broad_entry(cache: ResponseCache) -> None:
    narrow = scope_fingerprint(
        {"allowed": True, "unconstrained": False, "constraint_sets": [[["category", "laboratory"]]]}
    )
    broad_key, tags = obs_search("pt-0001", FULL)
    narrow_key, _ = obs_search("pt-0001", narrow)
    assert broad_key != narrow_key
    await cache.put(broad_key, bundle("pt-0001", b"-vital-signs-too"), tags)
    assert await cache.get(narrow_key) is None


async def test_invalidate_by_resource_tag(cache: ResponseCache) -> None:
    read_key = "cache:e:Observation:test-read"
    await cache.put(read_key, bundle("pt-0001"), [resource_tag("Observation", "obs-1")])
    other_key = "cache:e:Observation:test-other"
    await cache.put(other_key, bundle("pt-0001"), [resource_tag("Observation", "obs-2")])
    deleted = await cache.invalidate([resource_tag("Observation", "obs-1")])
    assert deleted == 1
    assert await cache.get(read_key) is None
    assert await cache.get(other_key) is not None


async def test_write_invalidates_resource_and_compartment_searches(cache: ResponseCache) -> None:
    """Read-your-writes: a write to Observation/obs-1 of pt-0001 drops its read and pt-0001's searches."""
    search_a, tags_a = obs_search("pt-0001")
    search_b, tags_b = obs_search("pt-0002")
    read_key = "cache:e:Observation:read-obs-1"
    await cache.put(search_a, bundle("pt-0001"), tags_a)
    await cache.put(search_b, bundle("pt-0002"), tags_b)
    await cache.put(read_key, bundle("pt-0001"), [resource_tag("Observation", "obs-1")])
    deleted = await cache.invalidate(
        [resource_tag("Observation", "obs-1"), compartment_tag("Patient/pt-0001", "Observation")]
    )
    assert deleted == 2
    assert await cache.get(search_a) is None
    assert await cache.get(read_key) is None
    assert await cache.get(search_b) is not None  # other patient untouched


async def test_put_after_invalidate_race_is_refused(cache: ResponseCache) -> None:
    key, tags = obs_search("pt-0001")
    # Request 1 misses, reads generations, then starts a slow upstream fetch...
    gens = await cache.generations(tags)
    stale = bundle("pt-0001", b"-old-version")
    # ...meanwhile a write lands and invalidates the compartment...
    await cache.invalidate([compartment_tag("Patient/pt-0001", "Observation")])
    # ...then the slow fetch finishes and tries to store what it read before the write.
    assert await cache.put(key, stale, tags, generations=gens) is False
    assert await cache.get(key) is None
    # The next request (fresh generations) caches normally.
    fresh = bundle("pt-0001", b"-new-version")
    assert await cache.put(key, fresh, tags, generations=await cache.generations(tags)) is True
    got = await cache.get(key)
    assert got is not None and b"-new-version" in got.body


async def test_concurrent_puts_and_invalidations_leave_nothing_stale(cache: ResponseCache) -> None:
    """30 concurrent requests fetched before a write, finishing after it: none of their bodies survives."""
    key, tags = obs_search("pt-0003")
    write_done = asyncio.Event()
    all_read = asyncio.Event()
    have_gens: list[int] = []

    async def slow_reader(i: int) -> bool:
        gens = await cache.generations(tags)
        assert gens, "generations read failed"
        have_gens.append(i)
        if len(have_gens) == 30:
            all_read.set()
        await write_done.wait()  # the upstream fetch returns only after the write
        await asyncio.sleep(0.001 * (i % 5))
        return await cache.put(key, bundle("pt-0003", b"-before-write"), tags, generations=gens)

    readers = [asyncio.create_task(slow_reader(i)) for i in range(30)]
    await asyncio.wait_for(all_read.wait(), 5)  # every reader took its generations before the write
    await cache.invalidate([resource_tag("Observation", "obs-pt-0003")])
    write_done.set()
    assert await asyncio.gather(*readers) == [False] * 30
    assert await cache.get(key) is None


async def test_entry_survives_eviction_of_its_tag_set(cache: ResponseCache, redis_client: Redis) -> None:
    """LRU may evict a tag set; the generation check still makes the invalidated entry a miss."""
    key, tags = obs_search("pt-0004")
    await cache.put(key, bundle("pt-0004"), tags)
    async for k in redis_client.scan_iter(match="cache:t:*"):
        await redis_client.delete(k)  # simulate eviction of every tag set
    await cache.invalidate([compartment_tag("Patient/pt-0004", "Observation")])
    assert await cache.get(key) is None


async def test_invalidate_all(cache: ResponseCache) -> None:
    key, tags = obs_search("pt-0005")
    await cache.put(key, bundle("pt-0005"), tags)
    assert await cache.invalidate_all()
    assert await cache.get(key) is None
    assert await cache.put(key, bundle("pt-0005"), tags)
    assert await cache.get(key) is not None


async def test_every_cache_key_has_a_ttl(cache: ResponseCache, redis_client: Redis) -> None:
    key, tags = obs_search("pt-0006")
    await cache.put(key, bundle("pt-0006"), tags)
    await cache.invalidate([resource_tag("Patient", "pt-0099")])
    await cache.invalidate_all()
    keys = [k async for k in redis_client.scan_iter(match="cache:*")]
    assert keys
    for k in keys:
        ttl = await redis_client.ttl(k)
        assert 0 < ttl <= cache.generation_ttl, (k, ttl)
    entry_ttl = await redis_client.ttl(key)
    assert cache.ttl < entry_ttl <= cache.entry_ttl


async def test_bodies_and_ids_are_not_readable_in_redis(cache: ResponseCache, redis_client: Redis) -> None:
    for patient in ("pt-0001", "pt-0002"):
        key, tags = obs_search(patient)
        await cache.put(key, bundle(patient), tags)
    seen = 0
    async for k in redis_client.scan_iter(match="*"):
        assert b"pt-000" not in k and b"8867-4" not in k  # no ids or search values in key names
        kind = await redis_client.type(k)
        if kind == b"hash":
            values = list((await redis_client.hgetall(k)).values())
        elif kind == b"set":
            values = list(await redis_client.smembers(k))
        else:
            values = [await redis_client.get(k)]
        for value in values:
            seen += 1
            assert MARKER not in value and b"pt-000" not in value
    assert seen >= 6


async def test_value_copied_under_another_key_is_a_miss(cache: ResponseCache, redis_client: Redis) -> None:
    key_a, tags_a = obs_search("pt-0001")
    key_b, tags_b = obs_search("pt-0002")
    await cache.put(key_a, bundle("pt-0001"), tags_a)
    await cache.put(key_b, bundle("pt-0002"), tags_b)
    stolen = await redis_client.hget(key_a, "b")
    await redis_client.hset(key_b, "b", stolen)
    assert await cache.get(key_b) is None
    assert await cache.get(key_a) is not None


async def test_key_rotation(redis_client: Redis) -> None:
    old, new, other = b"o" * 32, b"n" * 32, b"x" * 32
    before = ResponseCache(redis_client, CacheCipher(old))
    key, tags = obs_search("pt-0007")
    await before.put(key, bundle("pt-0007"), tags)

    # Rotated with the old key kept as previous: old entries still open.
    rotating = ResponseCache(redis_client, CacheCipher(new, [old]))
    got = await rotating.get(key)
    assert got is not None and b"pt-0007" in got.body

    # Old key retired: its entries become misses, never errors...
    retired = ResponseCache(redis_client, CacheCipher(new, [other]))
    assert await retired.get(key) is None
    assert retired.stats.errors == 0
    # ...and new puts work and open.
    assert await retired.put(key, bundle("pt-0007", b"-v2"), tags)
    got = await retired.get(key)
    assert got is not None and b"-v2" in got.body
    assert await before.get(key) is None  # the old-key-only replica cannot read new entries


async def test_freshness_and_stale_serving(redis_client: Redis, cipher: CacheCipher) -> None:
    cache = ResponseCache(redis_client, cipher, ttl=1, stale_ttl=30)
    key, tags = obs_search("pt-0008")
    entry = bundle("pt-0008")
    await cache.put(key, CachedResponse(**{**entry.__dict__, "stored_at": time.time() - 5}), tags)
    assert await cache.get(key) is None  # past freshness
    stale = await cache.get_stale(key)
    assert stale is not None and stale.stale and b"pt-0008" in stale.body
    # Invalidated entries are never served, not even stale.
    await cache.invalidate([compartment_tag("Patient/pt-0008", "Observation")])
    assert await cache.get_stale(key) is None


async def test_disabled_cache_is_a_no_op(redis_client: Redis, cipher: CacheCipher) -> None:
    cache = ResponseCache(redis_client, cipher, enabled=False)
    key, tags = obs_search("pt-0009")
    assert await cache.put(key, bundle("pt-0009"), tags) is False
    assert await cache.get(key) is None
    assert await redis_client.dbsize() == 0


async def test_redis_outage_is_quick_and_silent_then_recovers(cache_redis_server, cipher: CacheCipher) -> None:
    from cache.server import make_cache_redis

    client = make_cache_redis(cache_redis_server.url, timeout=1.0)
    cache = ResponseCache(client, cipher, retry_after=0.5)
    key, tags = obs_search("pt-0010")
    assert await cache.put(key, bundle("pt-0010"), tags)
    cache_redis_server.stop()
    try:
        started = time.monotonic()
        assert await cache.get(key) is None
        assert await cache.put(key, bundle("pt-0010"), tags) is False
        assert await cache.invalidate([resource_tag("Observation", "obs-1")]) == 0
        assert await cache.generations(tags) == {}
        assert await cache.get_stale(key) is None
        elapsed = time.monotonic() - started
        print(f"\n5 cache operations with Redis down took {elapsed * 1000:.1f} ms")
        assert elapsed < 2.0
        assert cache.stats.errors >= 1
        # Even without the breaker (skip window over) one call stays bounded by the socket timeouts.
        await asyncio.sleep(0.6)
        started = time.monotonic()
        assert await cache.get(key) is None
        assert time.monotonic() - started < 1.5
    finally:
        cache_redis_server.start()
    # Redis is back (empty: no persistence); the SAME client and cache recover by themselves.
    deadline = time.monotonic() + 5
    stored = False
    while time.monotonic() < deadline and not stored:
        stored = await cache.put(key, bundle("pt-0010", b"-after"), tags)
        if not stored:
            await asyncio.sleep(0.2)
    assert stored
    got = await cache.get(key)
    assert got is not None and b"-after" in got.body
    await client.aclose()


@pytest.mark.parametrize("op_timeout", [1.0, None], ids=["own-timer", "client-timeouts"])
async def test_hung_redis_is_bounded_by_the_timeouts(cipher: CacheCipher, op_timeout: float | None) -> None:
    """A Redis that accepts connections but never answers: each operation gives up within ~1 s, whether the
    cache times each operation itself or leaves it to the client's timeouts (as `build_cache` does)."""
    from cache.server import make_cache_redis

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # swallow everything, answer nothing
        writer.close()

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = make_cache_redis(f"redis://127.0.0.1:{port}/0", timeout=1.0)
    cache = ResponseCache(client, cipher, op_timeout=op_timeout, retry_after=0.0)
    key, tags = obs_search("pt-0011")
    try:
        for op in (cache.get(key), cache.put(key, bundle("pt-0011"), tags), cache.invalidate(tags)):
            started = time.monotonic()
            await op
            elapsed = time.monotonic() - started
            assert elapsed < 1.6, elapsed
        assert cache.stats.errors == 3
    finally:
        await client.aclose()
        server.close()


async def test_memory_stays_bounded_under_lru_eviction(cache: ResponseCache, redis_client: Redis) -> None:
    """Fill a 4 MB cache instance with ~16 MB of entries: evictions, no errors, memory near the cap."""
    from cache.server import memory_report

    await redis_client.config_set("maxmemory", "4mb")
    try:
        body = b"x" * 8192
        for i in range(2000):
            key = search_key(f"Patient/pt-{i:05d}", FULL, "Observation", [])
            entry = CachedResponse(200, body, None, None, "application/fhir+json", time.time(), ())
            await cache.put(key, entry, [compartment_tag(f"Patient/pt-{i:05d}", "Observation")])
        report = await memory_report(redis_client)
        print(f"\nafter 2000 x 8 KiB puts into a 4 MB instance: {report}")
        assert report["maxmemory_policy"] == "allkeys-lru"
        assert report["evicted_keys"] > 0
        assert report["used_memory"] <= 4 * 1024 * 1024 * 1.1
        assert cache.stats.errors == 0
        # The most recent entry is still served.
        assert await cache.get(key) is not None
    finally:
        await redis_client.config_set("maxmemory", "64mb")
