"""`portal-audit-worker` beside a gateway that only records (`PORTAL_AUDIT_EXPORT=false`), as `./stack up` runs
them: the gateway's events reach the audit store and the EHR through the worker, each once; nothing is lost
while no worker runs; a worker stopped with SIGTERM finishes cleanly and hands over at once.

Real processes throughout: uvicorn, the worker, a private Redis, the real HAPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from devstack.procs import spawn
from devstack.services import ROOT, audit_worker_cmd
from tests.conftest import start_gateway_process

from .conftest import RedisProcess, count_tagged, fast_redis, redis_process, tagged_ids
from .test_audit_ehr_outage import wait_for
from .test_audit_export_hapi import make_event, record_all

pytestmark = pytest.mark.integration

EVENTS = 25


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with redis_process(tmp_path_factory, "worker-redis") as server:
        yield server


@contextlib.contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = spawn(audit_worker_cmd(), log, env=env, cwd=ROOT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def stored_ids(store: Path) -> list[str]:
    if not store.exists():
        return []
    with contextlib.closing(sqlite3.connect(store, timeout=10)) as db:
        try:
            return [row[0] for row in db.execute("SELECT id FROM audit_event")]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []  # the worker made the file and has not created its schema yet
            raise


def node(tmp_path: Path) -> tuple[str, Path]:
    """A stream and a state directory (spool, audit store) of the test's own."""
    state = tmp_path / "node"
    state.mkdir()
    return f"audit:it-worker:{uuid.uuid4().hex[:10]}", state


def env_for(redis_url: str, ehr: str, stream: str, state: Path, **extra: str) -> dict[str, str]:
    return {"PORTAL_FHIR_BASE_URL": ehr, "PORTAL_REDIS_URL": redis_url, "PORTAL_CACHE_ENABLED": "false",
            "PORTAL_STATE_DIR": str(state), "PORTAL_AUDIT_STREAM": stream, "PORTAL_AUDIT_EXPORT_INTERVAL": "0.2",
            "PORTAL_AUDIT_EXPORT_RATE": "0", "PORTAL_AUDIT_EXPORT_SHARE": "1",
            "PORTAL_AUDIT_HEARTBEAT_TTL": "3", **extra}


async def test_a_worker_moves_what_a_recording_only_gateway_records(
    own_redis: RedisProcess, hapi: str, run_tag: tuple[str, str], tmp_path: Path,
) -> None:
    stream, state = node(tmp_path)
    env = env_for(own_redis.url, hapi, stream, state)
    redis = fast_redis(own_redis.url)
    gw = start_gateway_process(state, {**env, "PORTAL_AUDIT_EXPORT": "false"})
    try:
        # Audited by the gateway without the EHR: token requests refused for lack of a grant.
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
            for _ in range(5):
                assert (await client.post("/auth/token", data={"client_id": "it-app"})).status_code == 400
        # And events of patient data access, tagged so the EHR can count them.
        await record_all(redis, stream, [make_event(n, run_tag) for n in range(EVENTS)], tmp_path)
        await asyncio.sleep(1.5)  # longer than the idle interval: a gateway that moved the stream would have
        assert await redis.xlen(stream) == EVENTS + 5, "a recording-only gateway moved the stream"
        assert stored_ids(state / "audit.sqlite3") == []

        with worker({**env, "PORTAL_AUDIT_EXPORT_CONSUMER": "worker-a"}, tmp_path / "worker-a.log") as proc:
            async def moved() -> bool:
                return await redis.xlen(stream) == 0 and len(stored_ids(state / "audit.sqlite3")) == EVENTS + 5

            await wait_for(moved, 30, "the worker to move the stream into the store")

            async def exported() -> bool:
                return await count_tagged(hapi, run_tag) >= EVENTS

            await wait_for(exported, 60, "the worker to export the events to the EHR")
            assert proc.poll() is None
        ids = await tagged_ids(hapi, run_tag)
        assert len(ids) == EVENTS and len(set(ids)) == EVENTS
        assert len(set(stored_ids(state / "audit.sqlite3"))) == EVENTS + 5
    finally:
        gw.started.stop()
        await redis.aclose()


async def test_a_stopped_worker_hands_over_at_once_and_loses_nothing(
    own_redis: RedisProcess, hapi: str, run_tag: tuple[str, str], tmp_path: Path,
) -> None:
    stream, state = node(tmp_path)
    env = env_for(own_redis.url, hapi, stream, state, PORTAL_AUDIT_REPOSITORY="off")
    store = state / "audit.sqlite3"
    redis: aioredis.Redis = fast_redis(own_redis.url)
    try:
        with worker({**env, "PORTAL_AUDIT_EXPORT_CONSUMER": "worker-a"}, tmp_path / "worker-a.log") as a:
            await record_all(redis, stream, [make_event(n, run_tag) for n in range(10)], tmp_path)

            async def first_stored() -> bool:
                return len(stored_ids(store)) == 10

            await wait_for(first_stored, 30, "the first worker to store the first events")
            heartbeat = f"{{{stream}}}:alive:exporter:worker-a"
            assert await redis.exists(heartbeat)
            a.send_signal(signal.SIGTERM)
            assert a.wait(15) == 0
            assert not await redis.exists(heartbeat), "a stopped worker left its heartbeat: take-over would wait"
        assert "audit worker stopped" in (tmp_path / "worker-a.log").read_text()

        # Recorded while no worker runs: kept in the stream, moved by the next worker.
        await record_all(redis, stream, [make_event(n, run_tag) for n in range(10, EVENTS)], tmp_path)
        await asyncio.sleep(1)
        assert await redis.xlen(stream) == EVENTS - 10
        with worker({**env, "PORTAL_AUDIT_EXPORT_CONSUMER": "worker-b"}, tmp_path / "worker-b.log"):
            async def all_stored() -> bool:
                return await redis.xlen(stream) == 0 and len(stored_ids(store)) == EVENTS

            await wait_for(all_stored, 30, "the second worker to store the rest")
        assert len(set(stored_ids(store))) == EVENTS
    finally:
        await redis.aclose()
