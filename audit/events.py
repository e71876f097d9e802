"""Pure builders of FHIR R4 AuditEvent dicts (no I/O).

Every event gets a fresh unique `id` (a UUID string: never all digits, so HAPI accepts it as a client id)
that the exporter uses for an idempotent `PUT AuditEvent/<id>`.

What goes into an event, and why:
- `type`/`subtype`: `rest` + the RESTful interaction for data access (DICOM/HL7 codes); DICOM 110114/110113
  plus a local code system (`<public_url>/CodeSystem/portal-auth-event`, see AUTH_EVENTS) for security events.
- agents: the user (`requestor: true`, `who.reference` = fhirUser (a backend service's `Device/<client>`
  becomes `who.identifier` = client id, as no such Device exists in the EHR), `altId` = account id, `network.address`
  = source IP); the client app as a second agent (`who.identifier` = client_id). R4 AuditEvent.agent
  has no `onBehalfOf` (Provenance.agent has), so a caregiver acting for a patient is recorded
  as (a) a third agent for that patient with `requestor: false` and type
  `extra-security-role-type#datasubject`, and (b) an extension on the user agent
  (`<public_url>/StructureDefinition/auditevent-on-behalf-of`, valueReference) so a reader of the user
  agent alone sees the delegation too.
- entities: each patient whose data was touched (type 1 Person, role 1 Patient: this makes
  `AuditEvent?entity=Patient/<id>` find it), each other resource (type 2 System Object, role 4 Domain
  Resource; when the request failed, as a logical reference - `what.identifier` with system
  `<public_url>/fhir-reference` and value `Type/id` - because the EHR auto-creates placeholder resources
  for unknown literal references), the search query (role 24 Query, type = the searched resource type,
  `query` = base64 of the PHI-filtered query string), and the request id as an IHE BALP `XrequestId`
  entity (`what.identifier.value`).
- No PHI: only references, ids, codes and the source IP. Search parameter values are kept only for the
  parameters in SAFE_QUERY_PARAMS (ids, references, codes, dates, paging/format controls); every other value
  (names, birth dates, identifiers such as MRN/SSN, addresses, telecom, free text) is replaced by
  REDACTED, while the parameter name is kept. Chained (`a.b=`), `_has:` and `:text`-style modifiers are
  always redacted.
"""

from __future__ import annotations

import base64
import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
SECURITY_ROLE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
BALP_ENTITY_TYPE = "http://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
NETWORK_IP = "2"  # AuditEventAgentNetworkType: IP address
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
# Purposes of use the gateway records: break-the-glass (a practitioner outside the patient's care team,
# with a reason they gave).
PURPOSES = {"BTG": "break the glass"}

INTERACTIONS = frozenset({
    "read", "vread", "update", "patch", "delete", "history-instance", "history-type", "history-system",
    "create", "search-type", "search-system", "capabilities", "transaction", "batch", "operation",
})
OUTCOMES = frozenset({"0", "4", "8", "12"})
ACTIONS = frozenset({"C", "R", "U", "D", "E"})

REDACTED = "redacted"
# Search parameters whose values are ids, references, codes, dates or controls - never free text or
# demographics. Everything else keeps its name but loses its value.
SAFE_QUERY_PARAMS = frozenset({
    "_id", "_count", "_sort", "_summary", "_elements", "_include", "_revinclude", "_total", "_lastUpdated",
    "_format", "_pretty", "_getpages", "_getpagesoffset", "_offset", "_page", "_since", "_at", "_type",
    "_security", "_profile", "_tag", "_list",
    "patient", "subject", "encounter", "performer", "requester", "practitioner", "participant", "actor",
    "location", "organization", "based-on", "part-of", "context", "schedule", "slot", "author", "recipient",
    "sender", "medication", "focus", "basedon",
    "category", "code", "combo-code", "status", "clinical-status", "verification-status", "intent",
    "priority", "type", "class", "service-type", "service-category", "specialty", "appointment-type",
    "criticality", "vaccine-code", "result", "lifecycle",
    "date", "authored", "authoredon", "onset-date", "period", "start", "end", "issued", "recorded",
    "effective", "occurrence", "sent", "received",
})
UNSAFE_MODIFIERS = frozenset({"text", "contains", "exact", "above", "below", "in", "not-in", "of-type",
                              "identifier", "missing-text"})


@dataclass(frozen=True)
class EventContext:
    """Deployment facts every event carries; the defaults match the PORTAL_* setting defaults."""

    base_url: str = "http://127.0.0.1:8000"  # PORTAL_PUBLIC_URL: namespace of our local code systems
    site: str = "patient-portal"  # source.site
    observer: str = "smart-portal-gateway"  # source.observer display
    tag_system: str | None = None  # optional meta.tag (e.g. to find one deployment's or test run's events)
    tag_code: str | None = None

    @property
    def auth_code_system(self) -> str:
        return self.base_url.rstrip("/") + "/CodeSystem/portal-auth-event"

    @property
    def on_behalf_of_extension(self) -> str:
        return self.base_url.rstrip("/") + "/StructureDefinition/auditevent-on-behalf-of"

    @property
    def client_id_system(self) -> str:
        return self.base_url.rstrip("/") + "/oauth-client"

    @property
    def reference_system(self) -> str:
        return self.base_url.rstrip("/") + "/fhir-reference"

    @property
    def account_id_system(self) -> str:
        return self.base_url.rstrip("/") + "/account"


DEFAULT_CONTEXT = EventContext()


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _instant(recorded: datetime | None) -> str:
    when = recorded or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.isoformat(timespec="milliseconds")


def new_event_id() -> str:
    """A random (version 4) UUID in its usual text form; once per request, so built from the bytes directly
    rather than through `uuid.UUID`."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _is_safe_param(name: str) -> bool:
    base, _, modifier = name.partition(":")
    return (
        base in SAFE_QUERY_PARAMS
        and "." not in base
        and modifier not in UNSAFE_MODIFIERS
        and not name.startswith("_has")
    )


# A query made only of characters that decoding and re-encoding leave as they are (no %, +, spaces or
# other reserved characters): the fast path below gives exactly what the general one would.
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9_.~:/|,&=-]*")


def safe_query(query: str | None) -> str | None:
    """The search query with every value outside SAFE_QUERY_PARAMS replaced by REDACTED (names kept)."""
    if not query:
        return None
    query = query.lstrip("?")
    if _PLAIN_QUERY.fullmatch(query):
        # Once per audited search: the usual query needs no decoding, so it is split rather than parsed.
        kept_parts: list[str] = []
        for part in query.split("&"):
            if not part:
                continue
            name, _, value = part.partition("=")
            if "=" in value:  # re-encoding would quote it: leave it to the general path
                return _safe_query_decoded(query)
            kept_parts.append(f"{name}={value if _is_safe_param(name) else REDACTED}")
        return "&".join(kept_parts) or None
    return _safe_query_decoded(query)


def _safe_query_decoded(query: str) -> str | None:
    kept = [(name, value if _is_safe_param(name) else REDACTED)
            for name, value in parse_qsl(query, keep_blank_values=True)]
    return urlencode(kept, safe=":/|,") or None


def _ref(value: str | None, default_type: str) -> str | None:
    if not value:
        return None
    return value if "/" in value else f"{default_type}/{value}"


# Entities are built once per audited request, several per event: literal dicts (fresh each time, as the
# event is the caller's to change) rather than through _coding.
def _patient_entity(ref: str) -> dict[str, Any]:
    return {
        "what": {"reference": ref},
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    }


def _resource_entity(ref: str, ctx: EventContext, *, logical: bool = False) -> dict[str, Any]:
    return {
        "what": _logical_reference(ref, ctx) if logical else {"reference": ref},
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
    }


def _logical_reference(ref: str, ctx: EventContext) -> dict[str, Any]:
    """A reference the EHR will not try to resolve: HAPI (and other servers) create placeholder resources
    for unknown literal references, so a failed read of `Observation/nope` must not name it literally."""
    return {"type": ref.split("/", 1)[0], "identifier": {"system": ctx.reference_system, "value": ref}}


def _request_entity(request_id: str | None, detail: str | None = None) -> dict[str, Any] | None:
    if not request_id and not detail:
        return None
    entity: dict[str, Any] = {}
    if request_id:
        entity["what"] = {"identifier": {"value": request_id}}
        entity["type"] = _coding(BALP_ENTITY_TYPE, "XrequestId", "X-Request-Id")
    else:
        entity["type"] = _coding(ENTITY_TYPE, "2", "System Object")
    if detail:
        entity["detail"] = [{"type": "detail", "valueString": detail}]
    return entity


def _user_agent(
    ctx: EventContext,
    *,
    account_ref: str | None,
    account_id: str | None,
    on_behalf_of: str | None,
    source_ip: str | None,
    system_user: bool,
) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [_coding(SECURITY_ROLE, "dataprocessor" if system_user else "humanuser",
                                    "data processor" if system_user else "human user")]},
        "requestor": True,
    }
    if account_ref and account_ref.startswith("Device/"):
        # Backend services have no Device resource in the EHR; a literal reference would create a placeholder.
        agent["who"] = {"type": "Device", "identifier": {"system": ctx.client_id_system,
                                                         "value": account_ref.split("/", 1)[1]}}
    elif account_ref:
        agent["who"] = {"reference": account_ref}
    elif account_id:
        agent["who"] = {"identifier": {"system": ctx.account_id_system, "value": account_id}}
    else:
        agent["who"] = {"display": "unauthenticated"}
    if account_id:
        agent["altId"] = account_id
    if source_ip:
        agent["network"] = {"address": source_ip, "type": NETWORK_IP}
    if on_behalf_of:
        agent["extension"] = [{"url": ctx.on_behalf_of_extension, "valueReference": {"reference": on_behalf_of}}]
    return agent


def _client_agent(ctx: EventContext, client_id: str) -> dict[str, Any]:
    return {
        "type": {"coding": [_coding(DCM, "110150", "Application")]},
        "who": {"identifier": {"system": ctx.client_id_system, "value": client_id}},
        "requestor": False,
    }


def _on_behalf_agent(ref: str) -> dict[str, Any]:
    return {
        "type": {"coding": [_coding(SECURITY_ROLE, "datasubject", "data subject")]},
        "who": {"reference": ref},
        "requestor": False,
    }


def _agents(
    ctx: EventContext,
    *,
    account_ref: str | None,
    account_id: str | None,
    client_id: str | None,
    on_behalf_of: str | None,
    source_ip: str | None,
) -> list[dict[str, Any]]:
    system_user = bool(account_ref and account_ref.startswith("Device/"))
    agents = [_user_agent(ctx, account_ref=account_ref, account_id=account_id, on_behalf_of=on_behalf_of,
                          source_ip=source_ip, system_user=system_user)]
    if client_id:
        agents.append(_client_agent(ctx, client_id))
    if on_behalf_of:
        agents.append(_on_behalf_agent(on_behalf_of))
    return agents


def _envelope(ctx: EventContext, recorded: datetime | None) -> dict[str, Any]:
    event: dict[str, Any] = {"resourceType": "AuditEvent", "id": new_event_id()}
    if ctx.tag_system and ctx.tag_code:
        event["meta"] = {"tag": [_coding(ctx.tag_system, ctx.tag_code)]}
    event["recorded"] = _instant(recorded)
    return event


def _source(ctx: EventContext) -> dict[str, Any]:
    return {
        "site": ctx.site,
        "observer": {"display": ctx.observer},
        "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
    }


def rest_event(
    *,
    interaction: str,
    outcome: str,
    action: str,
    entity_refs: Sequence[str],
    patient_refs: Sequence[str],
    account_ref: str | None,
    account_id: str | None,
    client_id: str | None,
    on_behalf_of: str | None,
    source_ip: str | None,
    request_id: str | None,
    query: str | None,
    recorded: datetime | None = None,
    resource_type: str | None = None,
    context: EventContext = DEFAULT_CONTEXT,
    purpose_of_use: str | None = None,
    purpose_reason: str | None = None,
) -> dict[str, Any]:
    """One AuditEvent for one FHIR REST interaction (see the module docstring for the layout).
    ``purpose_of_use`` (v3-ActReason, e.g. BTG) goes on the user agent and the event; its reason, in the
    person's words, on the request entity's detail."""
    if interaction not in INTERACTIONS:
        raise ValueError(f"unknown FHIR interaction {interaction!r}")
    if outcome not in OUTCOMES:
        raise ValueError(f"AuditEvent outcome must be one of {sorted(OUTCOMES)}, not {outcome!r}")
    if action not in ACTIONS:
        raise ValueError(f"AuditEvent action must be one of {sorted(ACTIONS)}, not {action!r}")
    on_behalf_of = _ref(on_behalf_of, "Patient")
    event = _envelope(context, recorded)
    event["type"] = _coding(AUDIT_EVENT_TYPE, "rest", "RESTful Operation")
    event["subtype"] = [_coding(RESTFUL_INTERACTION, interaction)]
    event["action"] = action
    event["outcome"] = outcome
    event["agent"] = _agents(context, account_ref=account_ref, account_id=account_id, client_id=client_id,
                             on_behalf_of=on_behalf_of, source_ip=source_ip)
    event["source"] = _source(context)
    if purpose_of_use:
        purpose = {"coding": [_coding(ACT_REASON, purpose_of_use, PURPOSES.get(purpose_of_use))]}
        event["agent"][0]["purposeOfUse"] = [purpose]
        event["purposeOfEvent"] = [purpose]

    entities = _record_entities(patient_refs, entity_refs, outcome, context)
    if query_entity := _query_entity(interaction, query, resource_type or _type_of(entity_refs)):
        entities.append(query_entity)
    reason = _detail(f"{purpose_of_use}: {purpose_reason}") if purpose_of_use and purpose_reason else None
    if request := _request_entity(request_id, reason):
        entities.append(request)
    if entities:
        event["entity"] = entities
    return event


def _record_entities(patient_refs: Sequence[str], entity_refs: Sequence[str], outcome: str,
                     context: EventContext) -> list[dict[str, Any]]:
    """The patients whose data it was, then the resources the interaction touched, each named once."""
    entities: list[dict[str, Any]] = []
    seen: set[str] = set()
    for ref in patient_refs:
        ref = _ref(ref, "Patient") or ""
        if ref and ref not in seen:
            seen.add(ref)
            entities.append(_patient_entity(ref))
    for ref in entity_refs:
        if not ref or ref in seen:
            continue
        seen.add(ref)
        if outcome != "0":
            # The request failed: the resource may not exist, so name it without a literal reference.
            entities.append(_resource_entity(ref, context, logical=True))
        elif "/" not in ref:
            # A bare type (a search that matched nothing) names what was searched, which the query entity
            # says; as a literal reference the EHR would refuse the whole event.
            continue
        elif ref.startswith("Patient/"):
            entities.append(_patient_entity(ref))
        else:
            entities.append(_resource_entity(ref, context))
    return entities


def _type_of(entity_refs: Sequence[str]) -> str | None:
    return entity_refs[0].split("/", 1)[0] if entity_refs else None


@functools.lru_cache(maxsize=1024)
def _encoded_query(query: str | None) -> str | None:
    # A portal asks the same few searches again and again: each query is redacted and encoded once.
    kept_query = safe_query(query)
    return base64.b64encode(kept_query.encode()).decode("ascii") if kept_query else None


def _query_entity(interaction: str, query: str | None, searched: str | None) -> dict[str, Any] | None:
    """A search's query entity: the type searched and the query (personal values left out), if any."""
    encoded = _encoded_query(query)
    if not (encoded or interaction.startswith("search")):
        return None
    entity: dict[str, Any] = {"role": _coding(OBJECT_ROLE, "24", "Query")}
    if searched:
        entity["type"] = _coding(RESOURCE_TYPES, searched)
    if encoded:
        entity["query"] = encoded
    return entity


@dataclass(frozen=True)
class AuthEventCode:
    type_code: str  # DCM event type
    dcm_subtype: str | None  # DCM subtype (Login, Logout, security attributes changed, ...)
    local: str  # code in <public_url>/CodeSystem/portal-auth-event
    display: str
    action: str = "E"


_LOGIN = ("110114", "110122")
_LOGOUT = ("110114", "110123")
_ATTRS = ("110113", "110137")  # Security Alert / User Security Attributes Changed
_ROLES = ("110113", "110136")  # Security Alert / Security Roles Changed
_ALERT = ("110113", None)

# The local code system `portal-auth-event`: one code per security event kind smart_auth reports.
# Kinds are normalised (lower case, "_" and "." become "-") before the lookup.
AUTH_EVENTS: dict[str, AuthEventCode] = {
    code.local: code
    for code in (
        AuthEventCode(*_LOGIN, "login", "Sign-in"),
        AuthEventCode(*_LOGOUT, "logout", "Sign-out"),
        AuthEventCode(*_ATTRS, "lockout", "Account locked after failed attempts"),
        AuthEventCode(*_ATTRS, "unlock", "Account unlocked"),
        AuthEventCode(*_ATTRS, "password-reset", "Password reset", "U"),
        AuthEventCode(*_ATTRS, "password-change", "Password changed", "U"),
        AuthEventCode(*_ATTRS, "mfa-setup", "Second factor enrolled", "U"),
        AuthEventCode(*_ATTRS, "mfa-reset", "Second factor reset by the care team", "U"),
        AuthEventCode(*_ATTRS, "recovery-codes", "Recovery codes replaced", "U"),
        AuthEventCode(*_ATTRS, "enrolment", "Portal account enrolment", "C"),
        AuthEventCode(*_ATTRS, "enrolment-identity", "Enrolment identity check"),
        AuthEventCode(*_ATTRS, "enrolment-locked", "Enrolment locked after failed identity checks"),
        AuthEventCode(*_ATTRS, "invitation", "Enrolment invitation issued", "C"),
        AuthEventCode(*_ROLES, "proxy-grant", "Caregiver (proxy) access granted", "C"),
        AuthEventCode(*_ROLES, "proxy-accept", "Caregiver (proxy) access accepted", "U"),
        AuthEventCode(*_ROLES, "proxy-withdraw", "Caregiver (proxy) access withdrawn", "D"),
        AuthEventCode(*_ROLES, "consent", "App authorization consent"),
        AuthEventCode(*_ROLES, "consent-withdraw", "App authorization withdrawn", "D"),
        AuthEventCode(*_LOGIN, "authorize", "Authorization request"),
        AuthEventCode(*_LOGIN, "authorize-code", "Authorization code issued", "C"),
        AuthEventCode(*_LOGIN, "token-issue", "Access token issued", "C"),
        AuthEventCode(*_LOGIN, "token-refresh", "Access token refreshed", "C"),
        AuthEventCode(*_ALERT, "token-code-reuse", "Authorization code reused; grant revoked"),
        AuthEventCode(*_ALERT, "token-refresh-reuse", "Rotated refresh token reused; grant revoked"),
        AuthEventCode(*_LOGOUT, "token-revoke", "Token revoked", "D"),
        AuthEventCode(*_LOGIN, "token-introspect", "Token introspected"),
        AuthEventCode(*_ATTRS, "client-register", "Client registration", "C"),
        AuthEventCode(*_LOGIN, "launch-create", "EHR launch context created", "C"),
    )
}
# Kinds not in the table are still recorded (never dropped): Security Alert + the normalised kind as code.

_KIND_CHARS = re.compile(r"[^a-z0-9-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_DETAIL = 300


def normalise_kind(kind: str) -> str:
    return _KIND_CHARS.sub("-", kind.strip().lower().replace("_", "-").replace(".", "-")).strip("-") or "other"


def _detail(detail: str | None) -> str | None:
    # Callers pass ids, methods and error codes only; still strip control characters and bound the length.
    if not detail:
        return None
    text = _CONTROL.sub(" ", detail).strip()
    return text[:MAX_DETAIL] or None


def auth_event(
    kind: str,
    outcome: str,
    *,
    account_id: str | None = None,
    fhir_user: str | None = None,
    client_id: str | None = None,
    patient_id: str | None = None,
    on_behalf_of: str | None = None,
    source_ip: str | None = None,
    request_id: str | None = None,
    detail: str | None = None,
    recorded: datetime | None = None,
    context: EventContext = DEFAULT_CONTEXT,
) -> dict[str, Any]:
    """One AuditEvent for a security event (sign-in, lockout, token issue, consent, proxy grant, ...)."""
    if outcome not in ("success", "failure"):
        raise ValueError(f"auth event outcome must be 'success' or 'failure', not {outcome!r}")
    local = normalise_kind(kind)
    code = AUTH_EVENTS.get(local) or AuthEventCode(*_ALERT, local, kind.strip()[:64] or "other")
    on_behalf_of = _ref(on_behalf_of, "Patient")
    event = _envelope(context, recorded)
    type_display = {"110114": "User Authentication", "110113": "Security Alert"}[code.type_code]
    event["type"] = _coding(DCM, code.type_code, type_display)
    subtypes = []
    if code.dcm_subtype:
        subtypes.append(_coding(DCM, code.dcm_subtype, _DCM_SUBTYPE_DISPLAY[code.dcm_subtype]))
    subtypes.append(_coding(context.auth_code_system, code.local, code.display))
    event["subtype"] = subtypes
    event["action"] = code.action
    # A failed security event is a minor failure (4); it is the user's attempt that failed, not the system.
    event["outcome"] = "0" if outcome == "success" else "4"
    event["agent"] = _agents(context, account_ref=fhir_user, account_id=account_id, client_id=client_id,
                             on_behalf_of=on_behalf_of, source_ip=source_ip)
    event["source"] = _source(context)
    entities: list[dict[str, Any]] = []
    for ref in dict.fromkeys(r for r in (_ref(patient_id, "Patient"), on_behalf_of) if r):
        entities.append(_patient_entity(ref))
    if request := _request_entity(request_id, _detail(detail)):
        entities.append(request)
    if entities:
        event["entity"] = entities
    return event


_DCM_SUBTYPE_DISPLAY = {
    "110122": "Login",
    "110123": "Logout",
    "110136": "Security Roles Changed",
    "110137": "User Security Attributes Changed",
}


def with_logical_references(event: dict[str, Any], context: EventContext) -> dict[str, Any]:
    """A copy of ``event`` whose literal references (``{"reference": "Patient/x"}``) are logical ones
    (``type`` + ``identifier``), for an EHR that refuses the event because a referenced resource is gone
    (deleted or merged): the record still says exactly whom and what it concerns."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            ref = value.get("reference")
            out = {k: convert(v) for k, v in value.items() if not (k == "reference" and isinstance(ref, str))}
            if isinstance(ref, str) and "/" in ref:
                out.update(_logical_reference("/".join(ref.split("/")[-2:]), context))
            return out
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return convert(event)
