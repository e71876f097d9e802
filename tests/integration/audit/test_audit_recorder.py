"""The recorder against a real (private) Redis: concurrency, Redis crashing mid-run, spool replay, refusal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from audit.events import rest_event
from audit.recorder import AuditRecorder, AuditUnavailable

from .conftest import RedisProcess, fast_redis, free_port

pytestmark = pytest.mark.integration


def make_event(n: int) -> dict[str, Any]:
    return rest_event(interaction="read", outcome="0", action="R", entity_refs=[f"Observation/o-{n}"],
                      patient_refs=["Patient/pt-0001"], account_ref="Patient/pt-0001", account_id="acct-1",
                      client_id="portal-web", on_behalf_of=None, source_ip="127.0.0.1", request_id=f"req-{n}",
                      query=None)


async def stream_ids(redis: aioredis.Redis, stream: str) -> list[str]:
    entries = await redis.xrange(stream)
    return [fields[b"id"].decode() for _sid, fields in entries]


async def test_1000_records_from_50_tasks_land_exactly_once(redis: aioredis.Redis, stream: str,
                                                            tmp_path: Path) -> None:
    recorder = AuditRecorder(redis, tmp_path / "spool.jsonl", stream=stream)
    events = [make_event(i) for i in range(1000)]

    async def worker(k: int) -> None:
        for event in events[k::50]:
            await recorder.record(event)

    await asyncio.gather(*(worker(k) for k in range(50)))
    ids = await stream_ids(redis, stream)
    assert len(ids) == 1000
    assert set(ids) == {e["id"] for e in events}
    first = (await redis.xrange(stream, count=1))[0][1]
    assert json.loads(first[b"event"])["id"] == first[b"id"].decode()
    assert recorder.spooled_bytes() == 0


async def test_redis_crash_mid_run_spools_then_replays_each_once_in_order(
    ensure_redis_up: RedisProcess, stream: str, tmp_path: Path
) -> None:
    redis = fast_redis(ensure_redis_up.url)
    recorder = AuditRecorder(redis, tmp_path / "spool.jsonl", stream=stream, retry_redis_after=0.2)
    events = [make_event(i) for i in range(1000)]
    done = 0
    killed = asyncio.Event()

    async def worker(k: int) -> None:
        nonlocal done
        for event in events[k::50]:
            await recorder.record(event)  # must never raise while the spool works
            done += 1
            if done == 300 and not killed.is_set():
                killed.set()
                ensure_redis_up.kill()
            await asyncio.sleep(0)

    try:
        await asyncio.gather(*(worker(k) for k in range(50)))
        assert killed.is_set()
        spooled = [json.loads(line)["event"]["id"] for line in (tmp_path / "spool.jsonl").read_text().splitlines()]
        assert len(spooled) >= 600, "events recorded after the crash must be in the spool"

        ensure_redis_up.start()
        before = await stream_ids(redis, stream)
        # AOF kept everything acknowledged before the crash. Writes in flight at the crash may be in BOTH
        # places (applied and fsynced, reply lost): the replay must recognise and skip those.
        assert set(before) | set(spooled) == {e["id"] for e in events}
        missing = [i for i in spooled if i not in set(before)]
        added = await recorder.replay_spool()
        assert added == len(missing)
        after = await stream_ids(redis, stream)
        assert len(after) == 1000
        assert set(after) == {e["id"] for e in events}
        assert after[len(before):] == missing  # replayed in spool order
        assert recorder.spooled_bytes() == 0
        assert await recorder.replay_spool() == 0  # nothing left, nothing doubled
        assert len(await stream_ids(redis, stream)) == 1000
    finally:
        await redis.aclose()


class FailingPipelines:
    """Real Redis, but the n-th pipeline execution fails as if Redis died half-way through a replay."""

    def __init__(self, redis: aioredis.Redis, fail_on: int) -> None:
        self._redis = redis
        self._count = 0
        self._fail_on = fail_on

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = self._redis.pipeline(*args, **kwargs)
        real_execute = pipe.execute
        self._count += 1
        fail = self._count == self._fail_on

        async def execute(*a: Any, **kw: Any) -> Any:
            result = await real_execute(*a, **kw)
            if fail:  # the chunk WAS applied, but the replayer never learns it
                raise RedisConnectionError("connection lost")
            return result

        pipe.execute = execute
        return pipe


async def test_replay_crashing_half_way_resumes_without_duplicates(redis: aioredis.Redis, stream: str,
                                                                  tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    dead = fast_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        offline = AuditRecorder(dead, spool, stream=stream)
        events = [make_event(i) for i in range(95)]
        for event in events:
            await offline.record(event)
    finally:
        await dead.aclose()

    crashing = AuditRecorder(FailingPipelines(redis, fail_on=3), spool, stream=stream, replay_chunk=20)
    with pytest.raises(RedisConnectionError):
        await crashing.replay_spool()
    assert len(await stream_ids(redis, stream)) == 60  # three chunks of 20 made it in
    assert crashing.spooled_bytes() > 0  # the batch being replayed is still on disk

    # meanwhile a new event is spooled; the next replay finishes the old batch first, then the new one
    late = make_event(999)
    dead = fast_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        await AuditRecorder(dead, spool, stream=stream).record(late)
    finally:
        await dead.aclose()

    resumed = AuditRecorder(redis, spool, stream=stream, replay_chunk=20)
    assert await resumed.replay_spool() == 36
    ids = await stream_ids(redis, stream)
    assert ids == [e["id"] for e in events] + [late["id"]]
    assert resumed.spooled_bytes() == 0


async def test_background_replayer_drains_spool_when_redis_returns(ensure_redis_up: RedisProcess, stream: str,
                                                                   tmp_path: Path) -> None:
    redis = fast_redis(ensure_redis_up.url)
    recorder = AuditRecorder(redis, tmp_path / "spool.jsonl", stream=stream, retry_redis_after=0.1)
    replayer = asyncio.create_task(recorder.run_replayer(0.1))
    try:
        ensure_redis_up.kill()
        events = [make_event(i) for i in range(50)]
        for event in events:
            await recorder.record(event)
        await asyncio.sleep(0.3)  # the replayer keeps failing quietly while Redis is down
        assert not replayer.done()
        assert recorder.spooled_bytes() > 0
        ensure_redis_up.start()
        for _ in range(100):
            if recorder.spooled_bytes() == 0:
                break
            await asyncio.sleep(0.1)
        assert await stream_ids(redis, stream) == [e["id"] for e in events]
    finally:
        replayer.cancel()
        await asyncio.gather(replayer, return_exceptions=True)
        await redis.aclose()


async def test_unavailable_when_redis_down_and_spool_unwritable(tmp_path: Path) -> None:
    dead = fast_redis(f"redis://127.0.0.1:{free_port()}/0")
    blocker = tmp_path / "read-only"
    blocker.write_text("a file where the spool directory should be")
    try:
        recorder = AuditRecorder(dead, blocker / "spool" / "audit-spool.jsonl")
        with pytest.raises(AuditUnavailable):
            await recorder.record(make_event(1))
    finally:
        await dead.aclose()


async def test_stream_cap_spools_instead_of_trimming(redis: aioredis.Redis, stream: str, tmp_path: Path) -> None:
    recorder = AuditRecorder(redis, tmp_path / "spool.jsonl", stream=stream, maxlen=10)
    events = [make_event(i) for i in range(15)]
    for event in events:
        await recorder.record(event)
    assert await stream_ids(redis, stream) == [e["id"] for e in events[:10]]
    spooled = [json.loads(line)["event"]["id"] for line in (tmp_path / "spool.jsonl").read_text().splitlines()]
    assert spooled == [e["id"] for e in events[10:]]


class AppliedThenLost:
    """Real Redis whose XADD succeeds but whose reply is lost: the recorder cannot know the event is in."""

    def __init__(self, redis: aioredis.Redis, lose: int) -> None:
        self._redis = redis
        self.lose = lose

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)

    async def xadd(self, *args: Any, **kwargs: Any) -> Any:
        result = await self._redis.xadd(*args, **kwargs)
        if self.lose > 0:
            self.lose -= 1
            raise RedisConnectionError("Connection closed by server.")
        return result


async def test_write_applied_but_reply_lost_is_not_doubled_by_replay(redis: aioredis.Redis, stream: str,
                                                                     tmp_path: Path) -> None:
    recorder = AuditRecorder(AppliedThenLost(redis, lose=3), tmp_path / "spool.jsonl", stream=stream,
                             retry_redis_after=0)
    events = [make_event(i) for i in range(6)]
    for event in events:
        await recorder.record(event)
    lines = (tmp_path / "spool.jsonl").read_text().splitlines()
    assert len(lines) == 3  # the recorder had to assume those three failed
    assert await recorder.replay_spool() == 0
    ids = await stream_ids(redis, stream)
    assert sorted(ids) == sorted(e["id"] for e in events)
    assert recorder.spooled_bytes() == 0
