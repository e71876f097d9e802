"""The care team's decisions on what patients asked for, one rule each (the shaping is mappers/decisions.py).

A decision is an ordinary FHIR write by a staff member (a Practitioner's token with `user/` scopes):

- POST MedicationRequest (intent=order) `basedOn` a refill request: the refill approved;
- PUT the refill request `cancelled` with a `statusReason`: declined, the reason for the patient;
- POST ServiceRequest (intent=order) `basedOn` a referral request: accepted; PUT it `revoked` with a note;
- PUT a patient-reported AllergyIntolerance `confirmed` or `refuted`;
- POST Coverage identified by the patient's insurance request message: the card confirmed.

Every rule reads what the decision is about and allows it only when (1) it is about a patient whose
active CareTeam names the staff member (else it answers like a missing resource: no existence leak, and
no break-the-glass for decisions), (2) the staff member's PractitionerRole holds a role that makes this
decision (mappers.decisions.DECIDERS), and (3) the request is still open. What is written goes as ONE
transaction whose updates carry `If-Match`, so two colleagues deciding at once cannot both succeed and a
failure leaves nothing half-done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mappers import decisions
from mappers.catalogue import specialty_of
from mappers.inbound import REFILL_IDENTIFIER_SYSTEM, ref_of
from mappers.validation import InboundError, is_fhir_id, plain_reference, validate

from .caller import Caller
from .compartment import in_compartment
from .errors import FHIRError, forbidden
from .upstream import Upstream, json_object

ROLE_WORDS = {"refill-approve": "approve refills", "refill-deny": "decline refills",
              "referral": "decide on referrals", "allergy": "check reported allergies",
              "insurance": "confirm insurance cards"}


@dataclass
class Decided:
    """What a decision wrote: the resource to answer with and every reference it touched."""

    status: int
    resource: dict[str, Any]
    touched: list[str] = field(default_factory=list)


def _etag(resource: dict[str, Any]) -> str:
    version_id = (resource.get("meta") or {}).get("versionId")
    return f'W/"{version_id}"' if version_id else ""


def _id_from_location(location: str) -> str:
    parts = location.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1]


def is_staff(caller: Caller) -> bool:
    return caller.bound_patient is None and caller.context == "user" and bool(
        caller.fhir_user and caller.fhir_user.startswith("Practitioner/"))


class DecisionWrites:
    """The staff writes that answer a patient's request; None from `create`/`update` means "not a decision"
    (the write is an ordinary staff write and goes on as before)."""

    def __init__(self, upstream: Upstream, clock: Callable[[], datetime] | None = None) -> None:
        self.upstream = upstream
        self.clock = clock or (lambda: datetime.now(UTC))

    # -- entry points ----------------------------------------------------------------------------------
    async def create(self, caller: Caller, resource_type: str, body: Any, request_id: str | None
                     ) -> Decided | None:
        if not is_staff(caller) or not isinstance(body, dict):
            return None
        try:
            if resource_type == "MedicationRequest" and body.get("basedOn"):
                return await self._approve_refill(caller, body, request_id)
            if resource_type == "ServiceRequest" and body.get("basedOn"):
                return await self._accept_referral(caller, body, request_id)
            if resource_type == "Coverage":
                return await self._confirm_coverage(caller, body, request_id)
        except InboundError as exc:
            raise FHIRError(422, "business-rule", str(exc)) from exc
        return None

    async def update(self, caller: Caller, resource_type: str, resource_id: str, body: Any, if_match: str | None,
                     request_id: str | None) -> Decided | None:
        if not is_staff(caller) or resource_type not in ("MedicationRequest", "ServiceRequest", "AllergyIntolerance"):
            return None
        current = await self._read(resource_type, resource_id, request_id)
        if resource_type == "MedicationRequest" and not _is_refill_request(current):
            return None  # an ordinary prescription change, not an answer to a patient
        if resource_type == "ServiceRequest" and current.get("intent") != "proposal":
            return None
        if if_match and if_match != _etag(current):
            raise FHIRError(412, "conflict", f"{resource_type}/{resource_id} has changed since you read it")
        patient_ref = _patient_of(current)
        await self._on_care_team(caller, patient_ref, resource_type, resource_id, request_id)
        now, me = self.clock(), caller.fhir_user or ""
        try:
            if resource_type == "MedicationRequest":
                await self._may(caller, "refill-deny", request_id)
                updated = decisions.refill_denied(current, body, decider_ref=me, now=now)
            elif resource_type == "ServiceRequest":
                await self._may(caller, "referral", request_id)
                updated = decisions.referral_declined(current, body, decider_ref=me, now=now)
            else:
                await self._may(caller, "allergy", request_id)
                updated = decisions.allergy_checked(current, body, checker_ref=me, now=now)
        except InboundError as exc:
            raise FHIRError(422, "business-rule", str(exc)) from exc
        ref = f"{resource_type}/{resource_id}"
        await self._transaction([_put(updated, current)], request_id)
        fresh = await self.upstream.read(resource_type, resource_id, request_id) or updated
        return Decided(200, fresh, [ref])

    # -- checks ----------------------------------------------------------------------------------------
    async def _read(self, resource_type: str, resource_id: str | None, request_id: str | None) -> dict[str, Any]:
        found = await self.upstream.read(resource_type, resource_id, request_id) \
            if resource_id and is_fhir_id(resource_id) else None
        if not isinstance(found, dict) or found.get("resourceType") != resource_type:
            raise FHIRError(404, "not-found", f"The {resource_type} you referred to is not known")
        return found

    async def _on_care_team(self, caller: Caller, patient_ref: str | None, resource_type: str, resource_id: str,
                            request_id: str | None) -> None:
        """A decision about a patient only by someone on that patient's care team; for anyone else the
        request answers exactly like one that does not exist."""
        if patient_ref is None or not await self._care_team_has(patient_ref, caller, request_id):
            raise FHIRError(404, "not-found", f"The {resource_type} you referred to is not known")

    async def _care_team_has(self, patient_ref: str, caller: Caller, request_id: str | None) -> bool:
        me = caller.fhir_user or ""
        mine = {me} | {f"PractitionerRole/{r.get('id')}" for r in await self._roles(caller, request_id)}
        bundle = await self.upstream.search("CareTeam", [("subject", patient_ref), ("status", "active"),
                                                         ("_count", "20")], request_id)
        for entry in bundle.get("entry") or []:
            team = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(team, dict) or not in_compartment(team, patient_ref.split("/", 1)[1]):
                continue
            if any(isinstance(p, dict) and ref_of(p.get("member")) in mine for p in team.get("participant") or []):
                return True
        return False

    async def _roles(self, caller: Caller, request_id: str | None) -> list[dict[str, Any]]:
        bundle = await self.upstream.search("PractitionerRole", [("practitioner", caller.fhir_user or ""),
                                                                 ("active", "true"), ("_count", "20")], request_id)
        return [e["resource"] for e in bundle.get("entry") or [] if isinstance(e, dict)
                and isinstance(e.get("resource"), dict)
                and ref_of(e["resource"].get("practitioner")) == caller.fhir_user]

    async def _may(self, caller: Caller, decision: str, request_id: str | None) -> None:
        roles = decisions.staff_roles(await self._roles(caller, request_id))
        if not decisions.may_decide(decision, roles):
            raise forbidden(f"Your role does not {ROLE_WORDS[decision]}" if roles else
                            "You hold no staff role here")

    async def _transaction(self, entries: list[dict[str, Any]], request_id: str | None) -> list[dict[str, Any]]:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        response = await self.upstream.request("POST", "", json=bundle, request_id=request_id)
        if response.status_code in (409, 412):
            raise FHIRError(409, "conflict", "Someone else answered this request meanwhile; please reload it")
        if response.status_code >= 400:
            raise self.upstream.refusal(response, "The EHR refused the change", status=422)
        return [e.get("response", {}) for e in json_object(response).get("entry", [])]

    async def _created(self, resource_type: str, responses: list[dict[str, Any]], touched: list[str],
                       request_id: str | None) -> Decided:
        new_id = _id_from_location(responses[0].get("location", ""))
        created = await self.upstream.read(resource_type, new_id, request_id) or {}
        return Decided(201, created, [f"{resource_type}/{new_id}", *touched])

    # -- the rules -------------------------------------------------------------------------------------
    async def _approve_refill(self, caller: Caller, body: dict[str, Any], request_id: str | None) -> Decided:
        request = await self._read("MedicationRequest", decisions.decision_basis(body, "MedicationRequest"),
                                   request_id)
        if not _is_refill_request(request):
            raise InboundError("An order based on a request answers a patient's refill request")
        await self._on_care_team(caller, _patient_of(request), "MedicationRequest", request["id"], request_id)
        await self._may(caller, "refill-approve", request_id)
        rx_id = decisions.refill_prescription(request)
        prescription = await self.upstream.read("MedicationRequest", rx_id, request_id) if rx_id else None
        if not isinstance(prescription, dict) or _patient_of(prescription) != _patient_of(request):
            prescription = None
        order = decisions.refill_order(body, request, prescription, prescriber_ref=caller.fhir_user or "",
                                       now=self.clock())
        entries = [{"fullUrl": "urn:uuid:refill-order", "resource": order,
                    "request": {"method": "POST", "url": "MedicationRequest"}},
                   _put(decisions.refill_answered(request), request)]
        touched = [f"MedicationRequest/{request['id']}"]
        if prescription is not None and prescription.get("status") == "active":
            entries.append(_put(decisions.prescription_replaced(prescription), prescription))
            touched.append(f"MedicationRequest/{prescription['id']}")
        responses = await self._transaction(entries, request_id)
        return await self._created("MedicationRequest", responses, touched, request_id)

    async def _accept_referral(self, caller: Caller, body: dict[str, Any], request_id: str | None) -> Decided:
        request = await self._read("ServiceRequest", decisions.decision_basis(body, "ServiceRequest"), request_id)
        if request.get("intent") != "proposal":
            raise InboundError("An order based on a request answers a patient's referral request")
        await self._on_care_team(caller, _patient_of(request), "ServiceRequest", request["id"], request_id)
        await self._may(caller, "referral", request_id)
        practice = None
        if practice_id := decisions.referral_practice_of(body):
            practice = await self.upstream.read("Organization", practice_id, request_id)
            if not isinstance(practice, dict) or specialty_of(practice) is None:
                raise InboundError("Pick a specialist practice from the list")
        order = decisions.referral_order(body, request, practice, referrer_ref=caller.fhir_user or "",
                                         now=self.clock())
        entries = [{"fullUrl": "urn:uuid:referral-order", "resource": order,
                    "request": {"method": "POST", "url": "ServiceRequest"}},
                   _put(decisions.referral_answered(request), request)]
        responses = await self._transaction(entries, request_id)
        return await self._created("ServiceRequest", responses, [f"ServiceRequest/{request['id']}"], request_id)

    async def _confirm_coverage(self, caller: Caller, body: dict[str, Any], request_id: str | None) -> Decided:
        validate(body, "Coverage")
        message = await self._read("Communication", decisions.insurance_request_of(body), request_id)
        if not decisions.is_insurance_request(message):
            raise InboundError("That message is not an insurance request")
        patient_ref = ref_of(message.get("subject"))
        await self._on_care_team(caller, patient_ref, "Communication", message["id"], request_id)
        await self._may(caller, "insurance", request_id)
        coverage = decisions.confirmed_coverage(body, message)
        # One card per request: confirming twice finds the first.
        if_none_exist = f"identifier={decisions.INSURANCE_REQUEST_SYSTEM}|{message['id']}&beneficiary={patient_ref}"
        entries = [{"fullUrl": "urn:uuid:coverage", "resource": coverage,
                    "request": {"method": "POST", "url": "Coverage", "ifNoneExist": if_none_exist}}]
        responses = await self._transaction(entries, request_id)
        return await self._created("Coverage", responses, [], request_id)


def _is_refill_request(resource: dict[str, Any]) -> bool:
    return resource.get("intent") == "proposal" and any(
        isinstance(i, dict) and i.get("system") == REFILL_IDENTIFIER_SYSTEM for i in resource.get("identifier") or [])


def _patient_of(resource: dict[str, Any]) -> str | None:
    ref = ref_of(resource.get("subject")) or ref_of(resource.get("patient"))
    return f"Patient/{pid}" if (pid := plain_reference(ref, "Patient")) else None


def _put(updated: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    rtype, rid = current["resourceType"], current["id"]
    return {"resource": {**{k: v for k, v in updated.items() if k != "meta"}, "id": rid},
            "request": {"method": "PUT", "url": f"{rtype}/{rid}", "ifMatch": _etag(current)}}
