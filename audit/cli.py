"""`portal-audit`: the state of the audit trail's plumbing, and a way back for dead-lettered events.

    portal-audit status              stream length, events pending export, dead letters, spool bytes
    portal-audit requeue-dead [-n N] send dead-lettered events back to the stream for another export

An event lands in `<stream>:dead` when the EHR refused it even with logical references. Once the cause
is fixed (e.g. the EHR's validation), `requeue-dead` puts each one back on the stream, in order; the
export is idempotent on the event id, so requeueing twice creates nothing twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from .recorder import REDIS_FAILURES
from .settings import AuditSettings


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


async def _run(args: argparse.Namespace, settings: AuditSettings) -> dict[str, Any]:
    redis = aioredis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10)
    try:
        if args.command == "status":
            return await status(redis, settings)
        return {"requeued": await requeue_dead(redis, settings.audit_stream, args.limit)}
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portal-audit", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="stream length, pending export, dead letters, spool bytes")
    requeue = sub.add_parser("requeue-dead", help="send dead-lettered events back for export")
    requeue.add_argument("-n", "--limit", type=int, default=None, help="at most this many (oldest first)")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(_run(args, AuditSettings()))
    except REDIS_FAILURES as exc:
        print(f"portal-audit: Redis is not reachable ({type(exc).__name__}); check PORTAL_REDIS_URL", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
