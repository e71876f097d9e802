"""The audit trail's backlog on /metrics: what was recorded and has not moved on yet.

The other series are counters the parts keep in memory; the backlog lives in Redis and in the audit store,
shared by every process, so it is read when /metrics is asked for (two Redis reads and, with a store, two
counts), each read bounded by `timeout`. A read that fails leaves its series out of that scrape and sets
`portal_audit_backlog_readable` to 0, rather than failing the scrape or showing an old figure as new.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from audit.recorder import REDIS_FAILURES
from audit.store import AuditStore, StoreUnavailable

log = logging.getLogger("fhir_gateway.audit_metrics")

_SERIES = {
    "stream": ("portal_audit_stream_entries", "Audit events recorded in the Redis stream and not yet moved into "
               "the audit store (or, without a store, to the repository)"),
    "dead": ("portal_audit_stream_dead_letters", "Audit stream entries set aside in <stream>:dead "
             "(portal-audit requeue-dead puts them back)"),
    "export": ("portal_audit_export_backlog", "Events in the audit store waiting for the audit record repository "
               "(paced: PORTAL_AUDIT_EXPORT_RATE, PORTAL_AUDIT_EXPORT_SHARE)"),
    "refused": ("portal_audit_export_refused", "Events the audit record repository refused, kept in the store "
                "(portal-audit requeue-refused)"),
}


class AuditBacklog(Collector):
    def __init__(self, redis: Any, stream: str, store: AuditStore | None, *, timeout: float = 2.0) -> None:
        self.redis = redis
        self.stream = stream
        self.store = store
        self.timeout = timeout
        self._figures: dict[str, int] = {}
        self._readable = True

    async def read(self) -> None:
        """Reads the figures the next `collect` shows."""
        figures: dict[str, int] = {}
        readable = True
        try:
            async with asyncio.timeout(self.timeout):
                figures["stream"] = int(await self.redis.xlen(self.stream))
                figures["dead"] = int(await self.redis.xlen(f"{self.stream}:dead"))
        except (*REDIS_FAILURES, TimeoutError) as exc:
            log.warning("audit backlog: the stream could not be read (%s)", type(exc).__name__)
            readable = False
        if self.store is not None:
            try:
                async with asyncio.timeout(self.timeout):
                    figures["export"], figures["refused"] = await self.store.export_backlog()
            except (StoreUnavailable, TimeoutError) as exc:
                log.warning("audit backlog: the audit store could not be read (%s)", type(exc).__name__)
                readable = False
        self._figures, self._readable = figures, readable

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for key, value in self._figures.items():
            name, text = _SERIES[key]
            yield GaugeMetricFamily(name, text, value=value)
        yield GaugeMetricFamily("portal_audit_backlog_readable",
                                "1 when every audit backlog figure of this scrape could be read",
                                value=int(self._readable))
