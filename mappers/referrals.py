"""Referrals to specialists in words (pure): the ones a clinician made and the ones the patient asked for.

A patient's request is a ServiceRequest with `intent=proposal`; the care team moves it along:

| status | an order `basedOn` it | the patient reads |
|---|---|---|
| draft, active | - | Sent (waiting for the care team) |
| on-hold | - | Being looked at |
| completed | no | Approved |
| any | yes | Referral made (to the practice the order names) |
| revoked | - | Declined, with the care team's reason (their last note) |

A clinician's referral (`intent=order`) reads "Referral made" while active and "Done" once completed.
The words are in the `locale` passed in (English by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from locales import ENGLISH, gettext_in

from .catalogue import specialty_in
from .concepts import concept_text
from .dates import date_words
from .instants import parse_fhir_time
from .references import parse_reference, reference_to

REFERRAL_CODE = "3457005"
ORDER_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order"})
OPEN = frozenset({"sent", "reviewing"})


@dataclass(frozen=True, slots=True)
class Referral:
    reference: str | None
    specialty: str  # in the patient's words
    practice: str | None
    reason: str | None
    asked: str | None  # date in words
    by_you: bool  # the patient asked for it (a proposal) rather than a clinician making it
    status_key: str  # sent | reviewing | approved | referred | declined | done | unknown
    status: str
    detail: str | None
    specialty_code: str | None

    @property
    def open(self) -> bool:
        return self.status_key in OPEN


def is_referral(resource: Any) -> bool:
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "ServiceRequest":
        return False
    return any(isinstance(c, Mapping) and any(isinstance(x, Mapping) and x.get("code") == REFERRAL_CODE
                                                  for x in c.get("coding") or [])
               for c in resource.get("category") or []) or specialty_in(resource.get("performerType")) is not None


def _display(reference: Any) -> str | None:
    value = reference.get("display") if isinstance(reference, Mapping) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _practice(resource: Mapping[str, Any]) -> str | None:
    return next((d for p in resource.get("performer") or [] if (d := _display(p))), None)


def _staff_note(resource: Mapping[str, Any], patient_refs: set[str]) -> str | None:
    notes = [n for n in resource.get("note") or [] if isinstance(n, Mapping) and isinstance(n.get("text"), str)]
    staff = [n for n in notes if (r := parse_reference(n.get("authorReference"))) is None or r.text not in patient_refs]
    return staff[-1]["text"].strip() if staff else None


def _status(resource: Mapping[str, Any], orders: list[Mapping[str, Any]], patient_refs: set[str],
            locale: str = ENGLISH) -> tuple[str, str, str | None]:
    def _(message: str) -> str:
        return gettext_in(locale, message)

    status = resource.get("status")
    if resource.get("intent") in ORDER_INTENTS:
        if status == "completed":
            return "done", _("Done"), _("You have seen the specialist.")
        if status in ("active", "on-hold", "draft"):
            practice = _practice(resource)
            return "referred", _("Referral made"), (
                _("%(practice)s will contact you to book a visit.") % {"practice": practice} if practice
                else _("The specialist's office will contact you to book a visit."))
        if status == "revoked":
            return "declined", _("Cancelled"), _staff_note(resource, patient_refs)
        return "unknown", _("Status not known"), None
    ref = reference_to(resource)
    order = next((o for o in orders if ref and any((r := parse_reference(b)) and r.text == ref
                                                   for b in o.get("basedOn") or [])
                  and o.get("status") not in ("entered-in-error", "revoked")), None)
    if order is not None:
        practice = _practice(order) or _practice(resource)
        return "referred", _("Referral made"), (
            _("Your care team referred you to %(practice)s. They will contact you to book a visit.")
            % {"practice": practice} if practice else
            _("Your care team made the referral. The specialist's office will contact you to book a visit."))
    if status in ("draft", "active"):
        return "sent", _("Sent"), _("Your care team has your request. They usually answer within 2 working days.")
    if status == "on-hold":
        return "reviewing", _("Being looked at"), _("Someone on your care team is looking at your request.")
    if status == "completed":
        return "approved", _("Approved"), _("Your care team approved the referral and is arranging it.")
    if status == "revoked":
        return "declined", _("Declined"), _staff_note(resource, patient_refs) or _(
            "Your care team did not make this referral. Please send them a message if you have questions.")
    return "unknown", _("Status not known"), None


def referrals(resources: Iterable[Any], patient_refs: set[str], tz: tzinfo | None = None,
              locale: str = ENGLISH) -> list[Referral]:
    """Every referral among these ServiceRequests, newest first. Requests the patient made that became a
    referral show once, as the request (with its outcome); entries in error are left out."""
    every = [r for r in resources if is_referral(r) and r.get("status") != "entered-in-error"]
    orders = [r for r in every if r.get("intent") in ORDER_INTENTS]
    proposals = {reference_to(r) for r in every if r.get("intent") == "proposal"}
    shown = [r for r in every if r.get("intent") == "proposal" or (
        r.get("intent") in ORDER_INTENTS and not any((b := parse_reference(x)) and b.text in proposals
                                                     for x in r.get("basedOn") or []))]
    shown.sort(key=lambda r: (t.sort_key().timestamp() if (t := parse_fhir_time(r.get("authoredOn"))) else 0.0),
               reverse=True)
    out = []
    for r in shown:
        specialty = specialty_in(r.get("performerType"))
        asked = parse_fhir_time(r.get("authoredOn"))
        key, words, detail = _status(r, orders, patient_refs, locale)
        out.append(Referral(
            reference=reference_to(r),
            specialty=gettext_in(locale, specialty.words) if specialty else (
                concept_text(r.get("performerType")) or concept_text(r.get("code"))
                or gettext_in(locale, "A specialist")),
            practice=_practice(r), reason=", ".join(t for c in r.get("reasonCode") or [] if (t := concept_text(c)))
            or None, asked=date_words(asked, tz, locale) if asked else None, by_you=r.get("intent") == "proposal",
            status_key=key, status=words, detail=detail, specialty_code=specialty.code if specialty else None))
    return out
