"""Visit reminders against the real EHR: a visit booked for tomorrow morning gets one reminder by e-mail,
however often the scan runs; a cancelled one gets none."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fhir_gateway.upstream import Upstream, make_client
from notifications.catchall import body_of
from notifications.reminders import LOCK, VisitReminders

from .conftest import PUBLIC_URL, NoticeEnv

pytestmark = pytest.mark.integration
PATIENT = "pt-0018"


def _appointment(start: datetime, status: str) -> dict:
    return {"resourceType": "Appointment", "status": status, "start": start.isoformat(),
            "end": (start + timedelta(minutes=20)).isoformat(),
            "participant": [{"actor": {"reference": f"Patient/{PATIENT}"}, "status": "accepted"}]}


async def test_a_visit_tomorrow_is_reminded_of_once_and_a_cancelled_one_not(notice_env: NoticeEnv,
                                                                           ehr_base_url: str) -> None:
    to = f"reminded-{datetime.now(UTC):%H%M%S%f}@example.test"
    await notice_env.patient(to, patient_id=PATIENT)
    start = (datetime.now(UTC) + timedelta(hours=20)).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=ehr_base_url, timeout=30) as ehr:
        booked = (await ehr.post("/Appointment", json=_appointment(start, "booked"))).json()["id"]
        cancelled = (await ehr.post("/Appointment", json=_appointment(start, "cancelled"))).json()["id"]
        upstream = Upstream(make_client(ehr_base_url, connect_timeout=5, read_timeout=30, max_connections=2),
                            ehr_base_url)
        reminders = VisitReminders(upstream, notice_env.notifications, notice_env.redis, hours=24, interval=60)
        try:
            await notice_env.redis.delete(LOCK)
            assert await reminders.scan() >= 1
            assert await reminders.scan() == 0  # another process's turn: it just scanned
            await notice_env.redis.delete(LOCK)
            await reminders.scan()  # the next scan finds the same visit: no second reminder
            async with notice_env.sending():
                await asyncio.to_thread(notice_env.mail.wait_for, to)
                await asyncio.sleep(1.5)
        finally:
            await upstream.client.aclose()
            for appointment_id in (booked, cancelled):
                await ehr.delete(f"/Appointment/{appointment_id}")
    ours = [m for m in notice_env.mail.to(to) if f"/portal/appointments/{booked}" in body_of(m)]
    assert len(ours) == 1 and ours[0]["Subject"] == "A reminder from your clinic"
    assert f"{PUBLIC_URL}/portal/appointments/{booked}" in body_of(ours[0])
    assert not [m for m in notice_env.mail.to(to) if f"/portal/appointments/{cancelled}" in body_of(m)]
    assert start.strftime("%H:%M") not in body_of(ours[0])  # the time stays in the portal
