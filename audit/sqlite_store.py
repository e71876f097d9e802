"""The embedded audit store: one SQLite file in WAL mode under the state directory (one node).

Every process of the node (uvicorn workers) opens the same file: WAL lets the access log read while a
feeder writes; writers take the write lock with `BEGIN IMMEDIATE` and wait for each other up to
`busy_timeout`. `synchronous=FULL`: a commit is on disk before the stream entry it came from is acked.
Calls run on a small thread pool of the store's own, one connection per thread, so the event loop never
waits on the disk. The file is created with mode 0600.

Layout and meaning: `store.py`. For replicas on several nodes the same layout lives in PostgreSQL
(`postgres_store.py`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .access_log import AccessLogPage
from .store import Pending, StoredEvent, StoreUnavailable, bound_ms, decode_event, decode_payload

T = TypeVar("T")

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    recorded_ms INTEGER NOT NULL,
    patients TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_event_recorded ON audit_event (recorded_ms);
CREATE TABLE IF NOT EXISTS audit_patient (
    patient TEXT NOT NULL,
    recorded_ms INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (patient, recorded_ms, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS export_queue (seq INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS export_refused (
    seq INTEGER PRIMARY KEY,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    refused_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ms INTEGER NOT NULL);
"""
FAR = 1 << 62  # an open end of a time range, in ms
MMAP_BYTES = 1 << 30


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SqliteAuditStore:
    def __init__(self, path: Path, *, busy_timeout: float = 10.0, threads: int = 4) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    # -- connections ----------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE themselves.
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # Reads straight from the OS page cache (no copy into SQLite's own small cache): the access log
        # touches one index range and a page's worth of rows wherever they lie in a large file.
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreUnavailable("the audit store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"audit store: {type(exc).__name__}: {exc}") from exc

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="audit-store")
        await self._call(self._create)

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = self._conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"audit store schema {version} is newer than this code ({SCHEMA_VERSION})")
        conn.executescript(SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True)
        with self._guard:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    # -- writing --------------------------------------------------------------------------------------------
    async def add(self, events: Sequence[StoredEvent], *, export: bool) -> int:
        if not events:
            return 0
        return await self._call(self._write, lambda conn: self._add(conn, events, export))

    @staticmethod
    def _add(conn: sqlite3.Connection, events: Sequence[StoredEvent], export: bool) -> int:
        added = 0
        for event in events:
            row = conn.execute(
                "INSERT INTO audit_event (id, recorded_ms, patients, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING RETURNING seq",
                (event.event_id, event.recorded_ms, " ".join(event.patients), event.body),
            ).fetchone()
            if row is None:
                continue  # stored before (a redelivered stream entry): nothing twice
            seq = row[0]
            added += 1
            conn.executemany("INSERT INTO audit_patient (patient, recorded_ms, seq) VALUES (?, ?, ?)",
                             [(patient, event.recorded_ms, seq) for patient in event.patients])
            if export:
                conn.execute("INSERT INTO export_queue (seq) VALUES (?)", (seq,))
        return added

    # -- the access log -------------------------------------------------------------------------------------
    async def page(self, patient_id: str, *, count: int = 50, since: str | None = None, until: str | None = None,
                   before: str | None = None) -> AccessLogPage:
        patient = patient_id if patient_id.startswith("Patient/") else f"Patient/{patient_id}"
        low = bound_ms(since, "ge") if since else -FAR
        high = min(bound_ms(until, "le") if until else FAR, bound_ms(before, "lt") - 1 if before else FAR)
        count = max(1, count)
        events = await self._call(self._page, patient, low, high, count)
        return AccessLogPage(events, more=len(events) >= count)

    def _page(self, patient: str, low: int, high: int, count: int) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT e.body FROM audit_patient p JOIN audit_event e ON e.seq = p.seq "
            "WHERE p.patient = ? AND p.recorded_ms BETWEEN ? AND ? "
            "ORDER BY p.recorded_ms DESC, p.seq DESC LIMIT ?",
            (patient, low, high, count),
        ).fetchall()
        return [decode_event(row[0]) for row in rows]  # here, off the event loop

    # -- leases ---------------------------------------------------------------------------------------------
    async def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        return await self._call(self._write, lambda conn: self._hold(conn, name, holder, ttl))

    @staticmethod
    def _hold(conn: sqlite3.Connection, name: str, holder: str, ttl: float) -> bool:
        now = _now_ms()
        conn.execute(
            "INSERT INTO lease (name, holder, expires_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms "
            "WHERE lease.holder = excluded.holder OR lease.expires_ms < ?",
            (name, holder, now + int(ttl * 1000), now),
        )
        row = conn.execute("SELECT holder FROM lease WHERE name = ?", (name,)).fetchone()
        return bool(row and row[0] == holder)

    async def release_lease(self, name: str, holder: str) -> None:
        await self._call(self._write, lambda conn: conn.execute(
            "DELETE FROM lease WHERE name = ? AND holder = ?", (name, holder)))

    # -- the export queue -----------------------------------------------------------------------------------
    async def export_batch(self, limit: int) -> list[Pending]:
        return await self._call(self._export_batch, limit)

    def _export_batch(self, limit: int) -> list[Pending]:
        rows = self._conn().execute(
            "SELECT q.seq, e.id, e.body FROM export_queue q JOIN audit_event e ON e.seq = q.seq "
            "ORDER BY q.seq LIMIT ?", (limit,)).fetchall()
        return [Pending(seq, event_id, decode_payload(body)) for seq, event_id, body in rows]

    async def exported(self, seqs: Sequence[int]) -> None:
        if seqs:
            await self._call(self._write, lambda conn: conn.executemany(
                "DELETE FROM export_queue WHERE seq = ?", [(seq,) for seq in seqs]))

    async def refused(self, seq: int, status: int, reason: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM export_queue WHERE seq = ?", (seq,))
            conn.execute("INSERT OR REPLACE INTO export_refused (seq, status, reason, refused_ms) VALUES (?, ?, ?, ?)",
                         (seq, status, reason, _now_ms()))

        await self._call(self._write, work)

    async def requeue_refused(self, limit: int | None = None) -> int:
        def work(conn: sqlite3.Connection) -> int:
            seqs = [row[0] for row in conn.execute("SELECT seq FROM export_refused ORDER BY seq LIMIT ?",
                                                   (-1 if limit is None else limit,))]
            conn.executemany("INSERT OR IGNORE INTO export_queue (seq) VALUES (?)", [(s,) for s in seqs])
            conn.executemany("DELETE FROM export_refused WHERE seq = ?", [(s,) for s in seqs])
            return len(seqs)

        return await self._call(self._write, work)

    # -- retention ------------------------------------------------------------------------------------------
    async def purge(self, before_ms: int, limit: int = 5000) -> int:
        return await self._call(self._write, lambda conn: self._purge(conn, before_ms, limit))

    @staticmethod
    def _purge(conn: sqlite3.Connection, before_ms: int, limit: int) -> int:
        rows = conn.execute(
            "SELECT seq, recorded_ms, patients FROM audit_event e WHERE recorded_ms < ? "
            "AND NOT EXISTS (SELECT 1 FROM export_queue q WHERE q.seq = e.seq) "
            "AND NOT EXISTS (SELECT 1 FROM export_refused r WHERE r.seq = e.seq) "
            "ORDER BY recorded_ms LIMIT ?", (before_ms, limit)).fetchall()
        conn.executemany("DELETE FROM audit_patient WHERE patient = ? AND recorded_ms = ? AND seq = ?",
                         [(patient, recorded, seq) for seq, recorded, patients in rows for patient in patients.split()])
        conn.executemany("DELETE FROM audit_event WHERE seq = ?", [(seq,) for seq, _r, _p in rows])
        return len(rows)

    # -- reading it in order (service figures) --------------------------------------------------------------
    async def scan(self, after_seq: int, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        return await self._call(self._scan, after_seq, limit)

    def _scan(self, after_seq: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self._conn().execute("SELECT seq, body FROM audit_event WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (after_seq, max(1, limit))).fetchall()
        return [(seq, decode_event(body)) for seq, body in rows]

    # -- operating it ---------------------------------------------------------------------------------------
    async def stats(self) -> dict[str, int]:
        return await self._call(self._stats)

    async def export_backlog(self) -> tuple[int, int]:
        return await self._call(self._export_backlog)

    def _export_backlog(self) -> tuple[int, int]:
        conn = self._conn()
        return (conn.execute("SELECT count(*) FROM export_queue").fetchone()[0],
                conn.execute("SELECT count(*) FROM export_refused").fetchone()[0])

    def _stats(self) -> dict[str, int]:
        conn = self._conn()
        events, oldest, newest = conn.execute(
            "SELECT count(*), min(recorded_ms), max(recorded_ms) FROM audit_event").fetchone()
        backlog, refused = self._export_backlog()
        return {
            "events": events,
            "export_backlog": backlog,
            "export_refused": refused,
            "oldest_ms": oldest or 0,
            "newest_ms": newest or 0,
        }
