"""Prometheus view of the live counters the parts already keep (no I/O at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from audit.recorder import AuditRecorder
from cache import ChangeFeed, ResponseCache
from notifications import Notifications


class PortalCollector(Collector):
    def __init__(self, cache: ResponseCache | None, feed: ChangeFeed | None, recorder: AuditRecorder,
                 notifications: Notifications | None = None) -> None:
        self.cache = cache
        self.feed = feed
        self.recorder = recorder
        self.notifications = notifications

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        if self.cache is not None:
            stats = self.cache.stats
            lookups = CounterMetricFamily("portal_cache_lookups", "Cache look-ups by result", labels=["result"])
            lookups.add_metric(["hit"], stats.hits)
            lookups.add_metric(["miss"], stats.misses)
            lookups.add_metric(["stale"], stats.stale_hits)
            yield lookups
            puts = CounterMetricFamily("portal_cache_puts", "Cache stores by result", labels=["result"])
            puts.add_metric(["stored"], stats.puts)
            puts.add_metric(["refused"], stats.refused_puts)  # a concurrent invalidation won the race
            yield puts
            yield CounterMetricFamily("portal_cache_invalidations", "Invalidation calls", value=stats.invalidations)
            errors = CounterMetricFamily("portal_cache_errors", "Cache Redis failures (served uncached)",
                                         labels=["operation"])
            for op, count in sorted(stats.errors_by_op.items()):
                errors.add_metric([op], count)
            yield errors
        if self.feed is not None:
            status = self.feed.status()
            yield GaugeMetricFamily("portal_change_feed_leader", "1 when this process polls the EHR's history",
                                    value=1 if status["leader"] else 0)
            if status["seconds_since_success"] is not None:
                yield GaugeMetricFamily("portal_change_feed_seconds_since_success",
                                        "Age of the last complete change-feed round (staleness bound)",
                                        value=status["seconds_since_success"])
            yield CounterMetricFamily("portal_change_feed_changes", "EHR changes seen by the change feed",
                                      value=status["changes_seen"])
        if self.notifications is not None:
            queued = CounterMetricFamily("portal_notices_queued", "notify() calls: a new notice, or a repeat of a "
                                         "queued key (not queued again)", labels=["result"])
            for result in ("new", "repeat"):
                queued.add_metric([result], self.notifications.queued[result])
            yield queued
            settled = CounterMetricFamily("portal_notices_settled", "Notices this process's senders settled "
                                          "(sent:email, sent:sms, skipped, repeat, refused) or put back (retry)",
                                          labels=["outcome"])
            for outcome, count in sorted(self.notifications.outcomes().items()):
                settled.add_metric([outcome], count)
            yield settled
        yield GaugeMetricFamily("portal_audit_spool_bytes",
                                "Audit events waiting in the local spool for Redis (0 when healthy)",
                                value=self.recorder.spooled_bytes())
