"""A patient's "who looked at my record" page: the events that concern one patient, in plain words.

The events come from an `AccessLogSource`: our audit store (`store.py`), or, without one, the EHR's
AuditEvents (`EhrAccessLog`). The EHR search is `AuditEvent?entity=Patient/<id>&_sort=-date` (R4 `entity`
= AuditEvent.entity.what, which HAPI indexes; our events name every patient whose data was touched as an
entity with role 1 Patient). Its results are filtered again here, so an EHR that ignored the parameter can
never show patient A another patient's events; the store indexes events by the same rule (`patients_of`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

import httpx

from .events import DCM, RESOURCE_TYPES, RESTFUL_INTERACTION


class EhrSearchClient(Protocol):
    """fhir_gateway.upstream.Upstream satisfies it."""

    async def request(self, method: str, path: str, *, params: Any = None,
                      headers: dict[str, str] | None = None) -> httpx.Response: ...


class AccessLogUnavailable(RuntimeError):
    """The EHR could not answer the AuditEvent search."""


def _patient_ref(patient_id: str) -> str:
    return patient_id if patient_id.startswith("Patient/") else f"Patient/{patient_id}"


def _relative(reference: str) -> str:
    """`http://ehr/fhir/Patient/1/_history/2` -> `Patient/1`."""
    if reference.count("/") == 1 and not reference.endswith("/"):
        return reference  # already `Type/id`: most of ours are (a log page holds thousands of them)
    parts = reference.split("/_history/", 1)[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def entity_reference(entity: Mapping[str, Any]) -> str:
    """`Type/id` of an entity, whether named literally or (failed requests) by a logical reference."""
    what = entity.get("what") or {}
    if what.get("reference"):
        return _relative(what["reference"])
    identifier = what.get("identifier") or {}
    value = identifier.get("value") or ""
    return value if str(identifier.get("system", "")).endswith("/fhir-reference") else ""


def patients_of(event: Mapping[str, Any]) -> set[str]:
    """The patients (`Patient/<id>`) an event names as an entity: whose access log shows it."""
    found = set()
    for entity in event.get("entity") or []:
        what = entity.get("what") if isinstance(entity, dict) else None
        reference = what.get("reference") if isinstance(what, dict) else None
        if isinstance(reference, str) and (ref := _relative(reference)).startswith("Patient/"):
            found.add(ref)
    return found


def concerns_patient(event: Mapping[str, Any], patient_ref: str) -> bool:
    return patient_ref in patients_of(event)


# One search asks for at most this many events (the sandbox EHR allows pages of 500).
MAX_COUNT = 500


@dataclass(frozen=True)
class AccessLogPage:
    events: list[dict[str, Any]]  # newest first
    more: bool  # the EHR has further matches (a full page, or a `next` link because it capped the page)


class AccessLogSource(Protocol):
    """Where the access log comes from: our audit store, or (without one) the EHR's AuditEvent search."""

    async def page(self, patient_id: str, *, count: int = 50, since: str | None = None, until: str | None = None,
                   before: str | None = None) -> AccessLogPage: ...


class EhrAccessLog:
    """The access log as an AuditEvent search in the EHR (for deployments without an audit store)."""

    def __init__(self, ehr: EhrSearchClient) -> None:
        self.ehr = ehr

    async def page(self, patient_id: str, *, count: int = 50, since: str | None = None, until: str | None = None,
                   before: str | None = None) -> AccessLogPage:
        return await access_log_page(self.ehr, patient_id, count=count, since=since, until=until, before=before)


async def access_log(
    ehr: EhrSearchClient, patient_id: str, *, count: int = 50, since: str | None = None,
    until: str | None = None, before: str | None = None,
) -> list[dict[str, Any]]:
    """The newest `count` AuditEvents that touched this patient's data, optionally only those recorded at or
    after `since`, at or before `until`, and strictly before `before` (dates or instants)."""
    return (await access_log_page(ehr, patient_id, count=count, since=since, until=until, before=before)).events


async def access_log_page(
    ehr: EhrSearchClient, patient_id: str, *, count: int = 50, since: str | None = None,
    until: str | None = None, before: str | None = None,
) -> AccessLogPage:
    """`access_log`, also saying whether the EHR holds more matches than it returned."""
    ref = _patient_ref(patient_id)
    count = max(1, min(count, MAX_COUNT))
    params: list[tuple[str, str]] = [("entity", ref), ("_sort", "-date"), ("_count", str(count))]
    if since:
        params.append(("date", f"ge{since}"))
    if until:
        params.append(("date", f"le{until}"))
    if before:
        params.append(("date", f"lt{before}"))
    try:
        # no-cache: EHRs such as HAPI otherwise answer a repeated search from a copy up to a minute old,
        # and a patient checking who just looked must see it.
        response = await ehr.request("GET", "AuditEvent", params=params, headers={"Cache-Control": "no-cache"})
    except Exception as exc:  # the EHR client raises its own error types for down/timeout/5xx
        raise AccessLogUnavailable(f"EHR unreachable: {type(exc).__name__}") from exc
    if not response.is_success:
        raise AccessLogUnavailable(f"EHR refused the AuditEvent search ({response.status_code})")
    bundle = response.json()
    events = [
        entry["resource"]
        for entry in bundle.get("entry") or []
        if (entry.get("resource") or {}).get("resourceType") == "AuditEvent"
        and (entry.get("search") or {}).get("mode", "match") == "match"
    ]
    more = len(events) >= count or any(link.get("relation") == "next" for link in bundle.get("link") or [])
    mine = [e for e in events if concerns_patient(e, ref)]
    mine.sort(key=lambda e: e.get("recorded") or "", reverse=True)
    return AccessLogPage(mine[:count], more)


# -- plain words -------------------------------------------------------------------------------------------
RESOURCE_WORDS: dict[str, str] = {
    "Observation": "test results",
    "DiagnosticReport": "test reports",
    "MedicationRequest": "medications",
    "MedicationStatement": "medications",
    "MedicationDispense": "medications",
    "MedicationAdministration": "medications",
    "Medication": "medications",
    "Appointment": "appointments",
    "Slot": "appointment availability",
    "Schedule": "appointment availability",
    "AllergyIntolerance": "allergies",
    "Condition": "health conditions",
    "Immunization": "immunizations",
    "Procedure": "procedures",
    "DocumentReference": "documents",
    "Encounter": "visits",
    "Patient": "personal details",
    "Communication": "messages",
    "Binary": "message files",
    "CarePlan": "care plans",
    "CareTeam": "care team",
    "Goal": "health goals",
    "Coverage": "insurance",
    "ExplanationOfBenefit": "claims",
    "Invoice": "bills",
    "ChargeItem": "bills",
    "Account": "bills",
    "PaymentReconciliation": "payments",
    "PaymentNotice": "payments",
    "QuestionnaireResponse": "questionnaire answers",
    "ServiceRequest": "referrals and orders",
    "RelatedPerson": "caregivers",
    "Practitioner": "care team members",
    "Device": "devices",
    "Provenance": "record history",
    "AuditEvent": "access history",
}
CATEGORY_WORDS: dict[str, str] = {
    "laboratory": "lab results",
    "vital-signs": "vital signs",
    "social-history": "social history",
    "imaging": "imaging results",
    "survey": "questionnaire results",
    "health-notebook": "health notebook",
    "exam": "exam findings",
    "LAB": "lab reports",
    "RAD": "imaging reports",
}
VERBS: dict[str, tuple[str, str]] = {  # interaction -> (done, tried to)
    "read": ("viewed", "view"),
    "vread": ("viewed", "view"),
    "search-type": ("looked through", "look through"),
    "search-system": ("looked through", "look through"),
    "history-instance": ("viewed the history of", "view the history of"),
    "history-type": ("viewed the history of", "view the history of"),
    "create": ("added to", "add to"),
    "update": ("changed", "change"),
    "patch": ("changed", "change"),
    "delete": ("removed something from", "remove something from"),
    "operation": ("used", "use"),
}
# Writes that read better said as what the person did: (interaction, words for the data) -> (done, tried to)
ACTION_WORDS: dict[tuple[str, str], tuple[str, str]] = {
    ("create", "messages"): ("sent a message to your care team", "send a message to your care team"),
    ("update", "messages"): ("marked a message to you as read", "mark a message to you as read"),
    ("create", "allergies"): ("added an allergy to your record", "add an allergy to your record"),
    ("create", "medications"): ("asked for a prescription refill", "ask for a prescription refill"),
    ("create", "referrals and orders"): ("asked for a referral to a specialist", "ask for a referral to a specialist"),
    ("create", "payments"): ("paid a bill", "pay a bill"),
    ("create", "appointments"): ("booked an appointment", "book an appointment"),
    ("update", "appointments"): ("moved or cancelled an appointment", "move or cancel an appointment"),
    ("create", "questionnaire answers"): ("saved answers to a form", "save answers to a form"),
    ("update", "questionnaire answers"): ("saved or sent answers to a form", "save or send answers to a form"),
    ("create", "health notebook"): ("wrote in your health notebook", "write in your health notebook"),
    ("update", "health notebook"): ("changed or shared a note in your health notebook",
                                    "change or share a note in your health notebook"),
}
AUTH_WORDS: dict[str, str] = {  # local portal-auth-event codes that can concern a patient
    "login": "signed in to the portal",
    "logout": "signed out of the portal",
    "enrolment": "set up a portal account for your record",
    "enrolment-identity": "checked identity to enrol for your record",
    "enrolment-locked": "was locked out of enrolling for your record",
    "invitation": "sent an invitation to enrol for your record",
    "mfa-reset": "reset how you confirm your sign-in, after checking your identity",
    "proxy-grant": "gave caregiver access to your record",
    "proxy-accept": "accepted caregiver access to your record",
    "proxy-withdraw": "withdrew caregiver access to your record",
    "consent": "allowed an app to access your record",
    "consent-withdraw": "withdrew an app's access to your record",
    "token-issue": "gave an app access to your record",
    "token-refresh": "renewed an app's access to your record",
    "token-revoke": "ended an app's access to your record",
    "authorize": "asked for access to your record",
    "authorize-code": "approved app access to your record",
    "lockout": "was locked out after failed sign-ins",
}


def _codes(codings: Any) -> list[tuple[str, str]]:
    items = codings if isinstance(codings, list) else [codings]
    return [(c.get("system", ""), c.get("code", "")) for c in items if isinstance(c, dict)]


def _query_params(entity: Mapping[str, Any]) -> dict[str, list[str]]:
    try:
        return parse_qs(base64.b64decode(entity.get("query") or "").decode(), keep_blank_values=True)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return {}


def _subject_words(event: Mapping[str, Any]) -> str:
    """What kind of data the event touched: 'lab results', 'medications', ... ('health record' if unknown)."""
    known_type: str | None = None  # the first resource type named that has words (in the entities' order)
    categories: list[str] = []
    for entity in event.get("entity") or []:
        role = (entity.get("role") or {}).get("code")
        if role == "24":  # the search: its resource type and category
            if known_type is None:
                known_type = next((code for system, code in _codes(entity.get("type"))
                                   if system == RESOURCE_TYPES and code in RESOURCE_WORDS), None)
            params = _query_params(entity)
            for value in params.get("category", []):
                categories.extend(part.split("|")[-1] for part in value.split(","))
        elif known_type is None:  # once a type is known, the other entities only matter for categories
            ref = entity_reference(entity)
            if ref and not ref.startswith("Patient/") and ref.split("/", 1)[0] in RESOURCE_WORDS:
                known_type = ref.split("/", 1)[0]
        for detail in entity.get("detail") or []:
            if detail.get("type") == "category" and detail.get("valueString"):
                categories.append(detail["valueString"])
    for category in categories:
        if category in CATEGORY_WORDS:
            return CATEGORY_WORDS[category]
    if known_type is not None:
        return RESOURCE_WORDS[known_type]
    if any(_relative((e.get("what") or {}).get("reference") or "").startswith("Patient/")
           for e in event.get("entity") or []):
        return RESOURCE_WORDS["Patient"]
    return "health record"


def _agents(event: Mapping[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """(the requesting agent, client id, on-behalf-of patient reference)."""
    user: dict[str, Any] = {}
    client_id = None
    on_behalf = None
    for agent in event.get("agent") or []:
        codes = [code for _system, code in _codes((agent.get("type") or {}).get("coding") or [])]
        if agent.get("requestor"):
            user = agent
        elif "110150" in codes:
            client_id = ((agent.get("who") or {}).get("identifier") or {}).get("value")
        elif "datasubject" in codes:
            on_behalf = (agent.get("who") or {}).get("reference")
    return user, client_id, on_behalf


def _patient_side(user: Mapping[str, Any], on_behalf: str | None) -> bool:
    ref = _relative((user.get("who") or {}).get("reference") or "")
    return bool(on_behalf) or ref.startswith(("Patient/", "RelatedPerson/"))


def _who(user: Mapping[str, Any], client_id: str | None, on_behalf: str | None, names: Mapping[str, str],
         patient: str | None) -> str:
    ref = _relative((user.get("who") or {}).get("reference") or "")
    resource_type = ref.split("/", 1)[0] if ref else ""
    app = names.get(client_id or "", client_id or "an app")
    if not ref:
        return f"Backend service {app}" if client_id else "Someone who was not signed in"
    if resource_type == "Device":
        return f"Backend service {names.get(ref) or app}"
    if on_behalf or resource_type == "RelatedPerson":
        name = names.get(ref)
        return f"Your caregiver {name}" if name else "Your caregiver"
    if resource_type == "Patient" and (patient is None or ref == patient):
        return "You"
    if resource_type in ("Practitioner", "PractitionerRole"):
        return names.get(ref) or "A member of your care team"
    return names.get(ref) or "Someone with portal access"


def _broke_the_glass(event: Mapping[str, Any]) -> bool:
    """A practitioner opened the record outside the patient's care team (purposeOfUse BTG)."""
    return any(c.get("code") == "BTG" for purpose in event.get("purposeOfEvent") or []
               if isinstance(purpose, Mapping) for c in purpose.get("coding") or [] if isinstance(c, Mapping))


def describe(event: Mapping[str, Any], names: Mapping[str, str], *, patient: str | None = None) -> dict[str, Any]:
    """One AuditEvent in plain words for the patient whose log it is.

    `names` maps references (`Practitioner/prac-01`, `RelatedPerson/rp-1`, `Device/x`) and client ids to
    display names; `patient` (e.g. `Patient/pt-0001`) is the log's owner (their own accesses read "You").
    """
    patient = _patient_ref(patient) if patient else None
    user, client_id, on_behalf = _agents(event)
    success = event.get("outcome", "0") == "0"
    type_code = (event.get("type") or {}).get("code")
    subtypes = _codes(event.get("subtype") or [])
    interaction = next((code for system, code in subtypes if system == RESTFUL_INTERACTION), None)
    subject = _subject_words(event)
    writes = interaction in ("create", "update")
    if subject == RESOURCE_WORDS["Observation"] and writes and _patient_side(user, on_behalf):
        # A patient or caregiver writes an Observation only as a health-notebook entry (the gateway's rule).
        subject = "health notebook"
    if interaction and (interaction, subject) in ACTION_WORDS:
        done, tried = ACTION_WORDS[(interaction, subject)]
        what = done if success else f"tried to {tried}"
    elif interaction:
        done, tried = VERBS.get(interaction, ("accessed", "access"))
        what = f"{done if success else 'tried to ' + tried} your {subject}"
    elif (event.get("type") or {}).get("system") == DCM or type_code in ("110114", "110113"):
        local = next((code for system, code in subtypes if system.endswith("/CodeSystem/portal-auth-event")), "")
        what = AUTH_WORDS.get(local, "changed security settings for your record")
        if not success:
            what = f"tried but failed: {what}"
    else:
        what = f"accessed your {subject}" if success else f"tried to access your {subject}"
    if _broke_the_glass(event):
        what = f"{what} (emergency access, outside your care team)"
    network = user.get("network") or {}
    return {
        "when": event.get("recorded"),
        "who": _who(user, client_id, on_behalf, names, patient),
        "what": what,
        "app": names.get(client_id, client_id) if client_id else None,
        "outcome": "success" if success else "failure",
        "from": network.get("address"),
    }
