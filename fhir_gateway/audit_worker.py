"""`portal-audit-worker`: the audit trail's background work in a process of its own.

A gateway process records each audit event in the Redis stream before it answers. Moving the stream on
(into the audit store, then paced to the audit record repository), the retention purge and the replay of
a local spool are background work; by default each gateway process does it too. Run with
`PORTAL_AUDIT_EXPORT=false`, gateway processes only record, and this process does the rest: it is one
more member of the stream's consumer group, so several workers (or a worker beside gateways that still
move the stream) share it, and one that dies is taken over as any member is (`audit/consumer.py`).

On one machine it keeps that work off the event loop that answers requests (an audit store write is a
thread of the serving process otherwise) and lets it use another core. It reads the same settings as
the gateway (`PortalSettings`), and stops cleanly on SIGTERM or SIGINT: the batch under way is finished
and acked, and its heartbeat is removed so another member takes over at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from audit.workers import AuditWorkers

from .audit_binding import background_audit, make_recorder
from .clients import audit_repository_of, ehr_upstream, make_redis
from .settings import PortalSettings

log = logging.getLogger("fhir_gateway.audit_worker")


async def run_worker(settings: PortalSettings, stop: asyncio.Event) -> None:
    """Moves the audit stream on, exports, purges and replays the spool until `stop` is set."""
    settings.core.state_dir.mkdir(parents=True, exist_ok=True)
    ehr = ehr_upstream(settings)
    redis = make_redis(settings.core.redis_url)
    repository = audit_repository_of(settings, ehr)
    audit = settings.audit
    workers = AuditWorkers.build(redis, audit, repository)
    try:
        async with background_audit(make_recorder(redis, audit), workers, audit, move_stream=True):
            log.info("audit worker %s: moving stream %s into the %s audit store; export to %s",
                     audit.audit_export_consumer, audit.audit_stream, audit.audit_store, audit.audit_repository)
            await stop.wait()
    finally:
        if repository is not None and repository is not ehr:
            await repository.client.aclose()
        await ehr.client.aclose()
        await redis.aclose()


async def _serve() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_worker(PortalSettings.load(), stop)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="portal-audit-worker", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per export transaction says nothing new
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())
    log.info("audit worker stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
