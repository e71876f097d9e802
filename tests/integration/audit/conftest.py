"""Fixtures for the audit integration tests.

- `audit_redis`: a private redis-server (own port, AOF with fsync always, in a temp dir) that tests may
  kill and restart; the shared Redis on 6379 is never touched.
- `hapi`: the shared HAPI FHIR server (never stopped), started through the session fixture when needed.
- `TcpProxy`: a loopback TCP proxy in front of HAPI, stopped and started to make "the EHR" go down and up.
- `postgres_url`: a private PostgreSQL server for the audit store on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from audit.store import decode_event
from devstack.procs import free_port
from devstack.services import redis_args
from fhir_gateway.upstream import Upstream, make_client
from tests.conftest import RedisServer
from tests.tcp_proxy import TcpProxy

HAPI_BASE = os.environ.get("PORTAL_FHIR_BASE_URL", "http://127.0.0.1:8080/fhir").rstrip("/")
TAG_SYSTEM = "http://127.0.0.1:8000/CodeSystem/audit-test-run"


RedisProcess = RedisServer


def durable_redis(port: int, data_dir: Path) -> RedisServer:
    """Survives kill -9 with its data: AOF with fsync on every write."""
    cmd = [*redis_args(port, data_dir, persistent=True), "--appendfsync", "always"]
    return RedisServer(port, data_dir, data_dir / "redis.log", cmd=cmd)


@contextlib.contextmanager
def redis_process(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[RedisProcess]:
    """A private redis-server in its own temp dir, killed afterwards."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = durable_redis(free_port(), tmp_path_factory.mktemp(name))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def audit_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with redis_process(tmp_path_factory, "audit-redis") as server:
        yield server


@pytest.fixture
def ensure_redis_up(audit_redis: RedisProcess) -> Iterator[RedisProcess]:
    """Guarantees the private Redis runs before and after a test that kills it."""
    if not audit_redis.running():
        audit_redis.start()
    yield audit_redis
    if not audit_redis.running():
        audit_redis.start()


def fast_redis(url: str) -> aioredis.Redis:
    # Fail fast, no hidden retries: the tests watch what the recorder does when Redis dies.
    return aioredis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0, retry=Retry(NoBackoff(), 0),
                             decode_responses=False)


@pytest.fixture
async def redis(ensure_redis_up: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    client = fast_redis(ensure_redis_up.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def stream() -> str:
    return f"audit:test:{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def hapi(ehr_base_url: str) -> str:
    # Through the session fixture, so HAPI is started (and loaded) when it is not running yet.
    return ehr_base_url.rstrip("/")


def upstream_for(base_url: str) -> Upstream:
    client = make_client(base_url, connect_timeout=1.0, read_timeout=30.0, max_connections=10)
    return Upstream(client, base_url, retries=0)


@pytest.fixture
async def ehr(hapi: str) -> AsyncIterator[Upstream]:
    upstream = upstream_for(hapi)
    try:
        yield upstream
    finally:
        await upstream.client.aclose()


@pytest.fixture
def run_tag() -> tuple[str, str]:
    """A meta.tag unique to this test, so HAPI can count exactly this test's events."""
    return TAG_SYSTEM, uuid.uuid4().hex


async def count_tagged(hapi: str, tag: tuple[str, str]) -> int:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(
            f"{hapi}/AuditEvent", params={"_tag": f"{tag[0]}|{tag[1]}", "_summary": "count"},
            headers={"Cache-Control": "no-cache"},  # HAPI reuses search results for a minute otherwise
        )
        response.raise_for_status()
        return int(response.json()["total"])


async def tagged_ids(hapi: str, tag: tuple[str, str]) -> list[str]:
    ids: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        url: str | None = f"{hapi}/AuditEvent?_tag={tag[0]}|{tag[1]}&_count=500&_elements=id"
        while url:
            response = await client.get(url, headers={"Cache-Control": "no-cache"})
            response.raise_for_status()
            bundle = response.json()
            ids += [e["resource"]["id"] for e in bundle.get("entry", [])]
            url = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
    return ids


@pytest.fixture
async def ehr_proxy(hapi: str) -> AsyncIterator[TcpProxy]:
    url = httpx.URL(hapi)
    proxy = TcpProxy(url.host, url.port or 80, url.path)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


def request_id_of(event: dict[str, Any]) -> str | None:
    """The X-Request-Id an AuditEvent records (its request-id entity)."""
    for entity in event.get("entity") or []:
        if (entity.get("type") or {}).get("code") == "XrequestId":
            return entity["what"]["identifier"]["value"]
    return None


# -- a private PostgreSQL (for the audit store on PostgreSQL) ------------------------------------------------
def _pg_bin(program: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(program)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL server on a free port, in a temp dir, stopped afterwards (Debian's postgresql
    package; as root the server runs as the `postgres` user, as PostgreSQL insists)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (./stack test installs it)")
    data = Path(tempfile.mkdtemp(prefix="audit-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(data, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    run(initdb, "-D", str(data / "db"), "-A", "trust", "-U", "portal", "--no-sync")
    run(pg_ctl, "-D", str(data / "db"), "-l", str(data / "server.log"), "-w", "-t", "60", "start",
        "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1")
    try:
        yield f"postgresql://portal@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            run(pg_ctl, "-D", str(data / "db"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)


async def fresh_database(postgres_url: str) -> str:
    """A new, empty database on the private server; its URL."""
    import asyncpg

    name = f"audit_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


def stored_events(state_dir: Path) -> list[dict[str, Any]]:
    """The events a gateway with the state directory `state_dir` has moved into its audit store."""
    store = state_dir / "audit.sqlite3"
    if not store.exists():
        return []
    with contextlib.closing(sqlite3.connect(store, timeout=10)) as db:
        return [decode_event(row[0]) for row in db.execute("SELECT body FROM audit_event")]
