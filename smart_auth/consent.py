"""Consent decisions (per account + client + patient) and the plain-words description of scopes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from locales import N_
from web.i18n import gettext

from .scopes import Interaction, Scope, ScopeError

CONSENT_KEY = "auth:consent:{}:{}:{}"

# What a patient would call each resource type (English message ids, translated on a person's consent page).
_THINGS: dict[str, str] = {
    "*": N_("all of your health record"),
    "Patient": N_("your personal details"),
    "Observation": N_("your test results and measurements"),
    "MedicationRequest": N_("your prescriptions"),
    "Appointment": N_("your appointments"),
    "Communication": N_("your messages with your care team"),
    "AllergyIntolerance": N_("your allergies"),
    "Immunization": N_("your vaccinations"),
    "Condition": N_("your health conditions"),
    "DiagnosticReport": N_("your test reports"),
    "DocumentReference": N_("your documents and letters"),
    "Encounter": N_("your visits"),
    "Coverage": N_("your insurance details"),
    "ServiceRequest": N_("your referrals and orders"),
    "QuestionnaireResponse": N_("your questionnaire answers"),
    "RelatedPerson": N_("your family members and caregivers on record"),
    "AuditEvent": N_("the record of who looked at your data"),
    "Practitioner": N_("your care team"),
    "PractitionerRole": N_("your care team's roles"),
    "Organization": N_("clinics and organisations"),
    "Slot": N_("free appointment times"),
    "Schedule": N_("clinic schedules"),
    "Questionnaire": N_("questionnaires"),
    "Account": N_("your billing account"),
    "Invoice": N_("your bills"),
    "ChargeItem": N_("the charges on your bills"),
    "PaymentReconciliation": N_("your bills"),
}
_CATEGORY: dict[str, str] = {
    "laboratory": N_("your lab results"),
    "vital-signs": N_("your vital signs (like blood pressure and pulse)"),
    "social-history": N_("your habits on record (like smoking)"),
    "imaging": N_("your scans and X-rays"),
    "survey": N_("your survey answers"),
}
_SPECIAL: dict[str, str] = {
    "openid": N_("Know who you are (your name on record)"),
    "fhirUser": N_("Know who you are (your name on record)"),
    "profile": N_("Know who you are (your name on record)"),
    "launch/patient": N_("Know which patient's record you chose"),
    "launch": N_("Know which patient's record is open"),
    "launch/encounter": N_("Know which visit is open"),
    "offline_access": N_("Keep access after you close the app, until you withdraw it"),
    "online_access": N_("Keep access while you are signed in"),
}


def _action(scope: Scope) -> str:
    """What the app may do, as a message id with `%(thing)s` where the data it does it to goes."""
    ops = scope.interactions
    reads = ops & {Interaction.READ, Interaction.SEARCH}
    writes = ops & {Interaction.CREATE, Interaction.UPDATE, Interaction.DELETE}
    kind = scope.resource_type
    if kind == "Appointment" and writes:
        return N_("See, book and change %(thing)s") if reads else N_("Book and change %(thing)s")
    if kind == "Communication" and Interaction.CREATE in writes:
        if Interaction.UPDATE in writes:
            return (N_("Read and send %(thing)s and mark their messages to you as read") if reads
                    else N_("Send messages to your care team and mark their messages to you as read"))
        return N_("Read and send %(thing)s") if reads else N_("Send messages to your care team")
    if kind == "PaymentReconciliation" and Interaction.CREATE in writes:
        return N_("Pay %(thing)s")  # a payment is only ever made with a card the person enters themselves
    if kind == "QuestionnaireResponse" and writes:
        return N_("See, fill in and send your clinic's forms") if reads else N_("Fill in and send your clinic's forms")
    if kind == "MedicationRequest" and Interaction.CREATE in writes:
        return N_("See prescriptions and request refills of %(thing)s") if reads else N_("Request refills of %(thing)s")
    if kind == "ServiceRequest" and Interaction.CREATE in writes:
        return N_("See your referrals and orders and ask for referrals") if reads else N_("Ask for referrals")
    if reads and writes:
        return N_("Read and change %(thing)s")
    if writes:
        return N_("Change %(thing)s") if Interaction.CREATE not in writes else N_("Add to %(thing)s")
    return N_("Read %(thing)s")


def describe_scope(text: str, *, patient_facing: bool = True) -> str:
    """One line in plain words, e.g. 'Read your lab results', 'Book and change your appointments': for a patient
    or caregiver in the request's language; for staff (`patient_facing=False`, "patients' ...") in English, as
    the staff area is."""
    words: Callable[[str], str] = gettext if patient_facing else _as_written
    if text in _SPECIAL:
        return words(_SPECIAL[text])
    try:
        scope = Scope.parse(text)
    except ScopeError:
        return text
    constraints = dict(scope.constraints)
    category = constraints.get("category", "").split("|")[-1]
    thing = _CATEGORY.get(category) or _THINGS.get(scope.resource_type)
    if thing is None:
        thing = scope.resource_type  # a type we have no words for: its FHIR name, in every language
    elif patient_facing:
        thing = gettext(thing)
    else:
        thing = thing.replace("your ", "patients' ")
    return (words(_action(scope)) % {"thing": thing}).rstrip()


def _as_written(message: str) -> str:
    return message


@dataclass
class ConsentRecord:
    requested: list[str]
    granted: list[str]


class ConsentStore:
    """Remembers what the person was asked and what they allowed, so an equal or smaller request later
    can skip the consent page (the same unticked scopes stay withheld)."""

    def __init__(self, redis: Redis, *, ttl: int) -> None:
        self.redis = redis
        self.ttl = ttl

    async def remember(self, account_id: str, client_id: str, patient: str | None, record: ConsentRecord) -> None:
        if self.ttl <= 0:
            return
        key = CONSENT_KEY.format(account_id, client_id, patient or "-")
        await self.redis.set(key, json.dumps({"requested": record.requested, "granted": record.granted}),
                             ex=self.ttl)

    async def covered(
        self, account_id: str, client_id: str, patient: str | None, requested: list[str]
    ) -> list[str] | None:
        """The scopes already granted for this request, or None when the person must be asked."""
        if self.ttl <= 0:
            return None
        raw: Any = await self.redis.get(CONSENT_KEY.format(account_id, client_id, patient or "-"))
        if raw is None:
            return None
        data = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        if not set(requested) <= set(data["requested"]):
            return None
        return [s for s in requested if s in set(data["granted"])]

    async def forget(self, account_id: str, client_id: str, patient: str | None) -> None:
        await self.redis.delete(CONSENT_KEY.format(account_id, client_id, patient or "-"))
