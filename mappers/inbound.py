"""Shaping of what a patient (or their caregiver) asks to write, before it goes to the EHR (pure).

Each function takes the caller's request plus the records it depends on and returns the exact
resource to write, or raises InboundError with words the patient can act on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .attachments import AttachmentError, checked_file, decoded, safe_title, sha1_base64
from .catalogue import SNOMED, is_pharmacy, specialty_in, specialty_of
from .concepts import codes
from .instants import parse_instant
from .questionnaires import answers_of, check_answers, cites, questions, response_items
from .validation import InboundError, plain_reference, validate

# The Patient elements a patient may change about themselves.
PATIENT_EDITABLE = frozenset({"telecom", "address", "communication", "contact"})
# Bookkeeping elements that are never compared (the EHR owns them).
PATIENT_IGNORED = frozenset({"meta", "text"})
REFILL_IDENTIFIER_SYSTEM = "urn:portal:refill-request"
MESSAGE_MAX_CHARS = 10_000
RECIPIENT_TYPES = ("Practitioner/", "PractitionerRole/", "Organization/", "CareTeam/")
# One answer for a slot reference that is malformed and for one that names no slot: whether anything
# else exists at such an address must not show.
SLOT_UNKNOWN = "That slot does not exist; please pick another"


def ref_of(value: Any) -> str | None:
    """The `reference` of a Reference, when it is one and has a string reference."""
    ref = value.get("reference") if isinstance(value, dict) else None
    return ref if isinstance(ref, str) else None


def _items(resource: dict[str, Any], key: str) -> list[Any]:
    value = resource.get(key)
    return value if isinstance(value, list) else []


def patient_update(current: dict[str, Any], proposed: Any) -> dict[str, Any]:
    """Apply a patient's self-edit: contact details, language and emergency contacts only."""
    validate(proposed, "Patient")
    if proposed.get("id") != current.get("id"):
        raise InboundError("The Patient id in the body must match the record being updated")
    keys = (set(current) | set(proposed)) - PATIENT_IGNORED - {"resourceType", "id"}
    refused = sorted(k for k in keys if k not in PATIENT_EDITABLE and current.get(k) != proposed.get(k))
    if refused:
        raise InboundError(
            "Only contact details, language and emergency contacts can be changed here; "
            f"these cannot: {', '.join(refused)}. Please ask your care team to change them."
        )
    updated = {k: v for k, v in current.items() if k not in PATIENT_EDITABLE and k != "text"}
    for k in PATIENT_EDITABLE:
        if proposed.get(k) not in (None, []):
            updated[k] = proposed[k]
    return validate(updated, "Patient")


def message(
    proposed: Any, *, patient_ref: str, sender_ref: str, allowed_recipients: set[str], now: datetime,
    attachments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A message from the patient (or caregiver) to their care team about the patient. `attachments`
    are the message's files as stored (see `message_files`), in place of what the request carried."""
    validate(proposed, "Communication")
    subject = ref_of(proposed.get("subject"))
    if subject not in (None, patient_ref):
        raise InboundError("A message can only be about your own record")
    sender = ref_of(proposed.get("sender"))
    if sender not in (None, sender_ref):
        raise InboundError("A message must be sent by you")
    recipients = [ref_of(r) for r in _items(proposed, "recipient")]
    if not recipients or any(r is None for r in recipients):
        raise InboundError("A message needs at least one recipient from your care team")
    for r in recipients:
        if not str(r).startswith(RECIPIENT_TYPES) or r not in allowed_recipients:
            raise InboundError(f"{r} is not part of your care team")
    texts = [p.get("contentString") for p in _items(proposed, "payload")
             if isinstance(p, dict) and "contentAttachment" not in p]
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise InboundError("A message needs text (payload.contentString)")
    if sum(len(t) for t in texts) > MESSAGE_MAX_CHARS:
        raise InboundError(f"A message may be at most {MESSAGE_MAX_CHARS} characters")
    shaped = {
        "resourceType": "Communication",
        "status": "completed",
        "subject": {"reference": patient_ref},
        "sender": {"reference": sender_ref},
        "recipient": [{"reference": r} for r in recipients],
        "sent": now.isoformat(timespec="seconds"),
        "payload": [{"contentString": t} for t in texts] + [{"contentAttachment": a} for a in attachments or []],
    }
    for key in ("category", "topic", "partOf", "inResponseTo", "identifier", "priority"):
        if proposed.get(key):
            shaped[key] = proposed[key]
    return validate(shaped, "Communication")


MAX_FILES = 3


def message_files(proposed: dict[str, Any]) -> list[tuple[bytes, str, str]]:
    """The files a message carries inline (`payload.contentAttachment.data`), each checked by its content:
    (bytes, real content type, title). A patient cannot point at a file by address (`url`): that could
    name a file in someone else's record."""
    files = []
    for part in _items(proposed, "payload"):
        att = part.get("contentAttachment") if isinstance(part, dict) else None
        if att is None:
            continue
        if not isinstance(att, dict) or not isinstance(att.get("data"), str) or att.get("url"):
            raise InboundError("An attachment must carry its file as data")
        try:
            data = decoded(att["data"])
            kind = checked_file(data)
        except AttachmentError as exc:
            raise InboundError(str(exc)) from exc
        files.append((data, kind, safe_title(att.get("title"), kind)))
    if len(files) > MAX_FILES:
        raise InboundError(f"A message can carry at most {MAX_FILES} files")
    return files


def stored_attachment(data: bytes, kind: str, title: str, binary_id: str) -> dict[str, Any]:
    """The Attachment a message keeps for a file stored as `Binary/<binary_id>`."""
    return {"contentType": kind, "url": f"Binary/{binary_id}", "size": len(data), "hash": sha1_base64(data),
            "title": title}


# What a patient may change on a message sent to them: only when they read it.
RECEIPT_FIELD = "received"
RECEIPT_IGNORED = frozenset({"meta", "text", "resourceType", "id", RECEIPT_FIELD})


def message_receipt(current: dict[str, Any], proposed: Any, *, readers: set[str], now: datetime
                    ) -> dict[str, Any] | None:
    """Mark a message to the patient as read: the message with `received` set to now, None when it was
    read already (nothing to write). Nothing else about a message can be changed by a patient."""
    validate(proposed, "Communication")
    if not any(ref_of(r) in readers for r in _items(current, "recipient")):
        raise InboundError("You can only mark messages sent to you as read")
    keys = (set(current) | set(proposed)) - RECEIPT_IGNORED
    changed = sorted(k for k in keys if current.get(k) != proposed.get(k))
    if changed:
        raise InboundError(f"Only the read mark of a message can be changed; these cannot: {', '.join(changed)}")
    if not proposed.get(RECEIPT_FIELD):
        raise InboundError("A message that has been read cannot be marked unread")
    if current.get(RECEIPT_FIELD):
        return None
    updated = {k: v for k, v in current.items() if k != "meta"}
    updated[RECEIPT_FIELD] = now.isoformat(timespec="seconds")
    return validate(updated, "Communication")


NOTE_MAX_CHARS = 1_000
# Open refill requests: the care team has not finished with them (see mappers/refills.py for the words).
REFILL_OPEN_STATUSES = ("draft", "active", "on-hold")


def _note(proposed: dict[str, Any], author_ref: str, now: datetime) -> list[dict[str, Any]]:
    """The patient's words to the care team (text only), at most NOTE_MAX_CHARS."""
    texts = [n.get("text") for n in _items(proposed, "note") if isinstance(n, dict)]
    text = "\n\n".join(t.strip() for t in texts if isinstance(t, str) and t.strip())
    if len(text) > NOTE_MAX_CHARS:
        raise InboundError(f"A note may be at most {NOTE_MAX_CHARS} characters")
    if not text:
        return []
    return [{"authorReference": {"reference": author_ref}, "time": now.isoformat(timespec="seconds"), "text": text}]


def refill_pharmacy(proposed: dict[str, Any]) -> str | None:
    """The id of the pharmacy a refill request names (`dispenseRequest.performer`), None when it names none.
    A reference that is not a plain `Organization/<id>` is answered like one that is not a pharmacy."""
    dispense = proposed.get("dispenseRequest")
    performer = dispense.get("performer") if isinstance(dispense, dict) else None
    if performer is None:
        return None
    pharmacy_id = plain_reference(ref_of(performer), "Organization")
    if pharmacy_id is None:
        raise InboundError(PHARMACY_UNKNOWN)
    return pharmacy_id


PHARMACY_UNKNOWN = "Please pick a pharmacy from the list"
NO_REFILLS_LEFT = "This prescription has no refills left. Please ask your care team to renew it instead."


def refill_request(
    proposed: Any, original: dict[str, Any], *, patient_ref: str, requester_ref: str, now: datetime,
    pharmacy: dict[str, Any] | None = None, refills_left: int | None = None,
) -> dict[str, Any]:
    """A refill request: a new proposal based on one of the patient's own active prescriptions that has a
    refill left (`refills_left`, counted from the pharmacy's fills; None when not known), to be filled at
    `pharmacy` (an Organization that is a pharmacy) when one was chosen."""
    validate(proposed, "MedicationRequest")
    if original.get("status") != "active" or original.get("intent") not in ("order", "original-order"):
        raise InboundError("Refills can only be requested for an active prescription")
    if ref_of(original.get("subject")) != patient_ref:
        raise InboundError("Refills can only be requested for your own prescriptions")
    if refills_left is not None and refills_left <= 0:
        raise InboundError(NO_REFILLS_LEFT)
    if pharmacy is not None and not is_pharmacy(pharmacy):
        raise InboundError(PHARMACY_UNKNOWN)
    shaped: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "identifier": [{"system": REFILL_IDENTIFIER_SYSTEM, "value": str(original["id"])}],
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": patient_ref},
        "requester": {"reference": requester_ref},
        "authoredOn": now.isoformat(timespec="seconds"),
        "basedOn": [{"reference": f"MedicationRequest/{original['id']}"}],
    }
    for key in ("medicationCodeableConcept", "medicationReference", "dosageInstruction", "dispenseRequest"):
        if original.get(key):
            shaped[key] = original[key]
    if pharmacy is not None:
        shaped["dispenseRequest"] = {**(original.get("dispenseRequest") or {}), "performer": {
            "reference": f"Organization/{pharmacy['id']}", "display": str(pharmacy.get("name") or "Pharmacy")}}
    if note := _note(proposed, requester_ref, now):
        shaped["note"] = note
    if original.get("requester"):
        shaped["performer"] = original["requester"]  # the prescriber is asked to act on it
    return validate(shaped, "MedicationRequest")


def refill_basis(proposed: dict[str, Any]) -> str | None:
    """The id of the prescription a refill request is based on; None when the one reference given is not
    a plain `MedicationRequest/<id>` (answered like a prescription that does not exist)."""
    refs = [ref_of(b) for b in _items(proposed, "basedOn")]
    if len(refs) != 1 or not refs[0]:
        raise InboundError("A refill request needs basedOn with exactly one of your prescriptions")
    return plain_reference(refs[0], "MedicationRequest")


def reply_references(proposed: dict[str, Any]) -> list[str | None]:
    """The messages a message answers (`inResponseTo`, `partOf`), as given."""
    return [ref_of(r) for r in _items(proposed, "inResponseTo") + _items(proposed, "partOf")]


def booking(
    proposed: Any, slot: dict[str, Any], schedule: dict[str, Any] | None, *, patient_ref: str, now: datetime
) -> dict[str, Any]:
    """A new appointment in a free, future slot."""
    validate(proposed, "Appointment")
    _check_slot_free(slot, now)
    offered, asked = codes(slot.get("serviceType")), codes(proposed.get("serviceType"))
    if offered and not asked <= offered:
        raise InboundError("That time is not offered for this kind of visit; please pick another")
    participants = [{"actor": {"reference": patient_ref}, "status": "accepted", "required": "required"}]
    for actor in _items(schedule or {}, "actor"):
        if ref_of(actor) and ref_of(actor) != patient_ref:
            # The schedule's names for its clinician and place travel along, so the visit reads in words.
            named = {"reference": ref_of(actor)}
            if isinstance(actor, dict) and isinstance(actor.get("display"), str) and actor["display"].strip():
                named["display"] = actor["display"].strip()
            participants.append({"actor": named, "status": "accepted", "required": "required"})
    shaped: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{"reference": f"Slot/{slot['id']}"}],
        "start": slot["start"],
        "end": slot["end"],
        "created": now.date().isoformat(),
        "participant": participants,
    }
    for key in ("serviceType", "appointmentType", "reasonCode", "description", "comment",
                "patientInstruction", "identifier"):
        if proposed.get(key):
            shaped[key] = proposed[key]
    if slot.get("serviceType") and "serviceType" not in shaped:
        shaped["serviceType"] = slot["serviceType"]
    return validate(shaped, "Appointment")


def _check_slot_free(slot: dict[str, Any], now: datetime) -> None:
    if slot.get("status") != "free":
        raise InboundError("That time is no longer available; please pick another slot")
    if datetime.fromisoformat(slot["start"].replace("Z", "+00:00")) <= now:
        raise InboundError("That slot is in the past; please pick a future time")


def slot_of(appointment: dict[str, Any]) -> str:
    """The id of the one Slot an appointment names (a plain `Slot/<id>`)."""
    refs = [ref_of(s) for s in _items(appointment, "slot")]
    if len(refs) != 1 or not refs[0]:
        raise InboundError("An appointment must name exactly one Slot")
    slot_id = plain_reference(refs[0], "Slot")
    if slot_id is None:
        raise InboundError(SLOT_UNKNOWN)
    return slot_id


APPOINTMENT_FIXED = frozenset({"participant", "serviceType", "appointmentType", "reasonCode", "identifier",
                               "basedOn", "created", "priority", "specialty"})


# The clinic's rule for changes made online: none in the last hours before a visit (the clinic may have
# turned people away for that time). The number of hours is a setting; 0 allows changes until the start.
DEFAULT_CHANGE_NOTICE_HOURS = 24


def change_refusal(start: Any, now: datetime, notice_hours: int = DEFAULT_CHANGE_NOTICE_HOURS) -> str | None:
    """Why a visit starting at `start` can no longer be moved or cancelled online, in words (None: it can)."""
    moment = parse_instant(start)
    if moment is None:
        return None
    if moment <= now:
        return "Past appointments cannot be changed"
    if moment - now < timedelta(hours=notice_hours):
        hours = "1 hour" if notice_hours == 1 else f"{notice_hours} hours"
        return (f"Visits cannot be moved or cancelled online in the last {hours} before they start. "
                "Please call the clinic instead")
    return None


def appointment_change(current: dict[str, Any], proposed: Any, now: datetime,
                       notice_hours: int = DEFAULT_CHANGE_NOTICE_HOURS) -> str:
    """Classify a patient's PUT of an appointment: 'cancel' or 'reschedule' (anything else is refused)."""
    validate(proposed, "Appointment")
    if current.get("status") in ("cancelled", "fulfilled", "noshow", "entered-in-error"):
        raise InboundError(f"This appointment is {current.get('status')} and can no longer be changed")
    if reason := change_refusal(current.get("start"), now, notice_hours):
        raise InboundError(reason)
    changed = sorted(k for k in APPOINTMENT_FIXED if current.get(k) != proposed.get(k) and k in proposed)
    if changed:
        raise InboundError(f"These appointment details cannot be changed here: {', '.join(changed)}")
    if proposed.get("status") == "cancelled":
        return "cancel"
    if proposed.get("status") not in (None, current.get("status")):
        raise InboundError("An appointment can only be cancelled or moved to another slot")
    if slot_of(proposed) != slot_of(current):
        return "reschedule"
    raise InboundError("Nothing to change: cancel the appointment or pick a different slot")


def cancelled(current: dict[str, Any], reason: Any) -> dict[str, Any]:
    updated = dict(current)
    updated["status"] = "cancelled"
    updated["cancelationReason"] = reason or {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason",
                    "code": "pat", "display": "Patient"}]
    }
    return validate(updated, "Appointment")


def rescheduled(current: dict[str, Any], new_slot: dict[str, Any], now: datetime) -> dict[str, Any]:
    _check_slot_free(new_slot, now)
    updated = dict(current)
    updated["slot"] = [{"reference": f"Slot/{new_slot['id']}"}]
    updated["start"], updated["end"] = new_slot["start"], new_slot["end"]
    return validate(updated, "Appointment")


def slot_with_status(slot: dict[str, Any], status: str) -> dict[str, Any]:
    updated = {k: v for k, v in slot.items() if k != "meta"}
    updated["status"] = status
    return updated


# A patient's own allergy report: what they may say, and how it is always recorded.
ALLERGY_VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ALLERGY_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_COPIED = ("identifier", "type", "category", "code", "onsetDateTime", "onsetString", "note")
REACTION_COPIED = ("manifestation", "severity", "description")


def _only_code(concept: Any, system: str) -> str | None:
    """The one code of `system` a CodeableConcept carries; None when absent; InboundError for anything else."""
    if concept is None:
        return None
    codes = {(c.get("system"), c.get("code")) for c in _items(concept, "coding") if isinstance(c, dict)}
    if len(codes) != 1 or next(iter(codes))[0] != system:
        raise InboundError("A status must be one code of its standard code system")
    return next(iter(codes))[1]


def reported_allergy(proposed: Any, *, patient_ref: str, reporter_ref: str, now: datetime) -> dict[str, Any]:
    """An allergy the patient (or their caregiver) reports: about the patient only, recorded and asserted by
    the one reporting, and always `unconfirmed` until the care team checks it. Anything a patient cannot
    know or decide (criticality, a confirmed status, who else recorded it, the encounter) is refused or
    left out."""
    validate(proposed, "AllergyIntolerance")
    if ref_of(proposed.get("patient")) != patient_ref:
        raise InboundError("An allergy you report can only be about your own record")
    for key in ("recorder", "asserter"):
        if proposed.get(key) is not None and ref_of(proposed.get(key)) not in (reporter_ref, patient_ref):
            raise InboundError(f"An allergy you report is recorded as reported by you ({key} must be you)")
    if _only_code(proposed.get("verificationStatus"), ALLERGY_VERIFICATION_SYSTEM) not in (None, "unconfirmed"):
        raise InboundError("An allergy you report stays unconfirmed until your care team checks it")
    if _only_code(proposed.get("clinicalStatus"), ALLERGY_CLINICAL_SYSTEM) not in (None, "active"):
        raise InboundError("An allergy you report is recorded as current (clinicalStatus active)")
    for key in ("criticality", "encounter", "lastOccurrence", "recordedDate"):
        if proposed.get(key) is not None:
            raise InboundError(f"{key} is for your care team to record; leave it out")
    code = proposed.get("code")
    if not isinstance(code, dict) or not (code.get("text") or code.get("coding")):
        raise InboundError("Say what you are allergic to (code.text)")
    onset = proposed.get("onsetDateTime")
    if isinstance(onset, str) and onset[:10] > now.date().isoformat():
        raise InboundError("When it started cannot be in the future")
    shaped: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL_SYSTEM, "code": "active", "display": "Active"}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION_SYSTEM, "code": "unconfirmed",
                                           "display": "Unconfirmed"}],
                               "text": "Reported by the patient, not yet checked"},
        "patient": {"reference": patient_ref},
        "recorder": {"reference": reporter_ref},
        "asserter": {"reference": reporter_ref},
        "recordedDate": now.isoformat(timespec="seconds"),
    }
    for key in ALLERGY_COPIED:
        if proposed.get(key):
            shaped[key] = proposed[key]
    reactions = [{k: r[k] for k in REACTION_COPIED if r.get(k)} for r in _items(proposed, "reaction")
                 if isinstance(r, dict)]
    if reactions:
        shaped["reaction"] = reactions
    return validate(shaped, "AllergyIntolerance")


def reported_allergy_identifier(proposed: dict[str, Any]) -> dict[str, str] | None:
    """The report's own identifier (system and value), which makes a retried report find the first."""
    return next(({"system": i["system"], "value": i["value"]} for i in _items(proposed, "identifier")
                 if isinstance(i, dict) and isinstance(i.get("system"), str) and isinstance(i.get("value"), str)),
                None)
REFERRAL_IDENTIFIER_SYSTEM = "urn:portal:referral-request"
REFERRAL_CATEGORY = {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}
REFERRAL_REASON_MAX = 500
# One answer for a practice reference that is malformed, names nothing, or names an Organization outside
# the referral catalogue.
PRACTICE_UNKNOWN = "Please pick a specialist practice from the list"


def referral_practice(proposed: dict[str, Any]) -> str | None:
    """The id of the specialist practice a referral request names (`performer`), None when it names none."""
    refs = [ref_of(p) for p in _items(proposed, "performer")]
    if not refs:
        return None
    practice_id = plain_reference(refs[0], "Organization") if len(refs) == 1 else None
    if practice_id is None:
        raise InboundError(PRACTICE_UNKNOWN)
    return practice_id


def referral_request(
    proposed: Any, *, patient_ref: str, requester_ref: str, now: datetime, practice: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A patient's request for a referral to a specialist: a ServiceRequest with `intent=proposal` and
    `status=active` (the care team decides: `completed` with an order based on it, or `revoked` with the
    reason in a note). `practice` is the Organization the request names, already read from the EHR."""
    validate(proposed, "ServiceRequest")
    if ref_of(proposed.get("subject")) != patient_ref:
        raise InboundError("A referral can only be asked for for your own record")
    if proposed.get("intent") != "proposal":
        raise InboundError("A referral request must have intent 'proposal': your care team makes the referral")
    if proposed.get("status") != "active":
        raise InboundError("A new referral request must have status 'active'; only your care team changes it")
    specialty = specialty_in(proposed.get("performerType"))
    if specialty is None:
        raise InboundError("Please pick a specialty from the list")
    if practice is not None and specialty_of(practice) != specialty:
        raise InboundError(PRACTICE_UNKNOWN)
    reasons = [c.get("text") for c in _items(proposed, "reasonCode") if isinstance(c, dict)]
    reason = " ".join(r.strip() for r in reasons if isinstance(r, str) and r.strip())
    if not reason:
        raise InboundError("Please say what the referral is for")
    if len(reason) > REFERRAL_REASON_MAX:
        raise InboundError(f"Keep the reason to {REFERRAL_REASON_MAX} characters or fewer")
    shaped: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "proposal",
        "category": [REFERRAL_CATEGORY],
        "priority": "routine",
        "code": {"text": f"Referral to {specialty.display.split('-')[-1].lower()}"},
        "subject": {"reference": patient_ref},
        "authoredOn": now.isoformat(timespec="seconds"),
        "requester": {"reference": requester_ref},
        "performerType": specialty.concept,
        "reasonCode": [{"text": reason}],
    }
    identifiers = [i for i in _items(proposed, "identifier")
                   if isinstance(i, dict) and i.get("system") == REFERRAL_IDENTIFIER_SYSTEM and i.get("value")]
    if identifiers:
        shaped["identifier"] = identifiers[:1]
    if practice is not None:
        shaped["performer"] = [{"reference": f"Organization/{practice['id']}",
                                "display": str(practice.get("name") or specialty.display)}]
    if note := _note(proposed, requester_ref, now):
        shaped["note"] = note
    return validate(shaped, "ServiceRequest")


# -- forms (QuestionnaireResponse) ------------------------------------------------------------------------
RESPONSE_STATUSES = ("in-progress", "completed")
# Which visit a pre-visit check-in belongs to. R4's QuestionnaireResponse cannot point at an Appointment
# (basedOn takes CarePlan/ServiceRequest, encounter an Encounter that does not exist before the visit).
APPOINTMENT_EXTENSION = "http://hospital.example.org/fhir/StructureDefinition/questionnaireresponse-appointment"
FORM_SENT = "This form was already sent and can no longer be changed. Please send your care team a message."


def response_appointment(proposed: Any) -> str | None:
    """The Appointment reference a response names as its visit, if any (`Appointment/<id>` or malformed)."""
    for ext in _items(proposed, "extension") if isinstance(proposed, dict) else []:
        if isinstance(ext, dict) and ext.get("url") == APPOINTMENT_EXTENSION:
            return ref_of(ext.get("valueReference")) or ""
    return None


def response_questionnaire(proposed: Any) -> str:
    """The form a response answers (its canonical `url|version`), or InboundError."""
    value = proposed.get("questionnaire") if isinstance(proposed, dict) else None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise InboundError("A form's answers must name the form they answer (questionnaire)")
    return value


def questionnaire_response(
    proposed: Any, questionnaire: dict[str, Any], current: dict[str, Any] | None, *, patient_ref: str,
    author_ref: str, appointment_ref: str | None, now: datetime,
) -> dict[str, Any]:
    """A patient's answers to one of the clinic's forms: a draft (`in-progress`, changed in place as often
    as they like) or sent (`completed`: every required question answered, and no change after that).

    `questionnaire` is the published form the response cites; `current` the stored response an update
    replaces; `appointment_ref` the caller's own visit, already checked. The items are rebuilt from the
    answers in the form's own order and words, so what is stored is exactly what was checked."""

    validate(proposed, "QuestionnaireResponse")
    status = proposed.get("status")
    if status not in RESPONSE_STATUSES:
        raise InboundError("A form can only be saved as a draft (in-progress) or sent (completed)")
    if ref_of(proposed.get("subject")) not in (None, patient_ref):
        raise InboundError("A form can only be about your own record")
    if not cites(proposed.get("questionnaire"), questionnaire):
        raise InboundError("These answers are for a different form")
    if current is not None:
        if current.get("status") != "in-progress":
            raise InboundError(FORM_SENT)
        if proposed.get("questionnaire") != current.get("questionnaire"):
            raise InboundError("A saved form cannot be turned into a different form")
        if response_appointment(current) != appointment_ref:
            raise InboundError("A saved form cannot be moved to a different visit")
    qs = questions(questionnaire)
    answers = answers_of(proposed)
    problems = check_answers(qs, answers, completing=status == "completed")
    if problems:
        first = [f"{link or 'form'}: {texts[0]}" for link, texts in list(problems.items())[:5]]
        raise InboundError("Some answers cannot be accepted: " + "; ".join(first))
    shaped: dict[str, Any] = {"resourceType": "QuestionnaireResponse"}
    if current is not None:
        shaped["id"] = current["id"]
    identifiers = (current or proposed).get("identifier")
    if isinstance(identifiers, dict):
        shaped["identifier"] = identifiers
    if appointment_ref:
        shaped["extension"] = [{"url": APPOINTMENT_EXTENSION, "valueReference": {"reference": appointment_ref}}]
    shaped.update({
        "questionnaire": proposed["questionnaire"],
        "status": status,
        "subject": {"reference": patient_ref},
        "authored": now.isoformat(timespec="seconds"),
        "author": {"reference": author_ref},
        "source": {"reference": patient_ref},
    })
    items = response_items(qs, answers)
    if items:
        shaped["item"] = items
    return validate(shaped, "QuestionnaireResponse")
