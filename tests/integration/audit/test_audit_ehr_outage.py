"""The EHR goes away in the middle of a running export, while events keep being recorded, and comes back:
every event reaches the EHR exactly once.

test_audit_export_hapi.py covers an EHR that is down before the export starts and an exporter killed
between send and ack. Here the export loop itself runs through the outage, and the outage begins in the
worst place: the EHR has applied a transaction but its answer never arrives. The shared HAPI server is
never stopped; "the EHR" is a loopback proxy in front of it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from audit.exporter import AuditExporter
from audit.recorder import AuditRecorder
from tests.tcp_proxy import FaultyProxy

from .conftest import count_tagged, tagged_ids, upstream_for
from .test_audit_export_hapi import make_event

pytestmark = pytest.mark.integration


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


async def test_ehr_lost_mid_export_then_back_loses_and_doubles_nothing(
    redis: aioredis.Redis, stream: str, hapi: str, run_tag: tuple[str, str], tmp_path: Path
) -> None:
    url = httpx.URL(hapi)
    proxy = FaultyProxy(url.host, url.port or 80, url.path)
    await proxy.start()
    via_proxy = upstream_for(proxy.base_url)
    recorder = AuditRecorder(redis, tmp_path / "spool.jsonl", stream=stream)
    exporter = AuditExporter(redis, via_proxy, stream=stream, consumer="outage", batch_size=20,
                             idle_interval=0.05, backoff_initial=0.05, backoff_max=0.5)
    events = [make_event(i, run_tag) for i in range(150)]
    recorded = 0

    async def produce() -> None:
        nonlocal recorded
        for event in events:
            await recorder.record(event)
            recorded += 1
            await asyncio.sleep(0.01)

    stop = asyncio.Event()
    producer = asyncio.create_task(produce())
    export = asyncio.create_task(exporter.run(stop))
    try:
        async def some_exported() -> bool:
            return await count_tagged(hapi, run_tag) >= 20

        await wait_for(some_exported, 60, "the first batches to reach the EHR")
        proxy.lose = lambda _line: True  # the next transaction is applied, its answer lost ...

        async def answer_lost() -> bool:
            return proxy.lost > 0

        await wait_for(answer_lost, 30, "a transaction whose answer is lost")
        await proxy.stop()  # ... and then the EHR is gone altogether
        at_outage = await count_tagged(hapi, run_tag)
        await asyncio.sleep(1.0)  # several failed attempts, with backoff, while events keep coming
        assert not export.done()
        assert await count_tagged(hapi, run_tag) == at_outage  # nothing got through meanwhile
        assert await redis.xlen(stream) > 0  # what was not accepted waits in the stream

        proxy.lose = None
        await proxy.start()
        await asyncio.wait_for(producer, 60)

        async def drained() -> bool:
            return await redis.xlen(stream) == 0

        await wait_for(drained, 90, "the export to catch up")
    finally:
        stop.set()
        producer.cancel()
        await asyncio.gather(export, producer, return_exceptions=True)
        await proxy.stop()
        await via_proxy.client.aclose()

    assert recorded == len(events)
    ids = await tagged_ids(hapi, run_tag)
    assert Counter(ids).most_common(1)[0][1] == 1, "an event reached the EHR twice"
    assert set(ids) == {e["id"] for e in events}, "an event never reached the EHR"
    assert await redis.xlen(f"{stream}:dead") == 0  # nothing was refused along the way
