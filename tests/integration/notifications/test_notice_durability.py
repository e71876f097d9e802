"""The durability bar: the SMTP server stops for a while (a minute by default) while notices keep being
queued by several producers and sent by two senders (as two app processes would); it comes back, and every
notice is delivered exactly once - none lost, none twice.

NOTICE_OUTAGE_SECONDS sets the length of the outage (default 60). Any outage longer than the senders'
capped back-off (2 s here) exercises the same states - every attempt fails, the entries stay pending, the
back-off stays at its cap - so a shorter one (e.g. 15) is a fair quick run while developing.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
import uuid

import pytest

from notifications.notice import key_digest

from .conftest import NoticeEnv

pytestmark = pytest.mark.integration

OUTAGE = float(os.environ.get("NOTICE_OUTAGE_SECONDS", "60"))
PATIENTS = 20
PER_PHASE = 60  # notices queued before, during and after the outage (each phase)


@pytest.mark.timeout(OUTAGE + 180)
async def test_smtp_down_for_a_minute_under_load_every_notice_arrives_once(notice_env: NoticeEnv) -> None:
    env, n = notice_env, notice_env.notifications
    run = uuid.uuid4().hex[:8]
    records = [await env.patient(f"load-{run}-{i}@example.test") for i in range(PATIENTS)]
    keys: list[str] = []

    async def produce(phase: str, spread: float) -> None:
        """PER_PHASE notices from four producers over `spread` seconds, each also asked for twice."""
        async def producer(p: int) -> None:
            for i in range(p, PER_PHASE, 4):
                key = f"{run}:{phase}:{i}"
                record = records[i % PATIENTS]
                for _ in range(2):  # a retried request: the second ask must not queue a second notice
                    await n.notify(f"account:{record.id}", "message", f"/portal/messages/{phase}-{i}", key=key)
                keys.append(key)
                await asyncio.sleep(spread / PER_PHASE * 4)
        await asyncio.gather(*(producer(p) for p in range(4)))

    async with env.sending(consumers=2, backoff_initial=0.2, backoff_max=2.0):
        await produce("before", 2.0)
        env.mail.stop()
        stopped = time.monotonic()
        await produce("during", min(OUTAGE * 0.8, 30.0))
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
        assert await n.outbox.backlog() > 0  # the outage held notices back: they were waiting, not dropped
        env.mail.start()
        await produce("after", 2.0)
        deadline = time.monotonic() + 90
        while (await n.outbox.backlog() or len(env.mail.messages()) < len(keys)) and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        await asyncio.sleep(2.0)  # a duplicate sent late would show up by now

    ours = {f"<{key_digest('message|' + key)}@portal.localhost>" for key in keys}
    seen = collections.Counter(m["Message-ID"] for m in env.mail.messages() if m["Message-ID"] in ours)
    assert len(keys) == 3 * PER_PHASE
    assert set(seen) == ours, f"{len(ours - set(seen))} notices never arrived"
    assert [mid for mid, count in seen.items() if count > 1] == []
    assert await env.redis.xlen("notices:outbox:dead") == 0
