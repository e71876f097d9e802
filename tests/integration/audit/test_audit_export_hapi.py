"""The exporter and the access log against the real HAPI FHIR server (never stopped: the "down" EHR is a
loopback proxy this test stops)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from audit.access_log import access_log, describe
from audit.events import EventContext, rest_event
from audit.exporter import AuditExporter, ExportFailed
from audit.recorder import AuditRecorder
from fhir_gateway.upstream import Upstream

from .conftest import TcpProxy, count_tagged, tagged_ids, upstream_for

pytestmark = pytest.mark.integration


def make_event(n: int, tag: tuple[str, str], patient: str = "Patient/pt-0001") -> dict[str, Any]:
    # Only references that exist in the default data set: HAPI may create placeholders for unknown ones.
    return rest_event(interaction="read", outcome="0", action="R", entity_refs=[], patient_refs=[patient],
                      account_ref=patient, account_id="acct-test", client_id="audit-tests", on_behalf_of=None,
                      source_ip="127.0.0.1", request_id=f"req-{n}", query=None,
                      context=EventContext(tag_system=tag[0], tag_code=tag[1]))


async def record_all(redis: aioredis.Redis, stream: str, events: list[dict[str, Any]], tmp_path: Any) -> None:
    recorder = AuditRecorder(redis, tmp_path / "spool.jsonl", stream=stream)
    for event in events:
        await recorder.record(event)


async def drain(exporter: AuditExporter) -> int:
    total = 0
    while exported := await exporter.export_once():
        total += exported
    return total


async def test_exporter_moves_every_record_to_hapi(redis: aioredis.Redis, stream: str, ehr: Upstream, hapi: str,
                                                   run_tag: tuple[str, str], tmp_path: Any) -> None:
    events = [make_event(i, run_tag) for i in range(120)]
    await record_all(redis, stream, events, tmp_path)
    exporter = AuditExporter(redis, ehr, stream=stream, consumer="hapi-1", batch_size=50)
    assert await drain(exporter) == 120
    assert await count_tagged(hapi, run_tag) == 120
    assert sorted(await tagged_ids(hapi, run_tag)) == sorted(e["id"] for e in events)
    assert await redis.xlen(stream) == 0
    # the EHR kept what we wrote
    stored = (await ehr.request("GET", f"AuditEvent/{events[0]['id']}")).json()
    assert stored["entity"][0]["what"]["reference"] == "Patient/pt-0001"
    assert stored["agent"][0]["who"]["reference"] == "Patient/pt-0001"


async def test_ehr_down_then_up_loses_and_duplicates_nothing(
    redis: aioredis.Redis, stream: str, hapi: str, ehr_proxy: TcpProxy, run_tag: tuple[str, str], tmp_path: Any
) -> None:
    events = [make_event(i, run_tag) for i in range(60)]
    await record_all(redis, stream, events, tmp_path)
    via_proxy = upstream_for(ehr_proxy.base_url)
    exporter = AuditExporter(redis, via_proxy, stream=stream, consumer="hapi-down", batch_size=25,
                             idle_interval=0.05, backoff_initial=0.05, backoff_max=0.3)
    try:
        await ehr_proxy.stop()
        with pytest.raises(ExportFailed):
            await exporter.export_once()
        assert await redis.xlen(stream) == 60  # nothing acked, nothing deleted

        stop = asyncio.Event()
        task = asyncio.create_task(exporter.run(stop))
        await asyncio.sleep(1.0)  # several failed attempts with backoff
        assert not task.done()
        assert await redis.xlen(stream) == 60
        await ehr_proxy.start()
        for _ in range(200):
            if await redis.xlen(stream) == 0:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        await via_proxy.client.aclose()
    ids = await tagged_ids(hapi, run_tag)
    assert len(ids) == 60 and set(ids) == {e["id"] for e in events}


class SendThenHang:
    """The EHR gets (and applies) the transaction, then the exporter is stuck until it is killed."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner
        self.sent = asyncio.Event()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.inner.request(method, path, **kwargs)
        self.sent.set()
        await asyncio.Event().wait()  # never returns: the task is cancelled here, before any ack
        return response


@pytest.mark.parametrize("same_consumer", [True, False], ids=["restart", "other-replica"])
async def test_exporter_killed_after_send_before_ack(
    redis: aioredis.Redis, stream: str, ehr: Upstream, hapi: str, run_tag: tuple[str, str], tmp_path: Any,
    same_consumer: bool,
) -> None:
    events = [make_event(i, run_tag) for i in range(40)]
    await record_all(redis, stream, events, tmp_path)
    hanging = SendThenHang(ehr)
    doomed = AuditExporter(redis, hanging, stream=stream, consumer="crashy", batch_size=30)
    task = asyncio.create_task(doomed.export_once())
    await asyncio.wait_for(hanging.sent.wait(), 30)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await count_tagged(hapi, run_tag) == 30  # the first batch reached the EHR ...
    assert await redis.xlen(stream) == 40  # ... but was never acked

    consumer = "crashy" if same_consumer else "survivor"
    revived = AuditExporter(redis, ehr, stream=stream, consumer=consumer, batch_size=30, claim_idle=0.05)
    await asyncio.sleep(0.1)
    assert await drain(revived) == 40
    ids = await tagged_ids(hapi, run_tag)
    assert Counter(ids).most_common(1)[0][1] == 1  # the resent batch duplicated nothing
    assert set(ids) == {e["id"] for e in events}
    assert await redis.xlen(stream) == 0


async def test_access_log_shows_a_patient_only_their_own_events(
    redis: aioredis.Redis, stream: str, ehr: Upstream, run_tag: tuple[str, str], tmp_path: Any
) -> None:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    mine = [make_event(i, run_tag, "Patient/pt-0001") for i in range(5)]
    theirs = [make_event(i, run_tag, "Patient/pt-0002") for i in range(5)]
    await record_all(redis, stream, [e for pair in zip(mine, theirs, strict=True) for e in pair], tmp_path)
    await drain(AuditExporter(redis, ehr, stream=stream, consumer="log", batch_size=100))

    log_a = await access_log(ehr, "pt-0001", count=200, since=since)
    ids_a = {e["id"] for e in log_a}
    assert {e["id"] for e in mine} <= ids_a
    assert not ids_a & {e["id"] for e in theirs}
    assert all(any(x.get("what", {}).get("reference") == "Patient/pt-0001" for x in e["entity"]) for e in log_a)
    recorded = [e["recorded"] for e in log_a]
    assert recorded == sorted(recorded, reverse=True)  # newest first
    newest_mine = next(e for e in log_a if e["id"] == mine[-1]["id"])
    words = describe(newest_mine, {"audit-tests": "Audit test app"}, patient="pt-0001")
    assert (words["who"], words["what"], words["app"]) == ("You", "viewed your personal details", "Audit test app")

    log_b = await access_log(ehr, "pt-0002", count=200, since=since)
    assert {e["id"] for e in theirs} <= {e["id"] for e in log_b}
    assert not {e["id"] for e in log_b} & {e["id"] for e in mine}
    assert json.dumps(log_b).count("Patient/pt-0001") == 0


async def test_failed_access_to_unknown_resource_creates_nothing_in_the_ehr(
    redis: aioredis.Redis, stream: str, ehr: Upstream, hapi: str, run_tag: tuple[str, str], tmp_path: Any
) -> None:
    missing = f"Observation/audit-missing-{run_tag[1][:12]}"
    event = rest_event(interaction="read", outcome="4", action="R", entity_refs=[missing],
                       patient_refs=["Patient/pt-0001"], account_ref="Device/audit-test-backend", account_id=None,
                       client_id="audit-test-backend", on_behalf_of=None, source_ip="127.0.0.1", request_id="r",
                       query=None, context=EventContext(tag_system=run_tag[0], tag_code=run_tag[1]))
    await record_all(redis, stream, [event], tmp_path)
    assert await drain(AuditExporter(redis, ehr, stream=stream, consumer="x", batch_size=10)) == 1
    assert await count_tagged(hapi, run_tag) == 1
    assert (await ehr.request("GET", missing)).status_code == 404  # no placeholder Observation
    assert (await ehr.request("GET", "Device/audit-test-backend")).status_code == 404  # nor Device


async def test_event_naming_a_since_deleted_patient_still_reaches_the_ehr(
    redis: aioredis.Redis, stream: str, ehr: Upstream, hapi: str, run_tag: tuple[str, str], tmp_path: Any
) -> None:
    # A patient (or caregiver) record deleted in the EHR after the access: HAPI refuses a literal
    # reference to it, so the exporter stores the event with logical references instead of dropping it.
    gone = f"audit-gone-{run_tag[1][:12]}"
    created = await ehr.request("PUT", f"Patient/{gone}", json={"resourceType": "Patient", "id": gone})
    assert created.status_code in (200, 201)
    assert (await ehr.request("DELETE", f"Patient/{gone}")).status_code in (200, 204)
    context = EventContext(tag_system=run_tag[0], tag_code=run_tag[1])
    event = rest_event(interaction="read", outcome="0", action="R", entity_refs=[f"Patient/{gone}"],
                       patient_refs=[f"Patient/{gone}"], account_ref=f"Patient/{gone}", account_id="acct-gone",
                       client_id="audit-tests", on_behalf_of=None, source_ip="127.0.0.1", request_id="r-gone",
                       query=None, context=context)
    literal = await ehr.request("PUT", f"AuditEvent/{event['id']}-probe", json={**event, "id": f"{event['id']}-probe"})
    assert literal.status_code == 409, "precondition: HAPI refuses a literal reference to a deleted resource"
    await record_all(redis, stream, [event], tmp_path)
    exporter = AuditExporter(redis, ehr, stream=stream, consumer="x", batch_size=10, context=context)
    assert await drain(exporter) == 1
    assert await redis.xlen(f"{stream}:dead") == 0
    stored = (await ehr.request("GET", f"AuditEvent/{event['id']}")).json()
    whats = [e["what"] for e in stored["entity"] if "identifier" in e["what"] or "reference" in e["what"]]
    logical = {"type": "Patient", "identifier": {"system": context.reference_system, "value": f"Patient/{gone}"}}
    assert logical in whats and stored["agent"][0]["who"] == logical
