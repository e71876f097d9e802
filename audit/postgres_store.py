"""The audit store on PostgreSQL, shared by gateway replicas on several nodes (`PORTAL_AUDIT_STORE=postgresql`).

Same layout and meaning as the SQLite store (`store.py`, `sqlite_store.py`); what differs:
- a pool of asyncpg connections instead of a thread pool;
- leases are timed by the database's clock, so replicas whose clocks differ still agree who holds a job;
- the schema is created on first connection under an advisory lock (replicas starting together do not
  race); a database that is down at start delays the store's work, it does not stop the gateway.
Commits are durable (PostgreSQL's default `synchronous_commit`) before the stream entry is acked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from .access_log import AccessLogPage
from .store import Pending, StoredEvent, StoreUnavailable, bound_ms, decode_event, decode_payload

log = logging.getLogger("audit.postgres_store")

SCHEMA_LOCK = 0x6175646974  # "audit": the advisory lock id that serialises schema creation
SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_event (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    recorded_ms BIGINT NOT NULL,
    patients TEXT NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_event_recorded ON audit_event (recorded_ms);
CREATE TABLE IF NOT EXISTS audit_patient (
    patient TEXT NOT NULL,
    recorded_ms BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (patient, recorded_ms, seq)
);
CREATE TABLE IF NOT EXISTS export_queue (seq BIGINT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS export_refused (
    seq BIGINT PRIMARY KEY,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    refused_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ms BIGINT NOT NULL);
"""
FAR = 1 << 62

_FAILURES: tuple[type[BaseException], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class PostgresAuditStore:
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 5, timeout: float = 10.0) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._open = False
        self._connecting = asyncio.Lock()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        if not self._open:
            raise StoreUnavailable("the audit store is not open")
        try:
            pool = self._pool or await self._connect()
            async with pool.acquire(timeout=self.timeout) as conn:
                yield conn
        except _FAILURES as exc:
            raise StoreUnavailable(f"audit store: {type(exc).__name__}: {exc}") from exc

    async def _connect(self) -> asyncpg.Pool:
        """The pool, made (and the schema created) on first use: a database that is down when the gateway
        starts only postpones the store's work, as if it had gone down later."""
        async with self._connecting:
            if self._pool is None:
                pool = await asyncpg.create_pool(self.dsn, min_size=self.min_size, max_size=self.max_size,
                                                 timeout=self.timeout, command_timeout=60)
                try:
                    async with pool.acquire(timeout=self.timeout) as conn, conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                        await conn.execute(SCHEMA)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
            return self._pool

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect now if the database answers; if not, every later call tries again (StoreUnavailable)."""
        self._open = True
        try:
            async with self._conn():
                pass
        except StoreUnavailable as exc:
            log.warning("audit store not reachable yet; retrying on use: %s", exc)

    async def close(self) -> None:
        self._open = False
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- writing --------------------------------------------------------------------------------------------
    async def add(self, events: Sequence[StoredEvent], *, export: bool) -> int:
        if not events:
            return 0
        added = 0
        async with self._conn() as conn, conn.transaction():
            for event in events:
                seq = await conn.fetchval(
                    "INSERT INTO audit_event (id, recorded_ms, patients, body) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (id) DO NOTHING RETURNING seq",
                    event.event_id, event.recorded_ms, " ".join(event.patients), event.body)
                if seq is None:
                    continue  # stored before (a redelivered stream entry): nothing twice
                added += 1
                await conn.executemany("INSERT INTO audit_patient (patient, recorded_ms, seq) VALUES ($1, $2, $3)",
                                       [(patient, event.recorded_ms, seq) for patient in event.patients])
                if export:
                    await conn.execute("INSERT INTO export_queue (seq) VALUES ($1)", seq)
        return added

    # -- the access log -------------------------------------------------------------------------------------
    async def page(self, patient_id: str, *, count: int = 50, since: str | None = None, until: str | None = None,
                   before: str | None = None) -> AccessLogPage:
        patient = patient_id if patient_id.startswith("Patient/") else f"Patient/{patient_id}"
        low = bound_ms(since, "ge") if since else -FAR
        high = min(bound_ms(until, "le") if until else FAR, bound_ms(before, "lt") - 1 if before else FAR)
        count = max(1, count)
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT e.body FROM audit_patient p JOIN audit_event e ON e.seq = p.seq "
                "WHERE p.patient = $1 AND p.recorded_ms BETWEEN $2 AND $3 "
                "ORDER BY p.recorded_ms DESC, p.seq DESC LIMIT $4", patient, low, high, count)
        return AccessLogPage([decode_event(row[0]) for row in rows], more=len(rows) >= count)

    # -- leases ---------------------------------------------------------------------------------------------
    async def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        async with self._conn() as conn:
            held = await conn.fetchval(
                # the database's clock: replicas on several nodes agree on when a lease ends
                "INSERT INTO lease (name, holder, expires_ms) "
                "VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $3) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms "
                "WHERE lease.holder = excluded.holder "
                "OR lease.expires_ms < (extract(epoch FROM clock_timestamp()) * 1000)::bigint RETURNING holder",
                name, holder, int(ttl * 1000))
        return held == holder

    async def release_lease(self, name: str, holder: str) -> None:
        async with self._conn() as conn:
            await conn.execute("DELETE FROM lease WHERE name = $1 AND holder = $2", name, holder)

    # -- the export queue -----------------------------------------------------------------------------------
    async def export_batch(self, limit: int) -> list[Pending]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT q.seq, e.id, e.body FROM export_queue q JOIN audit_event e ON e.seq = q.seq "
                "ORDER BY q.seq LIMIT $1", limit)
        return [Pending(row[0], row[1], decode_payload(row[2])) for row in rows]

    async def exported(self, seqs: Sequence[int]) -> None:
        if seqs:
            async with self._conn() as conn:
                await conn.execute("DELETE FROM export_queue WHERE seq = ANY($1::bigint[])", list(seqs))

    async def refused(self, seq: int, status: int, reason: str) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute("DELETE FROM export_queue WHERE seq = $1", seq)
            await conn.execute(
                "INSERT INTO export_refused (seq, status, reason, refused_ms) "
                "VALUES ($1, $2, $3, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) "
                "ON CONFLICT (seq) DO UPDATE SET status = excluded.status, reason = excluded.reason, "
                "refused_ms = excluded.refused_ms", seq, status, reason)

    async def requeue_refused(self, limit: int | None = None) -> int:
        async with self._conn() as conn, conn.transaction():
            seqs = [row[0] for row in await conn.fetch(
                "DELETE FROM export_refused WHERE seq IN (SELECT seq FROM export_refused ORDER BY seq LIMIT $1) "
                "RETURNING seq", limit)]
            await conn.executemany("INSERT INTO export_queue (seq) VALUES ($1) ON CONFLICT DO NOTHING",
                                   [(s,) for s in seqs])
        return len(seqs)

    # -- retention ------------------------------------------------------------------------------------------
    async def purge(self, before_ms: int, limit: int = 5000) -> int:
        async with self._conn() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT seq, recorded_ms, patients FROM audit_event e WHERE recorded_ms < $1 "
                "AND NOT EXISTS (SELECT 1 FROM export_queue q WHERE q.seq = e.seq) "
                "AND NOT EXISTS (SELECT 1 FROM export_refused r WHERE r.seq = e.seq) "
                "ORDER BY recorded_ms LIMIT $2 FOR UPDATE SKIP LOCKED", before_ms, limit)
            await conn.executemany("DELETE FROM audit_patient WHERE patient = $1 AND recorded_ms = $2 AND seq = $3",
                                   [(p, row[1], row[0]) for row in rows for p in row[2].split()])
            await conn.execute("DELETE FROM audit_event WHERE seq = ANY($1::bigint[])", [row[0] for row in rows])
        return len(rows)

    # -- reading it in order (service figures) --------------------------------------------------------------
    async def scan(self, after_seq: int, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        async with self._conn() as conn:
            rows = await conn.fetch("SELECT seq, body FROM audit_event WHERE seq > $1 ORDER BY seq LIMIT $2",
                                    after_seq, max(1, limit))
        return [(row[0], decode_event(row[1])) for row in rows]

    # -- operating it ---------------------------------------------------------------------------------------
    async def export_backlog(self) -> tuple[int, int]:
        async with self._conn() as conn:
            row: Any = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM export_queue), (SELECT count(*) FROM export_refused)")
        return int(row[0]), int(row[1])

    async def stats(self) -> dict[str, int]:
        async with self._conn() as conn:
            row: Any = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM audit_event), (SELECT count(*) FROM export_queue), "
                "(SELECT count(*) FROM export_refused), (SELECT min(recorded_ms) FROM audit_event), "
                "(SELECT max(recorded_ms) FROM audit_event)")
        return {"events": row[0], "export_backlog": row[1], "export_refused": row[2], "oldest_ms": row[3] or 0,
                "newest_ms": row[4] or 0}
