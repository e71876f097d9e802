"""Consent decisions (per account + client + patient) and the plain-words description of scopes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from .scopes import Interaction, Scope, ScopeError

CONSENT_KEY = "auth:consent:{}:{}:{}"

# What a patient would call each resource type.
_THINGS: dict[str, str] = {
    "*": "all of your health record",
    "Patient": "your personal details",
    "Observation": "your test results and measurements",
    "MedicationRequest": "your prescriptions",
    "Appointment": "your appointments",
    "Communication": "your messages with your care team",
    "AllergyIntolerance": "your allergies",
    "Immunization": "your vaccinations",
    "Condition": "your health conditions",
    "DiagnosticReport": "your test reports",
    "DocumentReference": "your documents and letters",
    "Encounter": "your visits",
    "Coverage": "your insurance details",
    "ServiceRequest": "your referrals and orders",
    "QuestionnaireResponse": "your questionnaire answers",
    "RelatedPerson": "your family members and caregivers on record",
    "AuditEvent": "the record of who looked at your data",
    "Practitioner": "your care team",
    "PractitionerRole": "your care team's roles",
    "Organization": "clinics and organisations",
    "Slot": "free appointment times",
    "Schedule": "clinic schedules",
    "Questionnaire": "questionnaires",
    "Account": "your billing account",
    "Invoice": "your bills",
    "ChargeItem": "the charges on your bills",
    "PaymentReconciliation": "your bills",
}
_CATEGORY: dict[str, str] = {
    "laboratory": "your lab results",
    "vital-signs": "your vital signs (like blood pressure and pulse)",
    "social-history": "your habits on record (like smoking)",
    "imaging": "your scans and X-rays",
    "survey": "your survey answers",
}
_SPECIAL: dict[str, str] = {
    "openid": "Know who you are (your name on record)",
    "fhirUser": "Know who you are (your name on record)",
    "profile": "Know who you are (your name on record)",
    "launch/patient": "Know which patient's record you chose",
    "launch": "Know which patient's record is open",
    "launch/encounter": "Know which visit is open",
    "offline_access": "Keep access after you close the app, until you withdraw it",
    "online_access": "Keep access while you are signed in",
}


def describe_scope(text: str, *, patient_facing: bool = True) -> str:
    """One line in plain words, e.g. 'Read your lab results', 'Book and change your appointments'."""
    if text in _SPECIAL:
        return _SPECIAL[text]
    try:
        scope = Scope.parse(text)
    except ScopeError:
        return text
    constraints = dict(scope.constraints)
    category = constraints.get("category", "").split("|")[-1]
    thing = _CATEGORY.get(category) or _THINGS.get(scope.resource_type, scope.resource_type)
    if not patient_facing:
        thing = thing.replace("your ", "patients' ")
    ops = scope.interactions
    reads = ops & {Interaction.READ, Interaction.SEARCH}
    writes = ops & {Interaction.CREATE, Interaction.UPDATE, Interaction.DELETE}
    if scope.resource_type == "Appointment" and writes:
        verb = "See, book and change" if reads else "Book and change"
    elif scope.resource_type == "Communication" and Interaction.CREATE in writes:
        verb = "Read and send" if reads else "Send"
        thing = "messages to your care team" if not reads else thing
        if Interaction.UPDATE in writes:
            thing += " and mark their messages to you as read"
    elif scope.resource_type == "PaymentReconciliation" and Interaction.CREATE in writes:
        verb = "Pay"  # a payment is only ever made with a card the person enters themselves
    elif scope.resource_type == "QuestionnaireResponse" and writes:
        verb = "See, fill in and send" if reads else "Fill in and send"
        thing = "your clinic's forms"
    elif scope.resource_type == "MedicationRequest" and Interaction.CREATE in writes:
        verb = "See prescriptions and request refills of" if reads else "Request refills of"
    elif scope.resource_type == "ServiceRequest" and Interaction.CREATE in writes:
        verb, thing = ("See your referrals and orders and ask for referrals" if reads else "Ask for referrals"), ""
    elif reads and writes:
        verb = "Read and change"
    elif writes:
        verb = "Change" if Interaction.CREATE not in writes else "Add to"
    else:
        verb = "Read"
    return f"{verb} {thing}".rstrip()


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
