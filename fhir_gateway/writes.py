"""Every write through the gateway, each done so a failure leaves nothing half-done.

`Writes` picks the path: a patient-bound caller (a patient or their caregiver) writes only through the
patient write rules (`PatientWrites`); a staff member's answer to a patient's request (a refill, referral,
reported allergy or insurance change) goes through its decision rule (`DecisionWrites`); other staff and
backend-service writes have their resource validated and forwarded with their own preconditions.

Booking, rescheduling and cancelling touch an Appointment and one or two Slots; they go to the EHR as
ONE transaction whose Slot updates carry `If-Match`, so of many racing requests for one slot exactly
one commits and the rest change nothing.

A body is validated (fhir.resources) before any rule reads it, and every reference a patient sends must
be a plain `Type/id` of the type the rule expects. A reference that is malformed, names nothing, or
names something outside the caller's reach gets one and the same answer, so no answer tells whether
anything exists at an address the caller may not see.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from mappers import inbound, payments
from mappers.catalogue import is_pharmacy, specialty_of
from mappers.medications import medication
from mappers.notebook import is_notebook_entry
from mappers.notebook_rules import (
    NOT_A_NOTEBOOK_ENTRY,
    NOT_YOURS,
    editable,
    entry_medicine,
    entry_visit,
    notebook_write,
)
from mappers.validation import InboundError, is_fhir_id, plain_reference, validate
from payments import PaymentDeclined, PaymentProvider, PaymentUnavailable

from .caller import Caller
from .compartment import in_compartment
from .decision_writes import DecisionWrites
from .errors import FHIRError, forbidden
from .staff_writes import StaffWrites
from .upstream import Upstream, json_object
from .write_result import WriteResult, etag_of

log = logging.getLogger("fhir_gateway.writes")

# The request headers a staff or backend write may forward to the EHR (its own preconditions).
PRECONDITIONS = ("if-match", "if-none-exist")


def _unprocessable(exc: InboundError) -> FHIRError:
    return FHIRError(422, "business-rule", str(exc))


def _binary_id(patient_ref: str, identifier: Mapping[str, Any], n: int) -> str:
    """The id a message's n-th file is stored under: the same for a retry of the same message (so a retry
    rewrites nothing new), different for every patient and message."""
    digest = hashlib.sha256(f"{patient_ref}|{identifier['system']}|{identifier['value']}|{n}".encode())
    return f"msgfile-{digest.hexdigest()[:48]}"


def _query(query: str) -> list[tuple[str, str]]:
    return [(name, value) for name, _, value in (p.partition("=") for p in query.split("&") if p)]


def _id_from_location(location: str) -> str:
    parts = location.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1]


class Writes:
    """The one place that decides how a write is done."""

    def __init__(self, upstream: Upstream, clock: Callable[[], datetime] | None = None,
                 payments: PaymentProvider | None = None, *,
                 change_notice_hours: int = inbound.DEFAULT_CHANGE_NOTICE_HOURS) -> None:
        self.upstream = upstream
        self.patient = PatientWrites(upstream, clock, payments, change_notice_hours=change_notice_hours)
        self.decisions = DecisionWrites(upstream, clock)
        self.staff = StaffWrites(upstream, clock)

    async def create(self, caller: Caller, resource_type: str, body: Any, preconditions: Mapping[str, str],
                     request_id: str | None) -> WriteResult:
        if caller.bound_patient:
            return await self.patient.create(caller, resource_type, body, request_id)
        # A decision on a patient's request (refill, referral, allergy, insurance) has its own rule.
        if (decided := await self.decisions.create(caller, resource_type, body, request_id)) is not None:
            return WriteResult(decided.status, decided.resource, decided.touched)
        forward = lambda: self._forward("POST", resource_type, resource_type, body, preconditions,  # noqa: E731
                                        request_id)
        if self.staff.applies_to(caller):
            return await self.staff.create(caller, resource_type, body, request_id, forward)
        return await forward()

    async def update(self, caller: Caller, resource_type: str, resource_id: str, body: Any,
                     preconditions: Mapping[str, str], request_id: str | None) -> WriteResult:
        if caller.bound_patient:
            return await self.patient.update(caller, resource_type, resource_id, body,
                                             preconditions.get("if-match"), request_id)
        if (decided := await self.decisions.update(caller, resource_type, resource_id, body,
                                                   preconditions.get("if-match"), request_id)) is not None:
            return WriteResult(decided.status, decided.resource, decided.touched)
        forward = lambda: self._forward("PUT", resource_type, f"{resource_type}/{resource_id}",  # noqa: E731
                                        body, preconditions, request_id)
        if self.staff.applies_to(caller):
            return await self.staff.update(caller, resource_type, resource_id, body, preconditions.get("if-match"),
                                           request_id, forward)
        return await forward()

    async def _forward(self, method: str, resource_type: str, path: str, body: Any,
                       preconditions: Mapping[str, str], request_id: str | None) -> WriteResult:
        """Staff and backend-service writes: validated, then forwarded with the caller's preconditions. The
        EHR's refusal of a request we forwarded as asked is the caller's to see, status and all."""
        try:
            validate(body, resource_type)
        except InboundError as exc:
            raise FHIRError(422, "invalid", str(exc)) from exc
        headers = {"Prefer": "return=representation"}
        headers |= {name.title(): value for name, value in preconditions.items() if name in PRECONDITIONS}
        response = await self.upstream.request(method, path, json=body, headers=headers, request_id=request_id)
        if response.status_code >= 400:
            raise self.upstream.refusal(response, "The EHR refused the change")
        resource = json_object(response)
        if not resource.get("id") and response.headers.get("location"):
            loc = response.headers["location"].split("/_history")[0].split("/")
            resource = await self.upstream.read(loc[-2], loc[-1], request_id) or {}
        return WriteResult(response.status_code, resource, [f"{resource_type}/{resource.get('id')}"])


class PatientWrites:
    """The writes a patient (or their caregiver) may make, each checked by its own rule."""

    def __init__(self, upstream: Upstream, clock: Callable[[], datetime] | None = None,
                 payments: PaymentProvider | None = None, *,
                 change_notice_hours: int = inbound.DEFAULT_CHANGE_NOTICE_HOURS) -> None:
        self.upstream = upstream
        self.clock = clock or (lambda: datetime.now(UTC))
        self.payments = payments
        # The clinic's rule: no online moves or cancellations this close to a visit.
        self.change_notice_hours = change_notice_hours

    # -- helpers -------------------------------------------------------------------------------
    async def _own(self, caller: Caller, resource_type: str, resource_id: str | None,
                   request_id: str | None) -> dict[str, Any]:
        """One of the caller's own resources. Malformed, unknown and someone else's all answer 'not known'."""
        resource = None
        if resource_id is not None and is_fhir_id(resource_id):
            resource = await self.upstream.read(resource_type, resource_id, request_id)
        if resource is None or not in_compartment(resource, caller.bound_patient or ""):
            raise FHIRError(404, "not-found", f"The {resource_type} you referred to is not known")
        return resource

    async def _slot(self, slot_id: str, request_id: str | None) -> dict[str, Any]:
        slot = await self.upstream.read("Slot", slot_id, request_id)
        if slot is None or slot.get("resourceType") != "Slot":
            raise FHIRError(422, "business-rule", inbound.SLOT_UNKNOWN)
        return slot

    async def _transaction(self, entries: list[dict[str, Any]], conflict: str, request_id: str | None) -> list[dict]:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        response = await self.upstream.request("POST", "", json=bundle, request_id=request_id)
        if response.status_code in (409, 412):
            raise FHIRError(409, "conflict", conflict)
        if response.status_code >= 400:
            raise self.upstream.refusal(response, "The EHR refused the change", status=422)
        return [e.get("response", {}) for e in json_object(response).get("entry", [])]

    async def _create(self, resource: dict[str, Any], if_none_exist: str | None,
                      request_id: str | None) -> WriteResult:
        headers = {"Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        rtype = resource["resourceType"]
        response = await self.upstream.request("POST", rtype, json=resource, headers=headers, request_id=request_id)
        if response.status_code >= 400:
            raise self.upstream.refusal(response, "The EHR refused the change", status=422)
        body = json_object(response)
        if not body.get("id"):
            body = await self.upstream.read(rtype, _id_from_location(response.headers["location"]),
                                            request_id) or {}
        return WriteResult(response.status_code, body, [f"{rtype}/{body.get('id')}"])

    # -- entry points --------------------------------------------------------------------------
    async def create(self, caller: Caller, resource_type: str, body: Any, request_id: str | None) -> WriteResult:
        try:
            validate(body, resource_type)  # the shape first: no rule reads a body that is not a resource
            if resource_type == "Communication":
                return await self._message(caller, body, request_id)
            if resource_type == "MedicationRequest":
                return await self._refill(caller, body, request_id)
            if resource_type == "Appointment":
                return await self._book(caller, body, request_id)
            if resource_type == "AllergyIntolerance":
                return await self._report_allergy(caller, body, request_id)
            if resource_type == "ServiceRequest":
                return await self._referral(caller, body, request_id)
            if resource_type == "PaymentReconciliation":
                return await self._pay(caller, body, request_id)
            if resource_type == "QuestionnaireResponse":
                return await self._form_answers(caller, body, None, request_id)
            if resource_type == "Observation":
                return await self._notebook(caller, body, None, request_id)
        except InboundError as exc:
            raise _unprocessable(exc) from exc
        raise forbidden(f"Patients may not create {resource_type} resources")

    async def update(self, caller: Caller, resource_type: str, resource_id: str, body: Any, if_match: str | None,
                     request_id: str | None) -> WriteResult:
        try:
            validate(body, resource_type)
        except InboundError as exc:
            raise _unprocessable(exc) from exc
        current = await self._own(caller, resource_type, resource_id, request_id)
        if if_match and if_match != etag_of(current):
            raise FHIRError(412, "conflict", f"{resource_type}/{resource_id} has changed since you read it")
        try:
            if resource_type == "Patient":
                return await self._update_patient(current, body, request_id)
            if resource_type == "Appointment":
                return await self._change_appointment(current, body, request_id)
            if resource_type == "Communication":
                return await self._mark_read(caller, current, body, request_id)
            if resource_type == "QuestionnaireResponse":
                return await self._form_answers(caller, body, current, request_id)
            if resource_type == "Observation":
                return await self._notebook(caller, body, current, request_id)
        except InboundError as exc:
            raise _unprocessable(exc) from exc
        raise forbidden(f"Patients may not update {resource_type} resources")

    async def _put_unchanged_since(self, current: dict[str, Any], updated: dict[str, Any], conflict: str,
                                   request_id: str | None) -> WriteResult:
        """Replace `current` with `updated` only if nobody changed it since it was read (If-Match)."""
        rtype, rid = current["resourceType"], current["id"]
        response = await self.upstream.request(
            "PUT", f"{rtype}/{rid}", json=updated, request_id=request_id,
            headers={"If-Match": etag_of(current) or "", "Prefer": "return=representation"},
        )
        if response.status_code in (409, 412):
            raise FHIRError(412, "conflict", conflict)
        if response.status_code >= 400:
            raise self.upstream.refusal(response, "The EHR refused the change", status=422)
        return WriteResult(200, json_object(response), [f"{rtype}/{rid}"])

    # -- the rules -----------------------------------------------------------------------------
    async def _care_team(self, patient_ref: str, request_id: str | None) -> set[str]:
        """Everyone on the patient's active care teams: named clinicians and the message teams."""
        bundle = await self.upstream.search("CareTeam", [("subject", patient_ref), ("status", "active"),
                                                         ("_count", "20")], request_id)
        members: set[str] = set()
        for entry in bundle.get("entry") or []:
            team = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(team, dict) or not in_compartment(team, patient_ref.split("/", 1)[1]):
                continue
            for participant in team.get("participant") or []:
                if isinstance(participant, dict) and (ref := inbound.ref_of(participant.get("member"))):
                    members.add(ref)
        return members

    async def _message(self, caller: Caller, body: dict[str, Any], request_id: str | None) -> WriteResult:
        patient_ref = f"Patient/{caller.bound_patient}"
        patient = await self.upstream.read("Patient", caller.bound_patient or "", request_id)
        if patient is None:
            raise FHIRError(422, "business-rule", "Your patient record cannot be found")
        allowed = {ref for r in patient.get("generalPractitioner") or [] if (ref := inbound.ref_of(r))}
        if org := inbound.ref_of(patient.get("managingOrganization")):
            allowed.add(org)
        # Replying to a care-team member who wrote to the patient is always allowed (checked first: a
        # reference into another record is refused before anything else is looked up).
        for ref in inbound.reply_references(body):
            earlier = await self._own(caller, "Communication", plain_reference(ref, "Communication"), request_id)
            if sender := inbound.ref_of(earlier.get("sender")):
                allowed.add(sender)
        allowed |= await self._care_team(patient_ref, request_id)
        files = inbound.message_files(body)
        identifier = next((i for i in body.get("identifier") or []
                           if isinstance(i, dict) and i.get("system") and i.get("value")), None)
        if files and identifier is None:
            raise InboundError("A message with a file needs an identifier, so that a retry does not send it twice")
        binary_ids = [_binary_id(patient_ref, identifier, n) for n in range(len(files))] if identifier else []
        shaped = inbound.message(
            body, patient_ref=patient_ref, sender_ref=caller.fhir_user or patient_ref,
            allowed_recipients=allowed, now=self.clock(),
            attachments=[inbound.stored_attachment(data, kind, title, bid)
                         for (data, kind, title), bid in zip(files, binary_ids, strict=True)],
        )
        if_none_exist = None
        if identifier is not None:
            if_none_exist = f"identifier={identifier['system']}|{identifier['value']}&subject={patient_ref}"
        if not files:
            return await self._create(shaped, if_none_exist, request_id)
        return await self._message_with_files(shaped, files, binary_ids, patient_ref, if_none_exist, request_id)

    async def _message_with_files(self, shaped: dict[str, Any], files: list[tuple[bytes, str, str]],
                                  binary_ids: list[str], patient_ref: str, if_none_exist: str | None,
                                  request_id: str | None) -> WriteResult:
        """The files (as Binary, readable only within the patient's record) and the message that names them,
        in ONE transaction: either all of it is stored or none. A retry finds the message already there and
        writes nothing."""
        found = await self.upstream.search("Communication", [*_query(if_none_exist or ""), ("_count", "1")],
                                           request_id)
        existing = [e["resource"] for e in found.get("entry") or [] if isinstance(e, dict)
                    and isinstance(e.get("resource"), dict)]
        if existing:
            return WriteResult(200, existing[0], [f"Communication/{existing[0].get('id')}"])
        entries: list[dict[str, Any]] = [
            {"resource": {"resourceType": "Binary", "id": bid, "contentType": kind,
                          "securityContext": {"reference": patient_ref},
                          "data": base64.b64encode(data).decode()},
             "request": {"method": "PUT", "url": f"Binary/{bid}"}}
            for (data, kind, _), bid in zip(files, binary_ids, strict=True)
        ]
        entries.append({"fullUrl": "urn:uuid:new-message", "resource": shaped,
                        "request": {"method": "POST", "url": "Communication", "ifNoneExist": if_none_exist}})
        responses = await self._transaction(entries, "The message could not be stored; please try again", request_id)
        new_id = _id_from_location(responses[-1].get("location", ""))
        created = await self.upstream.read("Communication", new_id, request_id) or {}
        return WriteResult(201, created, [f"Communication/{new_id}", *(f"Binary/{b}" for b in binary_ids)])

    async def _mark_read(self, caller: Caller, current: dict[str, Any], body: dict[str, Any],
                         request_id: str | None) -> WriteResult:
        """A patient opens a message sent to them: `received` is stamped, nothing else changes."""
        readers = {f"Patient/{caller.bound_patient}"} | ({caller.fhir_user} if caller.fhir_user else set())
        updated = inbound.message_receipt(current, body, readers=readers, now=self.clock())
        if updated is None:
            return WriteResult(200, current, [f"Communication/{current['id']}"])
        return await self._put_unchanged_since(current, updated, "The message changed meanwhile; please reload it",
                                               request_id)

    async def _organization(self, org_id: str | None, fits: Callable[[Any], bool], refusal: str,
                            request_id: str | None) -> dict[str, Any] | None:
        """The Organization a patient named, when it is one of the kind they may name (`fits`); one and
        the same refusal for a malformed id, nothing there and anything else."""
        if org_id is None:
            return None
        org = await self.upstream.read("Organization", org_id, request_id) if is_fhir_id(org_id) else None
        if org is None or not fits(org):
            raise InboundError(refusal)
        return org

    async def _refills_left(self, prescription: dict[str, Any], patient_ref: str,
                            request_id: str | None) -> int | None:
        """Refills left on a prescription, counted from the pharmacy's fills the EHR holds."""
        found = await self.upstream.search("MedicationDispense", [
            ("prescription", f"MedicationRequest/{prescription['id']}"), ("patient", patient_ref),
            ("_count", "200")], request_id)
        dispenses = [e.get("resource") for e in found.get("entry") or [] if isinstance(e, dict)]
        return medication(prescription, dispenses=dispenses).refills_left

    async def _refill(self, caller: Caller, body: dict[str, Any], request_id: str | None) -> WriteResult:
        patient_ref = f"Patient/{caller.bound_patient}"
        original = await self._own(caller, "MedicationRequest", inbound.refill_basis(body), request_id)
        pharmacy = await self._organization(inbound.refill_pharmacy(body), is_pharmacy, inbound.PHARMACY_UNKNOWN,
                                            request_id)
        left = await self._refills_left(original, patient_ref, request_id) if original.get("status") == "active" \
            else None
        shaped = inbound.refill_request(
            body, original, patient_ref=patient_ref, requester_ref=caller.fhir_user or patient_ref, now=self.clock(),
            pharmacy=pharmacy, refills_left=left,
        )
        # One open refill request per prescription: a retry (or double click, or asking again while the
        # care team is still on it) finds the open one.
        if_none_exist = (f"identifier={inbound.REFILL_IDENTIFIER_SYSTEM}|{original['id']}"
                         f"&status={','.join(inbound.REFILL_OPEN_STATUSES)}&patient={patient_ref}")
        return await self._create(shaped, if_none_exist, request_id)

    async def _referral(self, caller: Caller, body: dict[str, Any], request_id: str | None) -> WriteResult:
        patient_ref = f"Patient/{caller.bound_patient}"
        practice = await self._organization(inbound.referral_practice(body), lambda o: specialty_of(o) is not None,
                                            inbound.PRACTICE_UNKNOWN, request_id)
        shaped = inbound.referral_request(body, patient_ref=patient_ref, requester_ref=caller.fhir_user or patient_ref,
                                          now=self.clock(), practice=practice)
        if_none_exist = None
        if identifier := next(iter(shaped.get("identifier") or []), None):
            if_none_exist = f"identifier={identifier['system']}|{identifier['value']}&patient={patient_ref}"
        return await self._create(shaped, if_none_exist, request_id)

    async def _book(self, caller: Caller, body: dict[str, Any], request_id: str | None) -> WriteResult:
        patient_ref = f"Patient/{caller.bound_patient}"
        actors = {inbound.ref_of(p.get("actor")) for p in body.get("participant") or [] if isinstance(p, dict)}
        if patient_ref not in actors:
            raise InboundError("You can only book appointments for yourself")
        slot = await self._slot(inbound.slot_of(body), request_id)
        schedule_id = (inbound.ref_of(slot.get("schedule")) or "").split("/")[-1]
        schedule = await self.upstream.read("Schedule", schedule_id, request_id) if is_fhir_id(schedule_id) else None
        appointment = inbound.booking(body, slot, schedule, patient_ref=patient_ref, now=self.clock())
        entries = [
            {"resource": inbound.slot_with_status(slot, "busy"),
             "request": {"method": "PUT", "url": f"Slot/{slot['id']}", "ifMatch": etag_of(slot)}},
            {"fullUrl": "urn:uuid:new-appointment", "resource": appointment,
             "request": {"method": "POST", "url": "Appointment"}},
        ]
        responses = await self._transaction(entries, "That time has just been taken; please pick another slot",
                                            request_id)
        new_id = _id_from_location(responses[1].get("location", ""))
        created = await self.upstream.read("Appointment", new_id, request_id) or {}
        return WriteResult(201, created, [f"Appointment/{new_id}", f"Slot/{slot['id']}"])

    async def _change_appointment(self, current: dict[str, Any], body: dict[str, Any],
                                  request_id: str | None) -> WriteResult:
        now = self.clock()
        kind = inbound.appointment_change(current, body, now, self.change_notice_hours)
        old_slot = await self._slot(inbound.slot_of(current), request_id)
        touched = [f"Appointment/{current['id']}", f"Slot/{old_slot['id']}"]
        entries = [{"resource": inbound.slot_with_status(old_slot, "free"),
                    "request": {"method": "PUT", "url": f"Slot/{old_slot['id']}", "ifMatch": etag_of(old_slot)}}]
        if kind == "cancel":
            updated = inbound.cancelled(current, body.get("cancelationReason"))
        else:
            new_slot = await self._slot(inbound.slot_of(body), request_id)
            updated = inbound.rescheduled(current, new_slot, now)
            touched.append(f"Slot/{new_slot['id']}")
            entries.append({"resource": inbound.slot_with_status(new_slot, "busy"),
                            "request": {"method": "PUT", "url": f"Slot/{new_slot['id']}",
                                        "ifMatch": etag_of(new_slot)}})
        updated = {k: v for k, v in updated.items() if k != "meta"}
        entries.append({"resource": updated, "request": {
            "method": "PUT", "url": f"Appointment/{current['id']}", "ifMatch": etag_of(current)}})
        await self._transaction(entries, "The appointment or slot changed meanwhile; please try again", request_id)
        fresh = await self.upstream.read("Appointment", current["id"], request_id) or {}
        return WriteResult(200, fresh, touched)

    async def _update_patient(self, current: dict[str, Any], body: dict[str, Any],
                              request_id: str | None) -> WriteResult:
        updated = inbound.patient_update(current, body)
        updated = {k: v for k, v in updated.items() if k != "meta"}
        return await self._put_unchanged_since(
            current, updated, "Your record changed meanwhile; please reload and try again", request_id)

    async def _report_allergy(self, caller: Caller, body: dict[str, Any], request_id: str | None) -> WriteResult:
        """An allergy the patient reports, always unconfirmed and recorded by them; a retry carrying the same
        identifier finds the first report instead of adding a second."""
        patient_ref = f"Patient/{caller.bound_patient}"
        shaped = inbound.reported_allergy(body, patient_ref=patient_ref,
                                          reporter_ref=caller.fhir_user or patient_ref, now=self.clock())
        identifier = inbound.reported_allergy_identifier(shaped)
        if_none_exist = None
        if identifier is not None:
            if_none_exist = f"identifier={identifier['system']}|{identifier['value']}&patient={patient_ref}"
        return await self._create(shaped, if_none_exist, request_id)

    async def _pay(self, caller: Caller, body: dict[str, Any], request_id: str | None) -> WriteResult:
        """Pay one of the caller's open statements in full. The statement is checked before anything is
        charged; the card token is charged once per (patient, form submission); then the payment record,
        its notice and the settled statement are written in ONE transaction (the statement with `If-Match`),
        and if that fails the charge is refunded. The answer is the statement as it now stands: payment
        records are not readable by patients, their statement is."""
        patient_ref = f"Patient/{caller.bound_patient}"
        ask = payments.payment_ask(body)
        invoice = await self._own(caller, "Invoice", ask.invoice_id, request_id)
        key = payments.payment_key(patient_ref, ask.submission)
        found = await self.upstream.search("PaymentReconciliation",
                                           [("identifier", f"{payments.PAYMENT_SYSTEM}|{key}"), ("_count", "1")],
                                           request_id)
        if any(isinstance(e, dict) and isinstance(e.get("resource"), dict) for e in found.get("entry") or []):
            return WriteResult(200, invoice, [f"Invoice/{invoice['id']}"])  # paid already with this form
        payments.check_payable(invoice, ask)
        payments.settled_statement(invoice, ask, "", self.clock())  # a statement we could not settle: refuse now
        if self.payments is None:
            raise FHIRError(503, "transient", "Payments cannot be taken right now; nothing was charged")
        number = next((i.get("value") for i in invoice.get("identifier") or [] if isinstance(i, dict)), invoice["id"])
        try:
            charge = await self.payments.charge(ask.token, ask.amount, ask.currency, idempotency_key=key,
                                                description=f"Statement {number}")
        except PaymentDeclined as exc:
            raise FHIRError(422, "business-rule", exc.reason) from exc
        except PaymentUnavailable as exc:
            raise FHIRError(503, "transient", "The payment service is not answering; nothing was charged") from exc
        try:
            recon, notice, settled = payments.payment_records(invoice, ask, key=key, charge_id=charge.id,
                                                              brand=charge.brand, last4=charge.last4, now=self.clock())
            entries = [
                {"fullUrl": "urn:uuid:payment", "resource": recon,
                 "request": {"method": "POST", "url": "PaymentReconciliation",
                             "ifNoneExist": f"identifier={payments.PAYMENT_SYSTEM}|{key}"}},
                {"fullUrl": "urn:uuid:payment-notice", "resource": notice,
                 "request": {"method": "POST", "url": "PaymentNotice"}},
                {"resource": settled, "request": {"method": "PUT", "url": f"Invoice/{invoice['id']}",
                                                  "ifMatch": etag_of(invoice)}},
            ]
            responses = await self._transaction(
                entries, "The statement changed while you were paying; nothing was charged. Please look at it again",
                request_id)
        except BaseException:  # whatever stopped the record being written, the money goes back
            log.warning("payment not recorded; refunding the charge")
            await self.payments.refund(charge, idempotency_key=f"{key}-refund")
            raise
        fresh = await self.upstream.read("Invoice", invoice["id"], request_id) or settled
        return WriteResult(201, fresh, [f"PaymentReconciliation/{_id_from_location(responses[0].get('location', ''))}",
                                        f"PaymentNotice/{_id_from_location(responses[1].get('location', ''))}",
                                        f"Invoice/{invoice['id']}"])

    async def _published_form(self, canonical: str, request_id: str | None) -> dict[str, Any]:
        """The active Questionnaire the clinic publishes at this canonical URL (and version, if given)."""
        url, _, version = canonical.partition("|")
        params = [("url", url), ("status", "active"), ("_count", "5")] + ([("version", version)] if version else [])
        bundle = await self.upstream.search("Questionnaire", params, request_id)
        for entry in bundle.get("entry") or []:
            form = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(form, dict) and form.get("resourceType") == "Questionnaire" and form.get("url") == url \
                    and form.get("status") == "active" and version in ("", form.get("version")):
                return form
        raise FHIRError(422, "business-rule", "That form is not one your clinic offers")

    async def _form_answers(self, caller: Caller, body: dict[str, Any], current: dict[str, Any] | None,
                            request_id: str | None) -> WriteResult:
        """A patient's answers to one of the clinic's forms: a draft saved (and saved again in place) or the
        form sent. Only published forms, only about the caller's own record, only for their own visit, and
        nothing changes once it is sent."""
        patient_ref = f"Patient/{caller.bound_patient}"
        if current is not None and current.get("status") != "in-progress":
            raise InboundError(inbound.FORM_SENT)  # checked first: a sent form is never touched again
        questionnaire = await self._published_form(inbound.response_questionnaire(body), request_id)
        appointment = inbound.response_appointment(body)
        if appointment is not None:
            # Another record's visit answers exactly like one that does not exist.
            await self._own(caller, "Appointment", plain_reference(appointment, "Appointment"), request_id)
        shaped = inbound.questionnaire_response(
            body, questionnaire, current, patient_ref=patient_ref, author_ref=caller.fhir_user or patient_ref,
            appointment_ref=appointment, now=self.clock())
        if current is None:
            identifier = shaped.get("identifier") or {}
            if_none_exist = None
            if identifier.get("system") and identifier.get("value"):
                if_none_exist = f"identifier={identifier['system']}|{identifier['value']}&subject={patient_ref}"
            return await self._create(shaped, if_none_exist, request_id)
        return await self._put_unchanged_since(
            current, shaped, "The form was saved from somewhere else meanwhile; please reload it", request_id)

    async def _notebook(self, caller: Caller, body: dict[str, Any], current: dict[str, Any] | None,
                        request_id: str | None) -> WriteResult:
        """An entry in the patient's health notebook (a symptom, a side effect of one of their medicines, a
        question for one of their visits): created private or shared, changed only by the patient or the
        caregiver who wrote it, never made private again once shared. What the clinic recorded is never
        changed this way."""
        patient_ref = f"Patient/{caller.bound_patient}"
        author_ref = caller.fhir_user or patient_ref
        if not is_notebook_entry(body):
            raise forbidden(NOT_A_NOTEBOOK_ENTRY)  # results, vital signs... are the clinic's to record
        if current is not None and not editable(current, writers={patient_ref, author_ref}):
            raise forbidden(NOT_YOURS)
        medicine = name = None
        if (rx := entry_medicine(body)) is not None:
            # Another record's prescription answers exactly like one that does not exist.
            medicine = await self._own(caller, "MedicationRequest", rx, request_id)
            name = medication(medicine).name
        visit_ref = None
        if (visit := entry_visit(body)) is not None:
            visit_ref = f"Appointment/{(await self._own(caller, 'Appointment', visit, request_id))['id']}"
        shaped = notebook_write(body, current, patient_ref=patient_ref, author_ref=author_ref, medicine=medicine,
                                medicine_name=name, visit_ref=visit_ref, now=self.clock())
        if current is not None:
            return await self._put_unchanged_since(
                current, shaped, "This entry was changed somewhere else meanwhile; please reload it", request_id)
        identifier = next(iter(shaped.get("identifier") or []), None)
        if_none_exist = None
        if identifier is not None:
            if_none_exist = f"identifier={identifier['system']}|{identifier['value']}&subject={patient_ref}"
        return await self._create(shaped, if_none_exist, request_id)
