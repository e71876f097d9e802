"""An allergy the patient tells the clinic about: the form's checks in words, and the AllergyIntolerance the
portal asks the gateway to write (pure functions). It is recorded as the patient's own report
(`verificationStatus` unconfirmed) until the care team checks it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .allergies import SEVERITY_WORDS
from .dates import typed_date

IDENTIFIER_SYSTEM = "urn:portal:reported-allergy"
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
UNCONFIRMED = {"coding": [{"system": VERIFICATION_SYSTEM, "code": "unconfirmed", "display": "Unconfirmed"}],
               "text": "Reported by the patient, not yet checked"}
ACTIVE = {"coding": [{"system": CLINICAL_SYSTEM, "code": "active", "display": "Active"}]}
# What the form offers (translated where shown: `kinds_in`).
KINDS = {"food": N_("A food"), "medication": N_("A medicine"),
         "environment": N_("Something around me (pollen, animals, latex…)"),
         "biologic": N_("A vaccine or blood product")}
SUBSTANCE_MAX = 100
REACTION_MAX = 200


def _words(fields: Mapping[str, str], name: str) -> str:
    return " ".join(str(fields.get(name) or "").split())


def kinds_in(locale: str = ENGLISH) -> dict[str, str]:
    """The kinds the form offers, in `locale`."""
    return {code: gettext_in(locale, words) for code, words in KINDS.items()}


def allergy_errors(fields: Mapping[str, str], today: date, birth_date: str | None = None,
                   locale: str = ENGLISH) -> dict[str, list[str]]:
    """What is wrong with the form, field by field, in `locale`."""
    def _(message: str) -> str:
        return gettext_in(locale, message)

    errors: dict[str, list[str]] = {}
    substance = _words(fields, "substance")
    if not substance:
        errors["substance"] = [_("Enter what you are allergic to, for example “peanuts” or “penicillin”.")]
    elif len(substance) > SUBSTANCE_MAX:
        errors["substance"] = [_("This can be at most %(num)s characters.") % {"num": SUBSTANCE_MAX}]
    if fields.get("category", "") not in KINDS:
        errors["category"] = [_("Choose what kind of thing it is.")]
    if len(_words(fields, "reaction")) > REACTION_MAX:
        errors["reaction"] = [_("This can be at most %(num)s characters.") % {"num": REACTION_MAX}]
    if fields.get("severity", "") not in ("", *SEVERITY_WORDS):
        errors["severity"] = [_("Choose mild, moderate or severe, or leave it empty.")]
    when = _words(fields, "onset")
    if when:
        day = typed_date(when)
        if day is None:
            errors["onset"] = [_("Enter a real date, for example 05/30/2019.")]
        else:
            if day > today:
                errors["onset"] = [_("This date is in the future. Enter when it first happened.")]
            elif birth_date and day.isoformat() < birth_date[:10]:
                errors["onset"] = [_("This date is before you were born.")]
    return errors


def reported_allergy(fields: Mapping[str, str], *, patient_ref: str, reporter_ref: str,
                     submission: str) -> dict[str, Any]:
    """The AllergyIntolerance for a form `allergy_errors` found nothing wrong with."""
    body: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": submission}],
        "clinicalStatus": ACTIVE,
        "verificationStatus": UNCONFIRMED,
        "category": [fields["category"]],
        "code": {"text": _words(fields, "substance")},
        "patient": {"reference": patient_ref},
        "recorder": {"reference": reporter_ref},
        "asserter": {"reference": reporter_ref},
    }
    reaction = _words(fields, "reaction")
    if reaction or fields.get("severity"):
        one: dict[str, Any] = {"manifestation": [{"text": reaction or "Not described"}]}
        if fields.get("severity"):
            one["severity"] = fields["severity"]
        body["reaction"] = [one]
    if onset := typed_date(_words(fields, "onset")):
        body["onsetDateTime"] = onset.isoformat()
    return body
