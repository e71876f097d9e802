"""The writes a patient (or their caregiver) may make, each done so a failure leaves nothing half-done.

Booking, rescheduling and cancelling touch an Appointment and one or two Slots; they go to the EHR as
ONE transaction whose Slot updates carry `If-Match`, so of many racing requests for one slot exactly
one commits and the rest change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mappers import inbound
from mappers.outcome import clean_outcome
from mappers.validation import InboundError

from .caller import Caller
from .compartment import in_compartment
from .errors import FHIRError, not_found
from .upstream import Upstream

log = logging.getLogger("fhir_gateway.writes")


@dataclass
class WriteResult:
    status: int
    resource: dict[str, Any]
    touched: list[str] = field(default_factory=list)  # every reference written, for audit and cache


def etag_of(resource: dict[str, Any]) -> str | None:
    vid = (resource.get("meta") or {}).get("versionId")
    return f'W/"{vid}"' if vid else None


def refused_write(response: Any, keep_status: tuple[int, ...] = ()) -> FHIRError:
    """The EHR said no to a write: 422 (or its own status where the caller must see it) with a cleaned outcome."""
    status = response.status_code if response.status_code in keep_status else 422
    return FHIRError(status, "processing", "", outcome=clean_outcome(_json(response), "The EHR refused the change"))


def _unprocessable(exc: InboundError) -> FHIRError:
    return FHIRError(422, "business-rule", str(exc))


def _id_from_location(location: str) -> str:
    parts = location.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1]


class PatientWrites:
    def __init__(self, upstream: Upstream, clock: Callable[[], datetime] | None = None) -> None:
        self.upstream = upstream
        self.clock = clock or (lambda: datetime.now(UTC))

    # -- helpers -------------------------------------------------------------------------------
    async def _own(self, caller: Caller, resource_type: str, resource_id: str, rid: str | None) -> dict[str, Any]:
        resource = await self.upstream.read(resource_type, resource_id, rid)
        if resource is None or not in_compartment(resource, caller.bound_patient or ""):
            raise not_found(resource_type, resource_id)
        return resource

    async def _read_required(self, resource_type: str, resource_id: str, rid: str | None) -> dict[str, Any]:
        resource = await self.upstream.read(resource_type, resource_id, rid)
        if resource is None:
            raise FHIRError(422, "business-rule", f"{resource_type}/{resource_id} does not exist")
        return resource

    async def _transaction(self, entries: list[dict[str, Any]], conflict: str, rid: str | None) -> list[dict]:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        response = await self.upstream.request("POST", "", json=bundle, request_id=rid)
        if response.status_code in (409, 412):
            raise FHIRError(409, "conflict", conflict)
        if response.status_code >= 400:
            raise refused_write(response)
        return [e.get("response", {}) for e in response.json().get("entry", [])]

    async def _create(self, resource: dict[str, Any], if_none_exist: str | None, rid: str | None) -> WriteResult:
        headers = {"Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        rtype = resource["resourceType"]
        response = await self.upstream.request("POST", rtype, json=resource, headers=headers, request_id=rid)
        if response.status_code >= 400:
            raise refused_write(response)
        body = _json(response)
        if not body.get("id"):
            body = await self.upstream.read(rtype, _id_from_location(response.headers["location"]), rid) or {}
        return WriteResult(response.status_code, body, [f"{rtype}/{body.get('id')}"])

    # -- entry points --------------------------------------------------------------------------
    async def create(self, caller: Caller, resource_type: str, body: Any, rid: str | None) -> WriteResult:
        try:
            if resource_type == "Communication":
                return await self._message(caller, body, rid)
            if resource_type == "MedicationRequest":
                return await self._refill(caller, body, rid)
            if resource_type == "Appointment":
                return await self._book(caller, body, rid)
        except InboundError as exc:
            raise _unprocessable(exc) from exc
        raise FHIRError(403, "forbidden", f"Patients may not create {resource_type} resources")

    async def update(
        self, caller: Caller, resource_type: str, resource_id: str, body: Any, if_match: str | None, rid: str | None
    ) -> WriteResult:
        current = await self._own(caller, resource_type, resource_id, rid)
        if if_match and if_match != etag_of(current):
            raise FHIRError(412, "conflict", f"{resource_type}/{resource_id} has changed since you read it")
        try:
            if resource_type == "Patient":
                return await self._update_patient(current, body, rid)
            if resource_type == "Appointment":
                return await self._change_appointment(current, body, rid)
        except InboundError as exc:
            raise _unprocessable(exc) from exc
        raise FHIRError(403, "forbidden", f"Patients may not update {resource_type} resources")

    # -- the rules -----------------------------------------------------------------------------
    async def _message(self, caller: Caller, body: Any, rid: str | None) -> WriteResult:
        patient_ref = f"Patient/{caller.bound_patient}"
        patient = await self._read_required("Patient", caller.bound_patient or "", rid)
        allowed = {r["reference"] for r in patient.get("generalPractitioner", []) if r.get("reference")}
        if (patient.get("managingOrganization") or {}).get("reference"):
            allowed.add(patient["managingOrganization"]["reference"])
        # Replying to a care-team member who wrote to the patient is always allowed.
        for ref in (body.get("inResponseTo", []) + body.get("partOf", [])) if isinstance(body, dict) else []:
            ref_s = (ref or {}).get("reference", "")
            if not ref_s.startswith("Communication/"):
                raise InboundError("A reply must point at one of your own message threads")
            earlier = await self._own(caller, "Communication", ref_s.split("/", 1)[1], rid)
            if (earlier.get("sender") or {}).get("reference"):
                allowed.add(earlier["sender"]["reference"])
        shaped = inbound.message(
            body, patient_ref=patient_ref, sender_ref=caller.fhir_user or patient_ref,
            allowed_recipients=allowed, now=self.clock(),
        )
        if_none_exist = None
        for ident in shaped.get("identifier", []):
            if ident.get("system") and ident.get("value"):
                if_none_exist = f"identifier={ident['system']}|{ident['value']}&subject={patient_ref}"
                break
        return await self._create(shaped, if_none_exist, rid)

    async def _refill(self, caller: Caller, body: Any, rid: str | None) -> WriteResult:
        inbound.validate(body, "MedicationRequest")
        patient_ref = f"Patient/{caller.bound_patient}"
        original = await self._own(caller, "MedicationRequest", inbound.refill_basis(body), rid)
        shaped = inbound.refill_request(
            body, original, patient_ref=patient_ref, requester_ref=caller.fhir_user or patient_ref, now=self.clock()
        )
        # One open refill request per prescription: a retry (or double click) finds the first one.
        if_none_exist = (f"identifier={inbound.REFILL_IDENTIFIER_SYSTEM}|{original['id']}"
                         f"&status=draft&patient={patient_ref}")
        return await self._create(shaped, if_none_exist, rid)

    async def _book(self, caller: Caller, body: Any, rid: str | None) -> WriteResult:
        inbound.validate(body, "Appointment")
        patient_ref = f"Patient/{caller.bound_patient}"
        actors = {(p.get("actor") or {}).get("reference") for p in body.get("participant", [])}
        if patient_ref not in actors:
            raise InboundError("You can only book appointments for yourself")
        slot = await self._read_required("Slot", inbound.slot_of(body), rid)
        schedule_ref = (slot.get("schedule") or {}).get("reference", "")
        schedule = await self.upstream.read("Schedule", schedule_ref.split("/")[-1], rid) if schedule_ref else None
        appointment = inbound.booking(body, slot, schedule, patient_ref=patient_ref, now=self.clock())
        entries = [
            {"resource": inbound.slot_with_status(slot, "busy"),
             "request": {"method": "PUT", "url": f"Slot/{slot['id']}", "ifMatch": etag_of(slot)}},
            {"fullUrl": "urn:uuid:new-appointment", "resource": appointment,
             "request": {"method": "POST", "url": "Appointment"}},
        ]
        responses = await self._transaction(entries, "That time has just been taken; please pick another slot", rid)
        new_id = _id_from_location(responses[1].get("location", ""))
        created = await self.upstream.read("Appointment", new_id, rid) or {}
        return WriteResult(201, created, [f"Appointment/{new_id}", f"Slot/{slot['id']}"])

    async def _change_appointment(self, current: dict[str, Any], body: Any, rid: str | None) -> WriteResult:
        now = self.clock()
        kind = inbound.appointment_change(current, body, now)
        old_slot = await self._read_required("Slot", inbound.slot_of(current), rid)
        entries: list[dict[str, Any]]
        touched = [f"Appointment/{current['id']}", f"Slot/{old_slot['id']}"]
        if kind == "cancel":
            updated = inbound.cancelled(current, body.get("cancelationReason"))
            entries = [
                {"resource": inbound.slot_with_status(old_slot, "free"),
                 "request": {"method": "PUT", "url": f"Slot/{old_slot['id']}", "ifMatch": etag_of(old_slot)}},
            ]
        else:
            new_slot = await self._read_required("Slot", inbound.slot_of(body), rid)
            updated = inbound.rescheduled(current, new_slot, now)
            touched.append(f"Slot/{new_slot['id']}")
            entries = [
                {"resource": inbound.slot_with_status(old_slot, "free"),
                 "request": {"method": "PUT", "url": f"Slot/{old_slot['id']}", "ifMatch": etag_of(old_slot)}},
                {"resource": inbound.slot_with_status(new_slot, "busy"),
                 "request": {"method": "PUT", "url": f"Slot/{new_slot['id']}", "ifMatch": etag_of(new_slot)}},
            ]
        updated = {k: v for k, v in updated.items() if k != "meta"}
        entries.append({"resource": updated, "request": {
            "method": "PUT", "url": f"Appointment/{current['id']}", "ifMatch": etag_of(current)}})
        await self._transaction(entries, "The appointment or slot changed meanwhile; please try again", rid)
        fresh = await self.upstream.read("Appointment", current["id"], rid) or {}
        return WriteResult(200, fresh, touched)

    async def _update_patient(self, current: dict[str, Any], body: Any, rid: str | None) -> WriteResult:
        updated = inbound.patient_update(current, body)
        updated = {k: v for k, v in updated.items() if k != "meta"}
        response = await self.upstream.request(
            "PUT", f"Patient/{current['id']}", json=updated, request_id=rid,
            headers={"If-Match": etag_of(current) or "", "Prefer": "return=representation"},
        )
        if response.status_code in (409, 412):
            raise FHIRError(412, "conflict", "Your record changed meanwhile; please reload and try again")
        if response.status_code >= 400:
            raise refused_write(response)
        return WriteResult(200, _json(response), [f"Patient/{current['id']}"])


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
        return body if isinstance(body, dict) else {}
    except ValueError:
        return {}
