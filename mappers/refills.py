"""Prescriptions and the patient's refill requests in words (pure).

A refill request is a MedicationRequest with `intent=proposal`, `basedOn` the prescription and the
portal's refill identifier. The care team moves it along, and each step reads as one status:

| request status | an order `basedOn` it | the patient reads |
|---|---|---|
| draft | - | Sent (waiting for the care team) |
| active, on-hold | - | Being looked at |
| completed | no | Approved |
| completed (or any) | yes | Sent to the pharmacy |
| cancelled, stopped | - | Declined, with the reason (statusReason, else the care team's last note) |

The words are in the `locale` passed in (English by default). The medicine's own words (dose, refills
left) come from `medications`, in English for now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from locales import ENGLISH, gettext_in

from .concepts import concept_text
from .dates import date_words
from .inbound import REFILL_IDENTIFIER_SYSTEM
from .instants import parse_fhir_time
from .medications import Medication, dispensed_for, medication_list
from .references import parse_reference, reference_to

ORDER_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order"})
OPEN = frozenset({"sent", "reviewing"})


@dataclass(frozen=True, slots=True)
class RefillStatus:
    key: str  # sent | reviewing | approved | pharmacy | declined | unknown
    words: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class RefillRequest:
    reference: str | None
    prescription: str | None  # MedicationRequest/<id> it asks to refill
    asked: str | None  # date in words
    pharmacy: str | None
    note: str | None
    status: RefillStatus

    @property
    def open(self) -> bool:
        return self.status.key in OPEN


@dataclass(frozen=True, slots=True)
class Prescription:
    """One current medicine as the medicines page shows it."""

    id: str
    medicine: Medication
    last_filled: str | None
    last_pharmacy: str | None
    last_pharmacy_ref: str | None  # Organization/<id>
    requests: list[RefillRequest]  # newest first

    @property
    def open_request(self) -> RefillRequest | None:
        return next((r for r in self.requests if r.open), None)

    @property
    def can_refill(self) -> bool:
        left = self.medicine.refills_left
        return self.medicine.status == "active" and (left is None or left > 0) and self.open_request is None

    @property
    def needs_renewal(self) -> bool:
        return self.medicine.status == "active" and self.medicine.refills_left == 0 and self.open_request is None


def is_refill_request(resource: Any) -> bool:
    if not isinstance(resource, Mapping) or resource.get("intent") != "proposal":
        return False
    return any(isinstance(i, Mapping) and i.get("system") == REFILL_IDENTIFIER_SYSTEM
               for i in resource.get("identifier") or [])


def _based_on(resource: Mapping[str, Any]) -> list[str]:
    return [r.text for b in resource.get("basedOn") or [] if (r := parse_reference(b)) is not None]


def _display(reference: Any) -> str | None:
    value = reference.get("display") if isinstance(reference, Mapping) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _staff_note(resource: Mapping[str, Any], patient_refs: set[str]) -> str | None:
    notes = [n for n in resource.get("note") or [] if isinstance(n, Mapping) and isinstance(n.get("text"), str)]
    staff = [n for n in notes if (r := parse_reference(n.get("authorReference"))) is None or r.text not in patient_refs]
    return staff[-1]["text"].strip() if staff else None


def _patient_note(resource: Mapping[str, Any], patient_refs: set[str]) -> str | None:
    notes = [n["text"].strip() for n in resource.get("note") or [] if isinstance(n, Mapping)
             and isinstance(n.get("text"), str) and (r := parse_reference(n.get("authorReference"))) is not None
             and r.text in patient_refs]
    return " ".join(notes) or None


def refill_status(request: Mapping[str, Any], orders: Iterable[Mapping[str, Any]], patient_refs: set[str],
                  locale: str = ENGLISH) -> RefillStatus:
    """Where the care team is with one refill request, in words (see the module's table)."""
    def _(message: str) -> str:
        return gettext_in(locale, message)

    status = request.get("status")
    ref = reference_to(request)
    order = next((o for o in orders if ref in _based_on(o) and o.get("intent") in ORDER_INTENTS
                  and o.get("status") not in ("entered-in-error", "cancelled")), None)
    if order is not None:
        dispense = order.get("dispenseRequest") if isinstance(order.get("dispenseRequest"), Mapping) else {}
        pharmacy = _display(dispense.get("performer")) or _display(
            (request.get("dispenseRequest") or {}).get("performer"))
        return RefillStatus("pharmacy", _("Sent to the pharmacy"),
                            _("Your new prescription went to %(pharmacy)s.") % {"pharmacy": pharmacy} if pharmacy
                            else _("Your new prescription went to your pharmacy."))
    if status == "draft":
        return RefillStatus("sent", _("Sent"), _("Your care team has your request. They usually answer within 2 "
                                                 "working days."))
    if status in ("active", "on-hold"):
        return RefillStatus("reviewing", _("Being looked at"),
                            _("Someone on your care team is looking at your request."))
    if status == "completed":
        return RefillStatus("approved", _("Approved"), _("Your care team approved your refill. It will be sent to "
                                                         "your pharmacy soon."))
    if status in ("cancelled", "stopped"):
        reason = concept_text(request.get("statusReason")) or _staff_note(request, patient_refs)
        return RefillStatus("declined", _("Declined"), reason or _("Your care team could not approve this refill. "
                                                                   "Please send them a message if you have "
                                                                   "questions."))
    return RefillStatus("unknown", _("Status not known"), None)


def refill_requests(resources: Iterable[Any], patient_refs: set[str], tz: tzinfo | None = None,
                    locale: str = ENGLISH) -> list[RefillRequest]:
    """Every refill request among these MedicationRequests, newest first (entries in error left out)."""
    every = [r for r in resources if isinstance(r, Mapping)]
    orders = [r for r in every if r.get("intent") in ORDER_INTENTS]
    found = [r for r in every if is_refill_request(r) and r.get("status") != "entered-in-error"]
    found.sort(key=lambda r: (t.sort_key().timestamp() if (t := parse_fhir_time(r.get("authoredOn"))) else 0.0),
               reverse=True)
    out = []
    for r in found:
        asked = parse_fhir_time(r.get("authoredOn"))
        based = [b for b in _based_on(r) if b.startswith("MedicationRequest/")]
        out.append(RefillRequest(
            reference=reference_to(r), prescription=based[0] if based else None,
            asked=date_words(asked, tz, locale) if asked else None,
            pharmacy=_display((r.get("dispenseRequest") or {}).get("performer")),
            note=_patient_note(r, patient_refs), status=refill_status(r, orders, patient_refs, locale)))
    return out


def prescriptions(requests: Iterable[Any], dispenses: Iterable[Any] | None, patient_refs: set[str],
                  tz: tzinfo | None = None, locale: str = ENGLISH) -> list[Prescription]:
    """The patient's current prescriptions (newest first), each with its last fill and its refill requests.
    Without `dispenses` (None: not known) refills left are what each prescription allows."""
    every = [r for r in requests if isinstance(r, Mapping)]
    filled = [d for d in dispenses or [] if isinstance(d, Mapping)]
    current, _ = medication_list(every, dispenses=filled if dispenses is not None else None, tz=tz)
    by_ref = {reference_to(r): r for r in every}
    asked = refill_requests(every, patient_refs, tz, locale)
    # An approved refill renews the prescription (the new one names the old as `priorPrescription`): the
    # requests made on the old one stay with the medicine.
    prior = {ref: p.text for ref, r in by_ref.items() if ref
             and (p := parse_reference(r.get("priorPrescription"), "MedicationRequest")) is not None}
    out = []
    for med in current:
        resource = by_ref.get(med.reference)
        if resource is None or not med.reference:
            continue
        fills = dispensed_for(resource, filled)
        last = max(fills, key=lambda d: str(d.get("whenHandedOver") or ""), default=None)
        when = parse_fhir_time(last.get("whenHandedOver")) if last else None
        actor = next((p.get("actor") for p in (last or {}).get("performer") or [] if isinstance(p, Mapping)), None)
        actor_ref = parse_reference(actor)
        out.append(Prescription(
            id=med.reference.split("/", 1)[1], medicine=med, last_filled=date_words(when, tz, locale) if when else None,
            last_pharmacy=_display(actor), last_pharmacy_ref=actor_ref.text if actor_ref else None,
            requests=[a for a in asked if a.prescription in _lineage(med.reference, prior)]))
    return out


def _lineage(reference: str, prior: dict[str, str]) -> set[str]:
    """A prescription and every one it renewed (following `priorPrescription`, loops cut)."""
    seen = {reference}
    while (reference := prior.get(reference, "")) and reference not in seen:
        seen.add(reference)
    return seen


def usual_pharmacy(prescriptions_: Iterable[Prescription]) -> str | None:
    """The pharmacy (Organization/<id>) the patient last filled at, preselected on the refill form."""
    return next((p.last_pharmacy_ref for p in prescriptions_ if p.last_pharmacy_ref), None)

