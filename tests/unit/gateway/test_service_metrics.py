"""The adoption and service figures gathered from a real (SQLite) audit store and the EHR (respx), and their
Prometheus series: the store is read on from where the last round stopped (nothing counted twice), the EHR's
pages are followed, and a scrape never waits for a round."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import respx
from prometheus_client import CollectorRegistry, generate_latest

from audit.events import auth_event
from audit.sqlite_store import SqliteAuditStore
from audit.store import StoredEvent
from fhir_gateway.service_metrics import ServiceCollector, ServiceMetrics
from fhir_gateway.upstream import Upstream
from mappers.booking import BOOKING_IDENTIFIER_SYSTEM
from web.tls import client_tls

EHR = "http://ehr.test/fhir"
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def _stored(event: dict[str, Any]) -> StoredEvent:
    return StoredEvent.from_payload(event["id"], orjson.dumps(event).decode())


def _bundle(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                              "entry": [{"resource": r} for r in resources]}
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def _appointment(online: bool) -> dict[str, Any]:
    a: dict[str, Any] = {"resourceType": "Appointment", "status": "booked", "created": "2026-11-28"}
    if online:
        a["identifier"] = [{"system": BOOKING_IDENTIFIER_SYSTEM, "value": "b"}]
    return a


async def test_figures_from_the_store_and_the_ehr_and_their_series(tmp_path: Path) -> None:
    store = SqliteAuditStore(tmp_path / "audit.sqlite3")
    await store.open()
    day = timedelta(days=1)
    await store.add([_stored(auth_event("invitation", "success", fhir_user="Practitioner/d", patient_id=p,
                                        recorded=NOW - 3 * day)) for p in ("p1", "p2", "p3")], export=False)
    await store.add([_stored(auth_event("enrolment", "success", fhir_user="Patient/p1", patient_id="p1",
                                        recorded=NOW - 2 * day)),
                     _stored(auth_event("login", "success", fhir_user="Patient/p1", patient_id="p1",
                                        recorded=NOW - day))], export=False)
    upstream = Upstream(httpx.AsyncClient(base_url=EHR + "/", verify=client_tls()), EHR)
    metrics = ServiceMetrics(upstream, store, ZoneInfo("America/Chicago"), max_age=300, clock=lambda: NOW)
    registry = CollectorRegistry()
    registry.register(ServiceCollector(metrics))
    try:
        with respx.mock(base_url=EHR, assert_all_called=False) as ehr:
            pages = ehr.get("/Appointment").mock(return_value=httpx.Response(
                200, json=_bundle([_appointment(True)], f"{EHR}?_getpages=x&_getpagesoffset=1")))
            ehr.get("", params={"_getpages": "x"}).mock(return_value=httpx.Response(
                200, json=_bundle([_appointment(True), _appointment(False), _appointment(False)])))
            ehr.get("/Communication").mock(return_value=httpx.Response(200, json=_bundle([])))
            ehr.get("/MedicationRequest").mock(return_value=httpx.Response(200, json=_bundle([])))

            assert generate_latest(registry) == b""  # nothing computed yet: a scrape does not wait
            figures = await metrics.figures()
            assert pages.call_count == 1
            assert figures.adoption is not None
            assert (figures.adoption.invited, figures.adoption.enrolled, figures.adoption.active) == (3, 1, 1)
            assert (figures.booking.online, figures.booking.total) == (2, 4)

            text = generate_latest(registry).decode()
            assert 'portal_patients{stage="invited"} 3.0' in text
            assert 'portal_patients{stage="active_30d"} 1.0' in text
            assert "portal_appointments_booked_online_ratio 0.5" in text
            assert "portal_refill_turnaround_median_seconds" not in text  # no decision yet: no made-up zero

            # Reused while fresh; the next round reads on in the store without counting anything twice.
            assert await metrics.figures() is figures and pages.call_count == 1
            await store.add([_stored(auth_event("enrolment", "success", fhir_user="Patient/p2", patient_id="p2",
                                                recorded=NOW - day))], export=False)
            again = await metrics.figures(fresh=True)
            assert again.adoption is not None
            assert (again.adoption.invited, again.adoption.enrolled) == (3, 2)

            # A stale scrape starts a round in the background and answers at once.
            metrics.max_age = 0
            metrics.refresh_soon()
            assert metrics._background is not None
            await asyncio.wait_for(metrics._background, 5)
            assert pages.call_count == 3
    finally:
        await metrics.close()
        await upstream.client.aclose()
        await store.close()
