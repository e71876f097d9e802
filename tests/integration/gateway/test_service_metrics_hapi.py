"""The service figures' EHR searches against the real HAPI: a patient's message and the care team's reply,
a decided refill request and an appointment booked in the portal, made now, are each found by the search a
round makes, and the figures over them read as a person would expect."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from fhir_gateway.service_metrics import ServiceMetrics, ehr_searches
from fhir_gateway.upstream import Upstream
from mappers.booking import BOOKING_IDENTIFIER_SYSTEM
from mappers.inbound import REFILL_IDENTIFIER_SYSTEM
from mappers.service_metrics import message_service, online_booking, refill_turnaround

from .helpers import first_id

pytestmark = pytest.mark.integration
PATIENT = "Patient/pt-0021"


def _create(c: httpx.Client, resource: dict) -> dict:
    response = c.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()


async def test_each_search_finds_what_the_window_holds(ehr_base_url: str) -> None:
    now = datetime.now(UTC)
    practitioner = "Practitioner/" + first_id(ehr_base_url, "Practitioner", {})
    tag = uuid.uuid4().hex
    made: list[dict] = []
    with httpx.Client(base_url=ehr_base_url, timeout=60, headers={"Content-Type": "application/fhir+json"}) as c:
        try:
            asked = _create(c, {
                "resourceType": "Communication", "status": "completed", "subject": {"reference": PATIENT},
                "sender": {"reference": PATIENT}, "recipient": [{"reference": practitioner}],
                "sent": (now - timedelta(hours=3)).isoformat(timespec="seconds"),
                "payload": [{"contentString": f"question {tag}"}]})
            made.append(asked)
            made.append(_create(c, {
                "resourceType": "Communication", "status": "completed", "subject": {"reference": PATIENT},
                "sender": {"reference": practitioner}, "recipient": [{"reference": PATIENT}],
                "partOf": [{"reference": f"Communication/{asked['id']}"}],
                "inResponseTo": [{"reference": f"Communication/{asked['id']}"}],
                "sent": (now - timedelta(hours=1)).isoformat(timespec="seconds"),
                "payload": [{"contentString": f"answer {tag}"}]}))
            made.append(_create(c, {
                "resourceType": "MedicationRequest", "status": "completed", "intent": "proposal",
                "identifier": [{"system": REFILL_IDENTIFIER_SYSTEM, "value": tag}],
                "medicationCodeableConcept": {"text": "Test tablets"}, "subject": {"reference": PATIENT},
                "authoredOn": (now - timedelta(hours=2)).isoformat(timespec="seconds")}))
            made.append(_create(c, {
                "resourceType": "Appointment", "status": "booked", "created": now.date().isoformat(),
                "identifier": [{"system": BOOKING_IDENTIFIER_SYSTEM, "value": tag}],
                "start": (now + timedelta(days=3)).isoformat(timespec="seconds"),
                "end": (now + timedelta(days=3, minutes=20)).isoformat(timespec="seconds"),
                "participant": [{"actor": {"reference": PATIENT}, "status": "accepted"}]}))

            upstream = Upstream(httpx.AsyncClient(base_url=ehr_base_url + "/", timeout=60), ehr_base_url)
            metrics = ServiceMetrics(upstream, None, ZoneInfo("America/Chicago"))
            try:
                searches = ehr_searches((now - timedelta(days=30)).isoformat(timespec="seconds"))
                found = {rtype: await metrics.search(rtype, params) for rtype, params in searches.items()}
            finally:
                await upstream.client.aclose()
            ours = {r["id"] for r in made}
            mine = {rtype: [r for r in resources if r["id"] in ours] for rtype, resources in found.items()}
            assert len(mine["Communication"]) == 2 and len(mine["MedicationRequest"]) == 1
            assert len(mine["Appointment"]) == 1

            answered = message_service(mine["Communication"], now, ZoneInfo("America/Chicago"))
            assert (answered.answered_in_time, answered.due) == (1, 1)
            assert answered.median_response_seconds == pytest.approx(7200, abs=2)
            refills = refill_turnaround(mine["MedicationRequest"], datetime.now(UTC))
            assert refills.decided == 1 and 7100 < (refills.median_seconds or 0) < 7200 + 600  # decided on storing
            assert online_booking(mine["Appointment"], now + timedelta(seconds=1)).share == 1.0
        finally:
            for resource in reversed(made):
                c.delete(f"/{resource['resourceType']}/{resource['id']}")
