"""How a stream consumer waits, against a real (private) Redis: while its stream is idle a new entry ends
the wait at once and a stop ends it at once; a steady trickle still goes on in batches; after a failed
round (or a crash) its own unacked entries go first."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from audit.consumer import DeliveryFailed, Entry, StreamConsumer

pytestmark = pytest.mark.integration


class Collecting(StreamConsumer):
    """A destination that keeps what it is given, or refuses a round when told to."""

    def __init__(self, redis: aioredis.Redis, **options: Any) -> None:
        super().__init__(redis, **options)
        self.batches: list[list[str]] = []
        self.arrived: list[float] = []
        self.refuse_next = False

    async def deliver(self, batch: list[Entry]) -> int:
        if self.refuse_next:
            self.refuse_next = False
            raise DeliveryFailed("the destination is down")
        self.batches.append([entry.event_id for entry in batch])
        self.arrived.append(time.monotonic())
        await self.accepted(batch)
        return len(batch)


async def add(redis: aioredis.Redis, stream: str, event_id: str) -> None:
    await redis.xadd(stream, {"id": event_id, "event": json.dumps({"id": event_id})})


async def test_an_idle_consumer_takes_a_new_entry_at_once_and_stops_at_once(redis: aioredis.Redis,
                                                                            stream: str) -> None:
    consumer = Collecting(redis, stream=stream, consumer="c1", idle_interval=30.0)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.sleep(1.5)  # idle: past the first rounds, well into a wait
    assert consumer.batches == []
    added = time.monotonic()
    await add(redis, stream, "ev-1")
    while not consumer.batches and time.monotonic() - added < 5:
        await asyncio.sleep(0.01)
    assert consumer.batches == [["ev-1"]]
    # A poll would have found it up to a whole idle interval later; the blocking read ends at once.
    assert consumer.arrived[0] - added < 0.25
    await asyncio.sleep(0.3)  # waiting again
    stopped = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - stopped < 0.5
    assert await redis.exists(consumer.heartbeat_key()) == 0  # retired: the others take over at once
    assert int(await redis.xlen(stream)) == 0


async def test_a_stop_ends_a_long_blocking_wait_at_once(ensure_redis_up: Any, stream: str) -> None:
    # A client without a socket timeout: nothing but the stop bounds the wait (5 s asked).
    patient = aioredis.from_url(ensure_redis_up.url)
    try:
        consumer = Collecting(patient, stream=stream, consumer="c1")
        await consumer.ensure_group()
        consumer._stop = asyncio.Event()
        consumer._next_takeover_check = time.monotonic() + 60
        asyncio.get_running_loop().call_later(0.2, consumer._stop.set)
        started = time.monotonic()
        assert await consumer._read_new(5.0) == []
        assert time.monotonic() - started < 0.6
        await add(patient, stream, "ev-1")  # the abandoned read took nothing that is lost
        consumer._stop = None
        assert await consumer.process_once() == 1
        assert consumer.batches == [["ev-1"]]
    finally:
        await patient.aclose()


async def test_a_steady_trickle_still_goes_on_in_batches(redis: aioredis.Redis, stream: str) -> None:
    consumer = Collecting(redis, stream=stream, consumer="c1", idle_interval=0.6)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.sleep(0.3)
    await add(redis, stream, "ev-1")  # the first after a quiet spell: at once
    await asyncio.sleep(0.1)
    for n in (2, 3, 4):  # these come while the consumer pauses after its one-event round
        await add(redis, stream, f"ev-{n}")
        await asyncio.sleep(0.05)
    for _ in range(300):
        if sum(map(len, consumer.batches)) == 4:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert consumer.batches == [["ev-1"], ["ev-2", "ev-3", "ev-4"]]


async def test_after_a_failed_round_its_own_unacked_entries_go_first(redis: aioredis.Redis, stream: str) -> None:
    consumer = Collecting(redis, stream=stream, consumer="c1")
    await add(redis, stream, "ev-1")
    await add(redis, stream, "ev-2")
    assert await consumer.process_once() == 2
    assert consumer.batches == [["ev-1", "ev-2"]]
    await add(redis, stream, "ev-3")
    await add(redis, stream, "ev-4")
    consumer.refuse_next = True
    with pytest.raises(DeliveryFailed):
        await consumer.process_once()  # read ev-3 and ev-4, could not deliver them: they stay pending to c1
    await add(redis, stream, "ev-5")
    assert await consumer.process_once() == 2
    assert await consumer.process_once() == 1
    assert consumer.batches == [["ev-1", "ev-2"], ["ev-3", "ev-4"], ["ev-5"]]
    assert int((await redis.xpending(stream, "exporter"))["pending"]) == 0


async def test_a_consumer_restarted_after_a_crash_sends_what_it_held_first(redis: aioredis.Redis,
                                                                          stream: str) -> None:
    crashed = Collecting(redis, stream=stream, consumer="c1")
    await add(redis, stream, "ev-1")
    crashed.refuse_next = True
    with pytest.raises(DeliveryFailed):
        await crashed.process_once()
    await add(redis, stream, "ev-2")
    restarted = Collecting(redis, stream=stream, consumer="c1")  # the same name, a new process
    assert await restarted.process_once() == 1
    assert await restarted.process_once() == 1
    assert restarted.batches == [["ev-1"], ["ev-2"]]
