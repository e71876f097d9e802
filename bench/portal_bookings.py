"""Booking round trips for `./stack bench portal --bookings N`: a patient books a free time through the
portal's own form (form -> gateway rule -> one-winner transaction in the EHR -> redirect) and cancels it
again (which frees the time, so the benchmark uses up no slots); the baseline is the same two transactions
sent straight to the EHR, measured in the same run.

This WRITES to the EHR (2N appointments in one demo patient's record, all cancelled at the end), so it runs
only when asked for.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mappers.booking import visit_types_of
from portal.core import Portal
from portal.pages.appointments import book_post, cancel

from .portal_messages import _visit as portal_visit

FIXTURE_TAG = "http://hospital.example.org/fhir/CodeSystem/fixture-set|portal-fixtures"


def demo_patient(ehr_base: str) -> str:
    """The demo patient the bookings are made for: the last of the fixture set (never a patient some other
    program put into the EHR)."""
    bundle = httpx.get(f"{ehr_base}/Patient", params={"_tag": FIXTURE_TAG, "_sort": "-_id", "_count": "1",
                                                      "_elements": "id"}, timeout=60).json()
    for entry in bundle.get("entry") or []:
        return str(entry["resource"]["id"])
    raise SystemExit("The EHR has no demo patients; run ./stack up once (it loads the fixtures)")


def free_slots(ehr_base: str, n: int) -> list[dict[str, Any]]:
    """`n` free times two days ahead or more (outside the clinic's notice), in random order."""
    after = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="seconds")
    bundle = httpx.get(f"{ehr_base}/Slot", params={"status": "free", "start": f"gt{after}", "_count": "500"},
                       timeout=60).json()
    slots = [e["resource"] for e in bundle.get("entry") or [] if visit_types_of(e["resource"])]
    if len(slots) < 2 * n:
        raise SystemExit(f"the EHR has only {len(slots)} free times ahead; ask for fewer bookings")
    return random.sample(slots, 2 * n)


def _direct_transaction(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def _direct_round_trip(ehr: httpx.AsyncClient, ehr_base: str, slot: dict[str, Any], patient: str
                             ) -> tuple[float, float]:
    """The same booking and cancellation as the gateway makes them, straight to the EHR (ms each)."""
    fresh = (await ehr.get(f"{ehr_base}/Slot/{slot['id']}")).json()
    version = fresh["meta"]["versionId"]
    busy = {k: v for k, v in fresh.items() if k != "meta"} | {"status": "busy"}
    appointment = {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": f"Slot/{slot['id']}"}],
                   "start": slot["start"], "end": slot["end"],
                   "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"}]}
    started = time.perf_counter()
    booked = await ehr.post(ehr_base, json=_direct_transaction([
        {"resource": busy, "request": {"method": "PUT", "url": f"Slot/{slot['id']}", "ifMatch": f'W/"{version}"'}},
        {"fullUrl": "urn:uuid:new-appointment", "resource": appointment,
         "request": {"method": "POST", "url": "Appointment"}}]))
    book_ms = (time.perf_counter() - started) * 1000
    booked.raise_for_status()
    responses = [e["response"] for e in booked.json()["entry"]]
    appt_id = responses[1]["location"].split("/_history")[0].split("/")[-1]
    slot_version = responses[0]["location"].split("/_history/")[1]
    started = time.perf_counter()
    freed = await ehr.post(ehr_base, json=_direct_transaction([
        {"resource": busy | {"status": "free"},
         "request": {"method": "PUT", "url": f"Slot/{slot['id']}", "ifMatch": f'W/"{slot_version}"'}},
        {"resource": appointment | {"id": appt_id, "status": "cancelled"},
         "request": {"method": "PUT", "url": f"Appointment/{appt_id}", "ifMatch": 'W/"1"'}}]))
    cancel_ms = (time.perf_counter() - started) * 1000
    freed.raise_for_status()
    return book_ms, cancel_ms


async def round_trips(portal: Portal, ehr_base: str, patient: str, token: str, n: int) -> dict[str, list[float]]:
    """Milliseconds per booking and per cancellation through the portal, and per direct-to-EHR transaction."""
    out: dict[str, list[float]] = {"book": [], "cancel": [], "direct book": [], "direct cancel": []}
    slots = free_slots(ehr_base, n)
    async with httpx.AsyncClient(timeout=60, headers={"Content-Type": "application/fhir+json"}) as ehr:
        for i in range(n):
            slot = slots[2 * i]
            form = {"csrf_token": "bench-csrf", "submission": uuid.uuid4().hex, "slot": slot["id"],
                    "type": visit_types_of(slot)[0].code, "reason": "Benchmark booking"}
            started = time.perf_counter()
            booked = await book_post(portal_visit(portal, "POST", "/portal/appointments", patient, token, data=form))
            out["book"].append((time.perf_counter() - started) * 1000)
            if booked.status_code != 303:
                raise SystemExit(f"booking answered {booked.status_code}")
            appt_id = booked.headers["location"].split("/")[-1].split("?")[0]
            form = {"csrf_token": "bench-csrf", "submission": uuid.uuid4().hex, "reason": "other"}
            started = time.perf_counter()
            cancelled = await cancel(portal_visit(portal, "POST", f"/portal/appointments/{appt_id}/cancel", patient,
                                                  token, data=form, path_params={"appointment_id": appt_id}))
            out["cancel"].append((time.perf_counter() - started) * 1000)
            if cancelled.status_code != 303:
                raise SystemExit(f"cancelling answered {cancelled.status_code}")
            book_ms, cancel_ms = await _direct_round_trip(ehr, ehr_base, slots[2 * i + 1], patient)
            out["direct book"].append(book_ms)
            out["direct cancel"].append(cancel_ms)
    return out
