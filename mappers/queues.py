"""The care team's request queues in words, and the writes their buttons send (pure functions).

Four queues (which role works which is the staff area's, staff/roles.py): refill requests, referral
requests, changes to confirm (allergies a patient reported; insurance cards a patient asked to add or
change) and billing questions.
Every queue lists what is still open, oldest first, with the patient's name, date of birth and MRN and how
long the patient has been waiting. What counts as open is read from the EHR, never kept here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from .allergies import allergy
from .concepts import concept_text
from .coverage import HOLDERS
from .dates import date_words
from .decisions import (
    ALLERGY_OPEN,
    INSURANCE_REQUEST_SYSTEM,
    VERIFICATION_SYSTEM,
    asks_to_end,
    is_insurance_request,
    is_open_referral,
    is_open_refill,
    verification_code,
)
from .inbound import ref_of
from .instants import parse_instant
from .medications import medication
from .messages import TOPIC_SYSTEM, thread_id
from .names import human_name
from .references import parse_reference, reference_to

MRN_CODE = "MR"


# Within "changes": allergies are clinical (clinicians and nurses); insurance is the front desk's and billing's.
CHANGE_SECTIONS: dict[str, frozenset[str]] = {
    "allergies": frozenset({"clinician", "nurse"}),
    "insurance": frozenset({"front-desk", "billing"}),
}


def sections_for(role: str | None) -> list[str]:
    return [key for key, roles in CHANGE_SECTIONS.items() if role in roles]


@dataclass(frozen=True)
class PatientLine:
    """Who a request is from: the banner staff check before they decide."""

    id: str
    name: str
    born: str | None
    mrn: str | None


@dataclass(frozen=True)
class QueueItem:
    id: str  # the request's id (the message's id for insurance and billing)
    patient: PatientLine
    what: str  # the medicine, specialty, allergy or subject line
    asked: str  # when, in words
    waiting: str  # how long ago
    asked_at: datetime
    facts: list[tuple[str, str]] = field(default_factory=list)  # label, words
    note: str | None = None  # the patient's own words
    thread: str | None = None  # the message thread, for insurance and billing
    confirmable: bool = True  # an insurance request a card answers (one saying a card ended is answered in words)


def patient_line(patient: Mapping[str, Any] | None, patient_id: str, tz: tzinfo | None = None) -> PatientLine:
    patient = patient or {}
    mrn = next((str(i.get("value")) for i in patient.get("identifier") or [] if isinstance(i, Mapping)
                and any(isinstance(c, Mapping) and c.get("code") == MRN_CODE
                        for c in (i.get("type") or {}).get("coding") or [])), None)
    born = patient.get("birthDate")
    return PatientLine(id=patient_id, name=human_name(patient, prefer_official=True) or "Name not recorded",
                       born=date_words(born, tz) if isinstance(born, str) else None, mrn=mrn)


def patients_by_ref(patients: Iterable[Any]) -> dict[str, Mapping[str, Any]]:
    return {f"Patient/{p['id']}": p for p in patients if isinstance(p, Mapping) and p.get("id")}


def _patient(resource: Mapping[str, Any], patients: Mapping[str, Mapping[str, Any]], tz: tzinfo | None
             ) -> PatientLine | None:
    ref = parse_reference(resource.get("subject") or resource.get("patient") or resource.get("beneficiary"),
                          "Patient")
    if ref is None:
        return None
    return patient_line(patients.get(ref.text), ref.id, tz)


def _when(value: Any) -> datetime:
    moment = parse_instant(value)
    if moment is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def waiting_words(since: datetime, now: datetime) -> str:
    """How long a patient has been waiting: minutes, hours, then whole days (the response-time clock)."""
    seconds = max(0.0, (now - since).total_seconds())
    if seconds < 3600:
        minutes = int(seconds // 60)
        return "just now" if minutes < 1 else f"{minutes} minute{'s' if minutes != 1 else ''}"
    if seconds < 86400:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = int(seconds // 86400)
    return f"{days} day{'s' if days != 1 else ''}"


def _item(resource: Mapping[str, Any], patient: PatientLine, what: str, asked_value: Any, now: datetime,
          tz: tzinfo | None, **extra: Any) -> QueueItem:
    at = _when(asked_value)
    return QueueItem(id=str(resource.get("id")), patient=patient, what=what,
                     asked=date_words(asked_value, tz) if asked_value else "Date not known",
                     waiting=f"waiting {waiting_words(at, now)}" if asked_value else "", asked_at=at, **extra)


def _notes_by(resource: Mapping[str, Any], authors: set[str]) -> str | None:
    texts = [n["text"].strip() for n in resource.get("note") or [] if isinstance(n, Mapping)
             and isinstance(n.get("text"), str) and n["text"].strip()
             and ((ref_of(n.get("authorReference")) or "").startswith(("Patient/", "RelatedPerson/"))
                  or ref_of(n.get("authorReference")) in authors)]
    return " ".join(texts) or None


def _oldest_first(items: list[QueueItem]) -> list[QueueItem]:
    return sorted(items, key=lambda i: i.asked_at)


def refill_items(requests: Iterable[Any], patients: Mapping[str, Mapping[str, Any]], now: datetime,
                 tz: tzinfo | None = None) -> list[QueueItem]:
    """Open refill requests, oldest first (the prescriptions they refill may be among `requests`)."""
    every = [r for r in requests if isinstance(r, Mapping)]
    by_ref = {reference_to(r): r for r in every}
    out = []
    for r in every:
        if not is_open_refill(r) or (patient := _patient(r, patients, tz)) is None:
            continue
        med = medication(r)
        original = next((by_ref.get(b.text) for x in r.get("basedOn") or []
                         if (b := parse_reference(x, "MedicationRequest"))), None)
        facts = [("Dose", med.dose_text or med.instructions or "Not given")]
        if original is not None:
            current = medication(original)
            written = current.written_text or "on a date not known"
            by = f" by {current.prescriber}" if current.prescriber else ""
            facts.append(("Prescription", f"{current.status_text}, written {written}{by}"))
            if current.refills_text:
                facts.append(("Refills", current.refills_text))
        performer = ((r.get("dispenseRequest") or {}).get("performer") or {})
        facts.append(("Pharmacy", str(performer.get("display") or "Not chosen")))
        out.append(_item(r, patient, med.name, r.get("authoredOn"), now, tz, facts=facts,
                         note=_notes_by(r, set())))
    return _oldest_first(out)


def referral_items(requests: Iterable[Any], patients: Mapping[str, Mapping[str, Any]], now: datetime,
                   tz: tzinfo | None = None) -> list[QueueItem]:
    """Open referral requests (no referral made from them yet), oldest first."""
    every = [r for r in requests if isinstance(r, Mapping)]
    answered = {b.text for o in every if o.get("intent") == "order"
                for x in o.get("basedOn") or [] if (b := parse_reference(x, "ServiceRequest"))}
    out = []
    for r in every:
        if not is_open_referral(r) or reference_to(r) in answered or (patient := _patient(r, patients, tz)) is None:
            continue
        what = concept_text(r.get("performerType")) or concept_text(r.get("code")) or "A specialist"
        facts = [("Reason", ", ".join(t for c in r.get("reasonCode") or [] if (t := concept_text(c))) or "Not given")]
        practice = next((p.get("display") for p in r.get("performer") or [] if isinstance(p, Mapping)), None)
        facts.append(("Practice asked for", str(practice or "Any")))
        out.append(_item(r, patient, what, r.get("authoredOn"), now, tz, facts=facts, note=_notes_by(r, set())))
    return _oldest_first(out)


def allergy_items(allergies: Iterable[Any], patients: Mapping[str, Mapping[str, Any]], now: datetime,
                  tz: tzinfo | None = None) -> list[QueueItem]:
    """Allergies reported by patients and not yet checked, oldest first."""
    out = []
    for a in allergies:
        if not isinstance(a, Mapping) or verification_code(a) != ALLERGY_OPEN:
            continue
        if (patient := _patient(a, patients, tz)) is None:
            continue
        shown = allergy(a, tz)
        facts = [("Kind", ", ".join(shown.categories) or "Not given"),
                 ("Reaction", "; ".join(r.what + (f" ({r.severity.lower()})" if r.severity else "")
                                        for r in shown.reactions) or "Not described")]
        if isinstance(a.get("onsetDateTime"), str):
            facts.append(("Since", date_words(a["onsetDateTime"], tz)))
        out.append(_item(a, patient, shown.substance, a.get("recordedDate"), now, tz, facts=facts,
                         note=_notes_by(a, set())))
    return _oldest_first(out)


def _text(message: Mapping[str, Any]) -> str:
    return "\n".join(p["contentString"] for p in message.get("payload") or [] if isinstance(p, Mapping)
                     and isinstance(p.get("contentString"), str))


def insurance_facts(text: str) -> dict[str, str]:
    """The facts of an insurance request message (mappers.coverage.insurance_request_text), by label."""
    facts: dict[str, str] = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep and label.strip() and value.strip():
            facts.setdefault(label.strip(), value.strip())
    return facts


def insurance_items(messages: Iterable[Any], coverages: Iterable[Any], patients: Mapping[str, Mapping[str, Any]],
                    now: datetime, tz: tzinfo | None = None) -> list[QueueItem]:
    """Insurance requests no confirmed card names yet, oldest first."""
    confirmed = {str(i.get("value")) for c in coverages if isinstance(c, Mapping)
                 for i in c.get("identifier") or [] if isinstance(i, Mapping)
                 and i.get("system") == INSURANCE_REQUEST_SYSTEM}
    out = []
    for m in messages:
        if not isinstance(m, Mapping) or not is_insurance_request(m) or str(m.get("id")) in confirmed \
                or m.get("status") == "entered-in-error":
            continue
        if (patient := _patient(m, patients, tz)) is None:
            continue
        facts = insurance_facts(_text(m))
        out.append(_item(m, patient, facts.get("Request", "Insurance card update"), m.get("sent"), now, tz,
                         facts=[(k, v) for k, v in facts.items() if k != "Request"], thread=thread_id(m),
                         confirmable=not asks_to_end(m)))
    return _oldest_first(out)


def _is_billing(message: Mapping[str, Any]) -> bool:
    return any(isinstance(c, Mapping) and c.get("system") == TOPIC_SYSTEM and c.get("code") == "billing"
               for cat in message.get("category") or [] if isinstance(cat, Mapping) for c in cat.get("coding") or [])


def billing_items(messages: Iterable[Any], patients: Mapping[str, Mapping[str, Any]], now: datetime,
                  tz: tzinfo | None = None) -> list[QueueItem]:
    """Billing conversations whose latest message is the patient's (waiting for an answer), oldest first.
    Insurance requests are in the changes queue, not here."""
    every = [m for m in messages if isinstance(m, Mapping) and _is_billing(m)]
    threads: dict[str, list[Mapping[str, Any]]] = {}
    for m in every:
        threads.setdefault(thread_id(m), []).append(m)
    out = []
    for tid, thread in threads.items():
        thread.sort(key=lambda m: _when(m.get("sent")))
        first, last = thread[0], thread[-1]
        if str(first.get("id")) != tid or is_insurance_request(first) or first.get("status") != "completed":
            continue
        if not (ref_of(last.get("sender")) or "").startswith(("Patient/", "RelatedPerson/")):
            continue  # answered: the latest word is the clinic's
        if (patient := _patient(first, patients, tz)) is None:
            continue
        subject = str((first.get("topic") or {}).get("text") or "Billing question")
        text = _text(last)
        out.append(_item(last, patient, subject, last.get("sent"), now, tz, thread=tid,
                         note=(text[:280] + "…") if len(text) > 280 else text or None))
    return _oldest_first(out)


# -- what the buttons send --------------------------------------------------------------------------------------
def approve_refill_body(request_id: str, patient_id: str, note: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                            "subject": {"reference": f"Patient/{patient_id}"},
                            "medicationCodeableConcept": {"text": "Refill approved"},
                            "basedOn": [{"reference": f"MedicationRequest/{request_id}"}]}
    if note.strip():
        body["note"] = [{"text": note.strip()}]
    return body


def deny_refill_body(current: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {**{k: v for k, v in current.items() if k != "meta"}, "status": "cancelled",
            "statusReason": {"text": reason.strip()}}


def accept_referral_body(request_id: str, patient_id: str, practice: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                            "subject": {"reference": f"Patient/{patient_id}"},
                            "basedOn": [{"reference": f"ServiceRequest/{request_id}"}]}
    if practice:
        body["performer"] = [{"reference": practice}]
    return body


def decline_referral_body(current: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {**{k: v for k, v in current.items() if k != "meta"}, "status": "revoked",
            "note": [*(current.get("note") or []), {"text": reason.strip()}]}


def check_allergy_body(current: Mapping[str, Any], verdict: str, note: str = "") -> dict[str, Any]:
    body = {**{k: v for k, v in current.items() if k != "meta"},
            "verificationStatus": {"coding": [{"system": VERIFICATION_SYSTEM, "code": verdict}]}}
    if note.strip():
        body["note"] = [*(current.get("note") or []), {"text": note.strip()}]
    return body


HOLDER_RELATIONSHIP = {"self": "self", "spouse": "spouse", "parent": "child", "other": "other"}
RELATIONSHIP_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"


def coverage_form(message: Mapping[str, Any]) -> dict[str, str]:
    """The confirm form, filled in from what the patient wrote."""
    facts = insurance_facts(_text(message))
    member = facts.get("Member ID", "")
    group = facts.get("Group number", "")
    holder = facts.get("Policy holder", HOLDERS["self"]).split(" (")[0]
    return {"insurer": facts.get("Insurance company", ""),
            "member_id": "" if member == "not given" else member,
            "group": "" if group == "not given" else group,
            "holder": next((k for k, v in HOLDERS.items() if v == holder), "self")}


def coverage_body(message: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """The Coverage the front desk confirms from a patient's insurance request."""
    patient_ref = ref_of(message.get("subject")) or ""
    holder = fields.get("holder", "self")
    body: dict[str, Any] = {
        "resourceType": "Coverage", "status": "active",
        "identifier": [{"system": INSURANCE_REQUEST_SYSTEM, "value": str(message.get("id"))}],
        "beneficiary": {"reference": patient_ref},
        "payor": [{"display": " ".join(str(fields.get("insurer") or "").split())}],
        "subscriberId": " ".join(str(fields.get("member_id") or "").split()),
        "relationship": {"coding": [{"system": RELATIONSHIP_SYSTEM,
                                     "code": HOLDER_RELATIONSHIP.get(holder, "other")}]},
    }
    if holder == "self":
        body["subscriber"] = {"reference": patient_ref}
    if group := " ".join(str(fields.get("group") or "").split()):
        body["class"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                               "code": "group"}]}, "value": group, "name": "Group"}]
    return body
