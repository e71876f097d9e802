"""The recorder's fallback when Redis fails: the spool takes every event, and refuses loudly when it cannot."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from audit.events import rest_event
from audit.recorder import AuditRecorder, AuditUnavailable


class DeadRedis:
    """Stands in for a Redis that refuses every connection."""

    def __init__(self) -> None:
        self.calls = 0

    def register_script(self, script: str) -> Any:
        return object()

    async def xadd(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise RedisConnectionError("Connection refused")

    async def xgroup_create(self, *args: Any, **kwargs: Any) -> Any:
        raise RedisConnectionError("Connection refused")


def make_event(n: int) -> dict[str, Any]:
    return rest_event(interaction="read", outcome="0", action="R", entity_refs=[f"Observation/o-{n}"],
                      patient_refs=["Patient/pt-0001"], account_ref="Patient/pt-0001", account_id="a",
                      client_id="c", on_behalf_of=None, source_ip="127.0.0.1", request_id=f"r-{n}", query=None)


async def test_events_go_to_the_spool_when_redis_is_down(tmp_path: Path) -> None:
    redis = DeadRedis()
    recorder = AuditRecorder(redis, tmp_path / "state" / "audit-spool.jsonl")
    events = [make_event(i) for i in range(200)]
    await asyncio.gather(*(recorder.record(e) for e in events))
    lines = (tmp_path / "state" / "audit-spool.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["event"]["id"] for line in lines) == sorted(e["id"] for e in events)
    assert (tmp_path / "state" / "audit-spool.jsonl").stat().st_mode & 0o777 == 0o600
    # after the first failure the recorder stops waiting on the dead Redis for a while
    assert redis.calls < 50
    assert recorder.spooled_bytes() > 0


async def test_unavailable_when_redis_and_spool_both_fail(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    recorder = AuditRecorder(DeadRedis(), blocker / "audit-spool.jsonl")
    with pytest.raises(AuditUnavailable):
        await recorder.record(make_event(1))


async def test_a_failed_spool_write_is_reported_once_not_again_as_never_retrieved(tmp_path: Path) -> None:
    """Every caller of a failed group write is refused; none of their futures is left for the event loop to
    report later as an exception nobody looked at (noise in the logs that hides real errors)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    recorder = AuditRecorder(DeadRedis(), blocker / "audit-spool.jsonl")
    unseen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unseen.append(context))
    try:
        results = await asyncio.gather(*(recorder.record(make_event(i)) for i in range(20)), return_exceptions=True)
        assert all(isinstance(r, AuditUnavailable) for r in results)
        await asyncio.sleep(0)  # the done-callbacks run
        gc.collect()  # a future whose exception was never retrieved is reported when collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert [c.get("message") for c in unseen] == []


async def test_event_without_id_is_a_programming_error(tmp_path: Path) -> None:
    recorder = AuditRecorder(DeadRedis(), tmp_path / "spool.jsonl")
    with pytest.raises(ValueError):
        await recorder.record({"resourceType": "AuditEvent"})


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from audit.settings import AuditSettings

    monkeypatch.setenv("PORTAL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_AUDIT_EXPORT_BATCH_SIZE", "25")
    monkeypatch.setenv("PORTAL_PUBLIC_URL", "https://portal.example.org")
    settings = AuditSettings()
    assert settings.spool_path == tmp_path / "audit-spool.jsonl"
    assert settings.audit_export_batch_size == 25
    assert settings.audit_stream == "audit:events"
    ctx = settings.event_context()
    assert ctx.auth_code_system == "https://portal.example.org/CodeSystem/portal-auth-event"
    assert ctx.tag_system == "https://portal.example.org/CodeSystem/audit-source"


async def test_cancelled_callers_do_not_lose_other_callers_lines(tmp_path: Path) -> None:
    recorder = AuditRecorder(DeadRedis(), tmp_path / "spool.jsonl")
    events = [make_event(i) for i in range(100)]
    tasks = [asyncio.create_task(recorder.record(e)) for e in events]
    await asyncio.sleep(0)
    for task in tasks[::7]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    completed = {e["id"] for e, r in zip(events, results, strict=True) if r is None}
    lines = (tmp_path / "spool.jsonl").read_text().splitlines()
    spooled = {json.loads(line)["event"]["id"] for line in lines}
    assert completed <= spooled  # every caller that was told "recorded" is on disk
    assert len(lines) == len(spooled)
