"""Portal adoption and care-team service figures (`mappers/service_metrics.py` computes them) gathered from
the audit store and the EHR, for the staff metrics page and as Prometheus series on /metrics.

Nothing new is stored: the audit store is read in order from where the last round stopped (the adoption
tally keeps only the counting sets in memory), the EHR is searched for the window's appointments, messages
and refill requests each round. A round runs when someone asks for figures older than `max_age`; a scrape
never waits for one (it gets the last figures and starts a round in the background).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, tzinfo
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from audit.store import AuditStore
from mappers.inbound import REFILL_IDENTIFIER_SYSTEM
from mappers.service_metrics import (
    WINDOW,
    AdoptionTally,
    ServiceFigures,
    message_service,
    online_booking,
    refill_turnaround,
)

from .upstream import Upstream

log = logging.getLogger("fhir_gateway.service_metrics")
SCAN_PAGE = 2000
MAX_PAGES = 40  # per search: 40 pages of 250 = 10,000 resources in a 30-day window


def ehr_searches(since: str) -> dict[str, dict[str, str]]:
    """What a round asks the EHR for: everything that can count in a window starting at `since`. An
    appointment booked in the window was last changed in it; a reply to a message of the window was sent
    in it; a refill request decided in the window was last changed in it."""
    return {
        "Appointment": {"_lastUpdated": f"ge{since}"},
        "Communication": {"sent": f"ge{since}"},
        "MedicationRequest": {"intent": "proposal", "identifier": f"{REFILL_IDENTIFIER_SYSTEM}|",
                              "_lastUpdated": f"ge{since}"},
    }


class ServiceMetrics:
    def __init__(self, ehr: Upstream, store: AuditStore | None, tz: tzinfo, *, max_age: float = 300.0,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.ehr = ehr
        self.store = store
        self.tz = tz
        self.max_age = max_age
        self.clock = clock or (lambda: datetime.now(UTC))
        self.latest: ServiceFigures | None = None
        self._tally = AdoptionTally()
        self._after_seq = 0
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[Any] | None = None
        self._computed_mono = 0.0

    def stale(self) -> bool:
        return self.latest is None or time.monotonic() - self._computed_mono > self.max_age

    async def figures(self, *, fresh: bool = False) -> ServiceFigures:
        """The figures, recomputed first when older than `max_age` (or `fresh`)."""
        async with self._lock:
            if fresh or self.stale() or self.latest is None:
                await self._round()
            assert self.latest is not None
            return self.latest

    def refresh_soon(self) -> None:
        """Start a round in the background when the figures are stale (a scrape never waits for the EHR)."""
        if self.stale() and (self._background is None or self._background.done()):
            self._background = asyncio.get_running_loop().create_task(self._quiet_round())

    async def _quiet_round(self) -> None:
        try:
            await self.figures()
        except Exception as exc:  # the next scrape tries again; the reason is logged, not raised into nothing
            log.warning("service figures could not be computed: %s", type(exc).__name__)

    async def close(self) -> None:
        if self._background is not None and not self._background.done():
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)

    async def _round(self) -> None:
        now = self.clock()
        since = (now - WINDOW).isoformat(timespec="seconds")
        adoption = None
        if self.store is not None:
            while page := await self.store.scan(self._after_seq, SCAN_PAGE):
                for seq, event in page:
                    self._tally.add(event)
                    self._after_seq = seq
                if len(page) < SCAN_PAGE:
                    break
            adoption = self._tally.snapshot(now)
        searches = ehr_searches(since)
        appointments = await self.search("Appointment", searches["Appointment"])
        messages = await self.search("Communication", searches["Communication"])
        refills = await self.search("MedicationRequest", searches["MedicationRequest"])
        self.latest = ServiceFigures(now, adoption, online_booking(appointments, now),
                                     message_service(messages, now, self.tz), refill_turnaround(refills, now))
        self._computed_mono = time.monotonic()

    async def search(self, resource_type: str, params: dict[str, str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        bundle = await self.ehr.search(resource_type, {**params, "_count": "250"})
        for _ in range(MAX_PAGES):
            found.extend(e["resource"] for e in bundle.get("entry") or []
                         if isinstance(e, dict) and isinstance(e.get("resource"), dict))
            following = next((link.get("url") for link in bundle.get("link") or []
                              if isinstance(link, dict) and link.get("relation") == "next"), None)
            if not following:
                break
            response = await self.ehr.request("GET", str(following))
            bundle = response.json() if response.status_code == 200 else {}
        return found


class ServiceCollector(Collector):
    """The last figures as gauges (no I/O here; `ServiceMetrics.refresh_soon` keeps them current)."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = self.metrics.latest
        if figures is None:
            return
        yield GaugeMetricFamily("portal_service_figures_timestamp_seconds",
                                "When the adoption and service figures were computed",
                                value=figures.computed_at.timestamp())
        if figures.adoption is not None:
            patients = GaugeMetricFamily("portal_patients", "Patients by portal adoption stage (active: signed "
                                         "in within 30 days)", labels=["stage"])
            patients.add_metric(["invited"], figures.adoption.invited)
            patients.add_metric(["enrolled"], figures.adoption.enrolled)
            patients.add_metric(["active_30d"], figures.adoption.active)
            yield patients
        booked = GaugeMetricFamily("portal_appointments_booked_30d", "Appointments booked in the last 30 days",
                                   labels=["channel"])
        booked.add_metric(["online"], figures.booking.online)
        booked.add_metric(["other"], figures.booking.total - figures.booking.online)
        yield booked
        if figures.booking.share is not None:
            yield GaugeMetricFamily("portal_appointments_booked_online_ratio",
                                    "Share of the last 30 days' appointments booked in the portal",
                                    value=figures.booking.share)
        m = figures.messages
        answered = GaugeMetricFamily("portal_patient_messages_30d", "Patient messages of the last 30 days by "
                                     "answer", labels=["answer"])
        answered.add_metric(["within_one_business_day"], m.answered_in_time)
        answered.add_metric(["late_or_unanswered"], m.due - m.answered_in_time)
        answered.add_metric(["waiting"], m.waiting)
        yield answered
        if m.share_in_time is not None:
            yield GaugeMetricFamily("portal_messages_answered_within_one_business_day_ratio",
                                    "Share of due patient messages answered within one business day",
                                    value=m.share_in_time)
        if m.median_response_seconds is not None:
            yield GaugeMetricFamily("portal_message_response_median_seconds",
                                    "Median time from a patient message to the care team's reply (30 days)",
                                    value=m.median_response_seconds)
        r = figures.refills
        refills = GaugeMetricFamily("portal_refill_requests_30d", "Refill requests of the last 30 days",
                                    labels=["state"])
        refills.add_metric(["decided"], r.decided)
        refills.add_metric(["waiting"], r.waiting)
        yield refills
        if r.median_seconds is not None:
            yield GaugeMetricFamily("portal_refill_turnaround_median_seconds",
                                    "Median time from a refill request to its decision (30 days)",
                                    value=r.median_seconds)
