"""The care team's answers to what patients asked for, as the resources the EHR records (pure functions).

Each decision is an ordinary FHIR write the staff area sends through the gateway; the gateway's rule
(fhir_gateway/decision_writes.py) reads what the decision is about and calls one function here, which
checks the request and returns the exact resources to write, or raises InboundError in words staff act on.

- refill request (MedicationRequest proposal): approve = POST an order `basedOn` it; written: the order
  (replacing the prescription, `priorPrescription`), the request and the old prescription `completed`.
  Deny = PUT it `cancelled` with a `statusReason`, the words the patient reads.
- referral request (ServiceRequest proposal): accept = POST an order `basedOn` it (the request `completed`);
  decline = PUT it `revoked` with a note, the reason, by the staff member.
- reported allergy (unconfirmed): PUT its `verificationStatus` confirmed or refuted.
- insurance change (a billing message): POST a Coverage identified by the message, `active`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .catalogue import specialty_in, specialty_of
from .coverage import CHANGES
from .coverage import SUBJECT as INSURANCE_SUBJECT
from .inbound import REFILL_IDENTIFIER_SYSTEM, REFILL_OPEN_STATUSES, ref_of
from .messages import STAFF_ROLE_SYSTEM, TOPIC_SYSTEM
from .validation import InboundError, plain_reference, validate

REFILL_ORDER_SYSTEM = "urn:portal:refill-order"
REFERRAL_ORDER_SYSTEM = "urn:portal:referral-order"
INSURANCE_REQUEST_SYSTEM = "urn:portal:insurance-request"
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
VERIFICATION_WORDS = {"confirmed": "Confirmed", "refuted": "Refuted"}
REFERRAL_OPEN_STATUSES = ("draft", "active", "on-hold")
ALLERGY_OPEN = "unconfirmed"
REASON_MAX = 500
# Elements the EHR keeps itself; never compared when a decision replaces a request.
BOOKKEEPING = frozenset({"meta", "text"})

# Who may make which decision (the staff roles of the clinic's PractitionerRoles). Prescribing is a
# clinician's; a nurse may turn a refill down (to be seen first) and check an allergy; referral requests
# are decided by clinicians and the front desk's referral coordinators; insurance by the front desk and
# billing.
DECIDERS: dict[str, frozenset[str]] = {
    "refill-approve": frozenset({"clinician"}),
    "refill-deny": frozenset({"clinician", "nurse"}),
    "referral": frozenset({"clinician", "front-desk"}),
    "allergy": frozenset({"clinician", "nurse"}),
    "insurance": frozenset({"front-desk", "billing"}),
}


def may_decide(decision: str, roles: set[str] | frozenset[str]) -> bool:
    return bool(DECIDERS.get(decision, frozenset()) & set(roles))


def staff_roles(practitioner_roles: list[Any]) -> set[str]:
    """The staff roles (clinician, nurse, front-desk, billing) an active PractitionerRole list holds."""
    found: set[str] = set()
    for role in practitioner_roles:
        if not isinstance(role, Mapping) or role.get("active") is False:
            continue
        for concept in role.get("code") or []:
            for coding in (concept.get("coding") or []) if isinstance(concept, Mapping) else []:
                if isinstance(coding, Mapping) and coding.get("system") == STAFF_ROLE_SYSTEM and coding.get("code"):
                    found.add(str(coding["code"]))
    return found


def _items(resource: Mapping[str, Any], key: str) -> list[Any]:
    value = resource.get(key)
    return value if isinstance(value, list) else []


def _without_bookkeeping(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in BOOKKEEPING}


def _reason(text: Any, what: str) -> str:
    words = " ".join(text.split()) if isinstance(text, str) else ""
    if not words:
        raise InboundError(f"Say why {what}; the patient reads it")
    if len(words) > REASON_MAX:
        raise InboundError(f"Keep the reason to {REASON_MAX} characters or fewer")
    return words


def _staff_note(text: str, author_ref: str, now: datetime) -> dict[str, Any]:
    return {"authorReference": {"reference": author_ref}, "time": now.isoformat(timespec="seconds"), "text": text}


def _new_notes(current: Mapping[str, Any], proposed: Mapping[str, Any]) -> list[str]:
    """The note texts a proposed update adds after the notes already there (earlier ones never change)."""
    before, after = _items(current, "note"), _items(proposed, "note")
    if after[: len(before)] != before:
        raise InboundError("Notes already on the request cannot be changed")
    texts = [n.get("text") for n in after[len(before):] if isinstance(n, Mapping)]
    return [" ".join(t.split()) for t in texts if isinstance(t, str) and t.strip()]


def _only_changed(current: Mapping[str, Any], proposed: Mapping[str, Any], allowed: set[str]) -> None:
    keys = (set(current) | set(proposed)) - BOOKKEEPING - {"resourceType", "id"} - allowed
    changed = sorted(k for k in keys if current.get(k) != proposed.get(k))
    if changed:
        raise InboundError(f"Only the decision can be recorded here; these cannot change: {', '.join(changed)}")


def decision_basis(proposed: Any, resource_type: str) -> str | None:
    """The id of the one request (`basedOn`) an order answers: a plain `<resource_type>/<id>`, else None
    (answered like a request that does not exist)."""
    refs = [ref_of(b) for b in _items(proposed, "basedOn")] if isinstance(proposed, Mapping) else []
    if len(refs) != 1 or not refs[0]:
        raise InboundError("An order made from a request names that one request in basedOn")
    return plain_reference(refs[0], resource_type)


# -- refills ----------------------------------------------------------------------------------------------
def is_open_refill(resource: Mapping[str, Any]) -> bool:
    return (resource.get("intent") == "proposal" and resource.get("status") in REFILL_OPEN_STATUSES
            and any(isinstance(i, Mapping) and i.get("system") == REFILL_IDENTIFIER_SYSTEM
                    for i in _items(resource, "identifier")))


def refill_prescription(request: Mapping[str, Any]) -> str | None:
    """The id of the prescription a refill request asks to refill."""
    refs = [ref_of(b) for b in _items(request, "basedOn")]
    return next((rid for r in refs if (rid := plain_reference(r, "MedicationRequest"))), None)


def _check_open_refill(request: Mapping[str, Any]) -> None:
    if not is_open_refill(request):
        raise InboundError("This refill request has already been answered" if request.get("intent") == "proposal"
                           else "This is not a refill request")


def refill_order(proposed: Any, request: Mapping[str, Any], prescription: Mapping[str, Any] | None, *,
                 prescriber_ref: str, now: datetime) -> dict[str, Any]:
    """The prescription an approved refill request becomes: the medicine, dose and supply of the one it
    refills (else of the request), to the pharmacy the patient chose, prescribed by the approver and
    replacing the old one (`priorPrescription`)."""
    validate(proposed, "MedicationRequest")
    _check_open_refill(request)
    if proposed.get("intent") != "order":
        raise InboundError("Approving a refill makes an order (intent 'order')")
    if proposed.get("status") not in (None, "active"):
        raise InboundError("An approved refill is an active prescription")
    if ref_of(proposed.get("subject")) not in (None, ref_of(request.get("subject"))):
        raise InboundError("The prescription is for the patient who asked")
    source = prescription or request
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "identifier": [{"system": REFILL_ORDER_SYSTEM, "value": str(request["id"])}],
        "status": "active",
        "intent": "order",
        "subject": request["subject"],
        "authoredOn": now.isoformat(timespec="seconds"),
        "requester": {"reference": prescriber_ref},
        "basedOn": [{"reference": f"MedicationRequest/{request['id']}"}],
    }
    for key in ("medicationCodeableConcept", "medicationReference", "dosageInstruction", "reasonCode",
                "reasonReference", "courseOfTherapyType", "category"):
        if source.get(key):
            order[key] = source[key]
    dispense = dict(source.get("dispenseRequest") or {})
    if performer := (request.get("dispenseRequest") or {}).get("performer"):
        dispense["performer"] = performer  # the pharmacy the patient chose
    dispense.pop("validityPeriod", None)
    if dispense:
        order["dispenseRequest"] = dispense
    if prescription is not None:
        order["priorPrescription"] = {"reference": f"MedicationRequest/{prescription['id']}"}
    notes = [n.get("text") for n in _items(proposed, "note") if isinstance(n, Mapping)]
    if texts := [" ".join(t.split()) for t in notes if isinstance(t, str) and t.strip()]:
        order["note"] = [_staff_note(" ".join(texts)[:REASON_MAX], prescriber_ref, now)]
    return validate(order, "MedicationRequest")


def refill_answered(request: Mapping[str, Any]) -> dict[str, Any]:
    """The refill request once its order is written: completed."""
    return validate({**_without_bookkeeping(request), "status": "completed"}, "MedicationRequest")


def prescription_replaced(prescription: Mapping[str, Any]) -> dict[str, Any]:
    """The old prescription once a renewed one replaces it: completed (the new one names it as prior)."""
    return validate({**_without_bookkeeping(prescription), "status": "completed"}, "MedicationRequest")


def refill_denied(current: Mapping[str, Any], proposed: Any, *, decider_ref: str, now: datetime) -> dict[str, Any]:
    """A refill request turned down: `cancelled`, with the reason (`statusReason.text`) the patient reads on
    their medicines page. Nothing else about the request changes."""
    validate(proposed, "MedicationRequest")
    _check_open_refill(current)
    if proposed.get("status") != "cancelled":
        raise InboundError("A refill request is answered by approving it (an order based on it) or by "
                           "cancelling it with a reason")
    reason = _reason((proposed.get("statusReason") or {}).get("text"), "the refill is declined")
    _only_changed(current, proposed, {"status", "statusReason", "note"})
    updated = {**_without_bookkeeping(current), "status": "cancelled", "statusReason": {"text": reason}}
    if extra := _new_notes(current, proposed):
        updated["note"] = [*_items(current, "note"), _staff_note(" ".join(extra)[:REASON_MAX], decider_ref, now)]
    return validate(updated, "MedicationRequest")


# -- referrals ----------------------------------------------------------------------------------------------
def is_open_referral(resource: Mapping[str, Any]) -> bool:
    return (resource.get("resourceType") == "ServiceRequest" and resource.get("intent") == "proposal"
            and resource.get("status") in REFERRAL_OPEN_STATUSES)


def _check_open_referral(request: Mapping[str, Any]) -> None:
    if not is_open_referral(request):
        raise InboundError("This referral request has already been answered" if request.get("intent") == "proposal"
                           else "This is not a referral request")


def referral_practice_of(proposed: Any) -> str | None:
    """The id of the practice an accepted referral goes to (`performer`), None when the order names none."""
    refs = [ref_of(p) for p in _items(proposed, "performer")] if isinstance(proposed, Mapping) else []
    if not refs:
        return None
    practice_id = plain_reference(refs[0], "Organization") if len(refs) == 1 else None
    if practice_id is None:
        raise InboundError("Pick a specialist practice from the list")
    return practice_id


def referral_order(proposed: Any, request: Mapping[str, Any], practice: Mapping[str, Any] | None, *,
                   referrer_ref: str, now: datetime) -> dict[str, Any]:
    """The referral an accepted request becomes, to `practice` (a specialist practice of the asked-for
    specialty, already read) or the one the patient named."""
    validate(proposed, "ServiceRequest")
    _check_open_referral(request)
    if proposed.get("intent") != "order":
        raise InboundError("Accepting a referral request makes a referral (intent 'order')")
    if ref_of(proposed.get("subject")) not in (None, ref_of(request.get("subject"))):
        raise InboundError("The referral is for the patient who asked")
    specialty = specialty_in(request.get("performerType"))
    if practice is not None and specialty is not None and specialty_of(practice) != specialty:
        raise InboundError("That practice does not offer the specialty the patient asked for")
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": REFERRAL_ORDER_SYSTEM, "value": str(request["id"])}],
        "status": "active",
        "intent": "order",
        "subject": request["subject"],
        "authoredOn": now.isoformat(timespec="seconds"),
        "requester": {"reference": referrer_ref},
        "basedOn": [{"reference": f"ServiceRequest/{request['id']}"}],
    }
    for key in ("category", "code", "priority", "performerType", "reasonCode"):
        if request.get(key):
            order[key] = request[key]
    if practice is not None:
        order["performer"] = [{"reference": f"Organization/{practice['id']}",
                               "display": str(practice.get("name") or "Specialist practice")}]
    elif request.get("performer"):
        order["performer"] = request["performer"]
    return validate(order, "ServiceRequest")


def referral_answered(request: Mapping[str, Any]) -> dict[str, Any]:
    return validate({**_without_bookkeeping(request), "status": "completed"}, "ServiceRequest")


def referral_declined(current: Mapping[str, Any], proposed: Any, *, decider_ref: str, now: datetime
                      ) -> dict[str, Any]:
    """A referral request turned down: `revoked`, the reason a note by the staff member (the patient reads
    the care team's last note)."""
    validate(proposed, "ServiceRequest")
    _check_open_referral(current)
    if proposed.get("status") != "revoked":
        raise InboundError("A referral request is answered by accepting it (a referral based on it) or by "
                           "revoking it with a reason")
    reason = _reason(" ".join(_new_notes(current, proposed)), "the referral is declined")
    _only_changed(current, proposed, {"status", "note"})
    updated = {**_without_bookkeeping(current), "status": "revoked",
               "note": [*_items(current, "note"), _staff_note(reason, decider_ref, now)]}
    return validate(updated, "ServiceRequest")


# -- allergies the patient reported --------------------------------------------------------------------------
def verification_code(resource: Mapping[str, Any]) -> str | None:
    concept = resource.get("verificationStatus")
    codings = (concept.get("coding") or []) if isinstance(concept, Mapping) else []
    return next((c.get("code") for c in codings if isinstance(c, Mapping) and c.get("system") == VERIFICATION_SYSTEM),
                None)


def allergy_checked(current: Mapping[str, Any], proposed: Any, *, checker_ref: str, now: datetime
                    ) -> dict[str, Any]:
    """An allergy the patient reported, checked by the care team: confirmed (it joins the record as the
    clinic's) or refuted (it leaves the patient's list). Only the verification (and a note) changes."""
    validate(proposed, "AllergyIntolerance")
    if verification_code(current) != ALLERGY_OPEN:
        raise InboundError("This allergy has already been checked")
    code = verification_code(proposed)
    if code not in VERIFICATION_WORDS:
        raise InboundError("An allergy is checked as confirmed or refuted")
    _only_changed(current, proposed, {"verificationStatus", "note"})
    updated = {**_without_bookkeeping(current), "verificationStatus": {
        "coding": [{"system": VERIFICATION_SYSTEM, "code": code, "display": VERIFICATION_WORDS[code]}],
        "text": "Checked by the care team" if code == "confirmed" else "Checked by the care team: not an allergy"}}
    notes = _new_notes(current, proposed)
    updated["note"] = [*_items(current, "note"), _staff_note(
        " ".join(notes)[:REASON_MAX] if notes else f"{VERIFICATION_WORDS[code]} by the care team", checker_ref, now)]
    return validate(updated, "AllergyIntolerance")


# -- insurance ------------------------------------------------------------------------------------------------
def is_insurance_request(message: Mapping[str, Any]) -> bool:
    """A patient's request to add or change an insurance card (see mappers/coverage.py)."""
    topic = message.get("topic") if isinstance(message.get("topic"), Mapping) else {}
    billing = any(isinstance(c, Mapping) and c.get("system") == TOPIC_SYSTEM and c.get("code") == "billing"
                  for cat in _items(message, "category") if isinstance(cat, Mapping)
                  for c in cat.get("coding") or [])
    sender = ref_of(message.get("sender")) or ""
    # Sent by the patient or their caregiver, about the patient.
    return (message.get("resourceType") == "Communication" and billing and topic.get("text") == INSURANCE_SUBJECT
            and sender.startswith(("Patient/", "RelatedPerson/"))
            and (ref_of(message.get("subject")) or "").startswith("Patient/"))


def asks_to_end(message: Mapping[str, Any]) -> bool:
    """An insurance request that says a card has ended (mappers.coverage CHANGES["end"]): nothing to add."""
    texts = [p.get("contentString") for p in _items(message, "payload") if isinstance(p, Mapping)]
    return any(isinstance(t, str) and t.startswith(f"Request: {CHANGES['end']}") for t in texts)


def insurance_request_of(proposed: Any) -> str | None:
    """The id of the patient's message a Coverage confirms (its identifier), None when malformed."""
    ids = [i for i in _items(proposed, "identifier") if isinstance(i, Mapping)
           and i.get("system") == INSURANCE_REQUEST_SYSTEM] if isinstance(proposed, Mapping) else []
    if len(ids) != 1:
        raise InboundError("A confirmed insurance card names the patient's request it confirms (identifier)")
    value = ids[0].get("value")
    return plain_reference(f"Communication/{value}", "Communication") if isinstance(value, str) else None


COVERAGE_COPIED = ("type", "policyHolder", "subscriber", "subscriberId", "dependent", "relationship", "period",
                   "payor", "class", "order", "network")


def confirmed_coverage(proposed: Any, message: Mapping[str, Any]) -> dict[str, Any]:
    """The insurance card the front desk confirmed from the patient's request `message`: for that patient,
    active, with a payer and a member ID."""
    validate(proposed, "Coverage")
    if not is_insurance_request(message):
        raise InboundError("That message is not an insurance request")
    if asks_to_end(message):
        raise InboundError("This request is to end a card, not to add one; answer it in the conversation")
    patient_ref = ref_of(message.get("subject"))
    if ref_of(proposed.get("beneficiary")) != patient_ref:
        raise InboundError("The card is for the patient who asked")
    if proposed.get("status") != "active":
        raise InboundError("A confirmed card is active (status 'active')")
    payors = _items(proposed, "payor")
    if not payors or not all(isinstance(p, Mapping) and (p.get("display") or p.get("reference")) for p in payors):
        raise InboundError("Name the insurance company (payor)")
    if not str(proposed.get("subscriberId") or "").strip():
        raise InboundError("Enter the member ID from the card (subscriberId)")
    coverage: dict[str, Any] = {
        "resourceType": "Coverage",
        "identifier": [{"system": INSURANCE_REQUEST_SYSTEM, "value": str(message["id"])}],
        "status": "active",
        "beneficiary": {"reference": patient_ref},
    }
    for key in COVERAGE_COPIED:
        if proposed.get(key):
            coverage[key] = proposed[key]
    return validate(coverage, "Coverage")
