"""Our own CapabilityStatement: exactly what the policy table serves, plus the SMART oauth URIs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .policy import CREATE, HISTORY_INSTANCE, PATIENT_OPERATIONS, POLICIES, READ, SEARCH, UPDATE, VREAD

_DATE = {"date", "birthdate", "authoredon", "sent", "received", "start", "onset-date", "authored", "_lastUpdated"}
_REFERENCE = {"patient", "subject", "performer", "requester", "actor", "practitioner", "sender", "recipient",
              "schedule", "slot", "encounter", "based-on", "part-of", "result", "beneficiary", "general-practitioner",
              "organization", "questionnaire", "entity", "agent", "medication", "subscriber", "payor", "location"}
_STRING = {"name", "family", "given", "address-postalcode", "title"}
_SPECIAL = {"value-quantity": "quantity", "url": "uri", "_tag": "token", "_profile": "uri", "_security": "token"}


def param_type(name: str) -> str:
    if name in _SPECIAL:
        return _SPECIAL[name]
    if name in _DATE:
        return "date"
    if name in _REFERENCE:
        return "reference"
    if name in _STRING:
        return "string"
    return "token"


_INTERACTION_ORDER = [READ, VREAD, HISTORY_INSTANCE, SEARCH, CREATE, UPDATE]


def capability_statement(public_url: str, software_version: str) -> dict[str, Any]:
    base = public_url.rstrip("/")
    resources = []
    for name, policy in sorted(POLICIES.items()):
        params = sorted(policy.search_params | {"_id", "_lastUpdated"})
        entry: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": i} for i in _INTERACTION_ORDER if i in policy.interactions],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": False,
            "conditionalCreate": CREATE in policy.interactions,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "searchParam": [{"name": p, "type": param_type(p)} for p in params],
        }
        if name == "Patient":
            entry["operation"] = [{"name": op, "definition": spec.definition}
                                  for op, spec in PATIENT_OPERATIONS.items()]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).date().isoformat(),
        "kind": "instance",
        "software": {"name": "SMART-on-FHIR patient portal gateway", "version": software_version},
        "implementation": {"description": "Patient portal FHIR gateway", "url": f"{base}/fhir"},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": True,
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"}]}],
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "authorize", "valueUri": f"{base}/auth/authorize"},
                        {"url": "token", "valueUri": f"{base}/auth/token"},
                        {"url": "register", "valueUri": f"{base}/auth/register"},
                    ],  # the extension defines only token/authorize/register/manage; the rest: SMART config
                }],
            },
            "resource": resources,
        }],
    }
