"""Visit reminders: a notice the day before each booked visit ("You have a reminder" and a link to the
visit; the time and the clinician stay in the portal).

Every `interval` seconds one app process (a short Redis lock decides which) asks the EHR for the booked
appointments starting within the next `hours` and queues a reminder for each patient in them. The notice key
names the appointment and its start, so scans that overlap, several replicas, or a restart never remind
twice, and a visit that moves is reminded of again. Appointments are read from the EHR directly by the
server (as the audit exporter and the cache's change feed do); nothing of them is kept.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from audit.pacing import wait_or_stop

log = logging.getLogger("notifications.reminders")
LOCK = "notices:reminder-scan"
MOST = 500  # appointments read per scan


class AppointmentSource(Protocol):
    async def search(self, resource_type: str, params: Any) -> dict[str, Any]: ...


class NoticeQueue(Protocol):
    async def notify(self, to: str, kind: str, link: str, *, key: str | None = None) -> bool: ...


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def visits_to_remind(bundle: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(patient id, appointment id, start) of each booked appointment in a search answer. Pure."""
    out = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") != "Appointment" or resource.get("status") != "booked":
            continue
        start, appointment_id = resource.get("start"), resource.get("id")
        for participant in resource.get("participant") or []:
            reference = str((participant.get("actor") or {}).get("reference") or "")
            if reference.startswith("Patient/") and start and appointment_id:
                out.append((reference.removeprefix("Patient/"), str(appointment_id), str(start)))
    return out


class VisitReminders:
    def __init__(self, ehr: AppointmentSource, notices: NoticeQueue, redis: Any, *, hours: int,
                 interval: float) -> None:
        self.ehr = ehr
        self.notices = notices
        self.redis = redis
        self.hours = hours
        self.interval = interval

    async def scan(self, now: datetime | None = None) -> int:
        """Queue the reminders due now; returns how many were new. Skips when another process just scanned."""
        if not await self.redis.set(LOCK, "1", nx=True, ex=max(1, int(self.interval * 0.9))):
            return 0
        now = now or datetime.now(UTC)
        bundle = await self.ehr.search("Appointment", [
            ("date", f"ge{_instant(now)}"), ("date", f"lt{_instant(now + timedelta(hours=self.hours))}"),
            ("status", "booked"), ("_count", str(MOST)), ("_elements", "status,start,participant")])
        if any(link.get("relation") == "next" for link in bundle.get("link") or []):
            log.warning("more than %d visits in the next %d hours: the rest are reminded at the next scan", MOST,
                        self.hours)
        queued = 0
        for patient_id, appointment_id, start in visits_to_remind(bundle):
            queued += await self.notices.notify(f"Patient/{patient_id}", "reminder",
                                                f"/portal/appointments/{appointment_id}",
                                                key=f"visit-reminder:{appointment_id}:{start}")
        return queued

    async def run(self, stop: asyncio.Event) -> None:
        # The first scan one interval after start: a reminder is due a day ahead, so nothing is late, and a
        # process that starts and stops at once (a test, a restart loop) asks the EHR nothing.
        await wait_or_stop(stop, self.interval)
        while not stop.is_set():
            try:
                await self.scan()
            except Exception as exc:  # the EHR or Redis is down: the next scan catches up
                log.warning("visit reminder scan failed: %s", type(exc).__name__)
            await wait_or_stop(stop, self.interval)
