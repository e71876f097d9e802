"""`portal-audit requeue-dead`: a dead-lettered event goes back on the stream and reaches the EHR once."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from audit.cli import requeue_dead
from audit.exporter import AuditExporter
from fhir_gateway.upstream import Upstream

from .conftest import count_tagged
from .test_audit_export_hapi import drain, make_event

pytestmark = pytest.mark.integration


async def test_requeued_dead_letters_are_exported_once(
    redis: aioredis.Redis, stream: str, ehr: Upstream, hapi: str, run_tag: tuple[str, str], tmp_path: Any
) -> None:
    events = [make_event(i, run_tag) for i in range(3)]
    for event in events:  # as the exporter leaves them after a refusal
        await redis.xadd(f"{stream}:dead", {"id": event["id"], "event": json.dumps(event), "status": "422",
                                            "reason": "refused", "stream_ids": "1-0"})
    await redis.xadd(f"{stream}:dead", {"id": "", "event": "not json", "status": "0", "reason": "unreadable"})

    assert await requeue_dead(redis, stream) == 3
    assert await redis.xlen(f"{stream}:dead") == 1  # the unreadable entry stays for an operator
    assert [json.loads(f[b"event"])["id"] for _, f in await redis.xrange(stream)] == [e["id"] for e in events]

    exporter = AuditExporter(redis, ehr, stream=stream, consumer="requeue", batch_size=10)
    assert await drain(exporter) == 3
    assert await count_tagged(hapi, run_tag) == 3
    # Requeued twice (e.g. an operator ran it again from a stale copy): still one AuditEvent each.
    for event in events:
        await redis.xadd(stream, {"id": event["id"], "event": json.dumps(event)})
    assert await drain(exporter) == 3
    assert await count_tagged(hapi, run_tag) == 3
