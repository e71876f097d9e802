"""`portal-audit requeue-refused` and `portal-audit purge` against the node's SQLite audit store."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.cli import main
from audit.sqlite_store import SqliteAuditStore
from audit.store import StoredEvent

from .test_audit_store import event


async def test_requeue_refused_and_purge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    for name in [n for n in os.environ if n.startswith("PORTAL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PORTAL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_AUDIT_RETENTION_DAYS", "30")
    store = SqliteAuditStore(tmp_path / "audit.sqlite3")
    await store.open()
    old = [event(m) for m in range(3)]  # June 2024: far beyond 30 days
    recent = event(0, recorded=datetime.now(UTC) - timedelta(days=1))
    await store.add([StoredEvent.from_payload(e["id"], json.dumps(e)) for e in [*old, recent]], export=True)
    queued = await store.export_batch(10)
    await store.refused(queued[0].seq, 422, "refused")
    await store.exported([p.seq for p in queued[1:]])
    await store.close()

    def run(*argv: str) -> dict[str, object]:
        assert main(list(argv)) == 0
        return json.loads(capsys.readouterr().out)

    # main() runs an event loop of its own: not on the test's
    assert await asyncio.to_thread(run, "purge") == {"purged": 2}  # the refused one is kept: it never left
    assert await asyncio.to_thread(run, "requeue-refused") == {"requeued": 1}
    store = SqliteAuditStore(tmp_path / "audit.sqlite3")
    await store.open()
    try:
        stats = await store.stats()
        assert (stats["events"], stats["export_backlog"], stats["export_refused"]) == (2, 1, 0)
    finally:
        await store.close()

