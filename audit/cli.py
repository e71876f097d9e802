"""`portal-audit`: the state of the audit trail's plumbing, and ways back for events that got stuck.

    portal-audit status                 stream length, pending, dead letters, spool bytes; the store's counts
    portal-audit requeue-dead [-n N]    send dead-lettered stream entries back to the stream
    portal-audit requeue-refused [-n N] send events the audit record repository refused back to the export
    portal-audit purge                  run the retention purge now (it also runs in the background)

An event lands in `<stream>:dead` when its destination refused it (without a store: the repository, even
with logical references; with a store: an entry that is not a readable AuditEvent), and in the store's
`export_refused` when the repository refused it. Once the cause is fixed (e.g. the repository's
validation), requeue them: both destinations are idempotent on the event id, so requeueing twice creates
nothing twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from .recorder import REDIS_FAILURES
from .retention import purge_expired
from .settings import AuditSettings
from .store import StoreUnavailable
from .workers import build_store


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def status(redis: aioredis.Redis, settings: AuditSettings) -> dict[str, Any]:
    stream = settings.audit_stream
    try:
        pending = int((await redis.xpending(stream, settings.audit_export_group))["pending"])
    except ResponseError:  # no stream or no group yet
        pending = 0
    spool = settings.spool_path
    return {
        "stream": stream,
        "length": int(await redis.xlen(stream)),
        "pending_export": pending,
        "dead_letters": int(await redis.xlen(f"{stream}:dead")),
        "spool_bytes": spool.stat().st_size if spool.exists() else 0,
    }


async def requeue_dead(redis: aioredis.Redis, stream: str, limit: int | None = None) -> int:
    """Move dead-lettered events back onto ``stream`` (oldest first); returns how many were moved."""
    dead = f"{stream}:dead"
    moved = 0
    for entry_id, fields in await redis.xrange(dead, count=limit):
        data = {_text(k): _text(v) for k, v in fields.items()}
        if not data.get("id") or not data.get("event"):
            continue  # an unreadable entry stays where an operator can look at it
        pipe = redis.pipeline(transaction=True)  # both or neither: nothing lost, nothing doubled
        pipe.xadd(stream, {"id": data["id"], "event": data["event"]})
        pipe.xdel(dead, entry_id)
        await pipe.execute()
        moved += 1
    return moved


async def _with_store(settings: AuditSettings, command: str, limit: int | None) -> dict[str, Any]:
    store = build_store(settings)
    if store is None:
        return {"store": "none"} if command == "status" else {"error": "no audit store (PORTAL_AUDIT_STORE=none)"}
    await store.open()
    try:
        if command == "requeue-refused":
            return {"requeued": await store.requeue_refused(limit)}
        if command == "purge":
            if settings.retention is None:
                return {"purged": 0, "retention": "forever"}
            purged = await purge_expired(store, settings.retention, holder=f"cli-{socket.gethostname()}")
            return {"purged": purged} if purged is not None else {"purged": 0, "busy": "another process is purging"}
        return {"store": settings.audit_store, **await store.stats()}
    finally:
        await store.close()


async def _run(args: argparse.Namespace, settings: AuditSettings) -> dict[str, Any]:
    if args.command in ("requeue-refused", "purge"):
        return await _with_store(settings, args.command, getattr(args, "limit", None))
    redis = aioredis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10)
    try:
        if args.command == "status":
            return {**await status(redis, settings), **await _with_store(settings, "status", None)}
        return {"requeued": await requeue_dead(redis, settings.audit_stream, args.limit)}
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portal-audit", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="the stream, the spool and the store")
    requeue = sub.add_parser("requeue-dead", help="send dead-lettered stream entries back to the stream")
    requeue.add_argument("-n", "--limit", type=int, default=None, help="at most this many (oldest first)")
    refused = sub.add_parser("requeue-refused", help="send events the repository refused back to the export")
    refused.add_argument("-n", "--limit", type=int, default=None, help="at most this many (oldest first)")
    sub.add_parser("purge", help="delete events older than the retention period now")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(_run(args, AuditSettings()))
    except REDIS_FAILURES as exc:
        print(f"portal-audit: Redis is not reachable ({type(exc).__name__}); check PORTAL_REDIS_URL", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:
        print(f"portal-audit: the audit store is not usable ({exc})", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
