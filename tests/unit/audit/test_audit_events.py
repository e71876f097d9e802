"""AuditEvent builders: valid FHIR R4 (fhir.resources R4B), the right codes, and no PHI."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from hypothesis import example, given
from hypothesis import strategies as st

from audit.events import (
    AUTH_EVENTS,
    DCM,
    INTERACTIONS,
    EventContext,
    _safe_query_decoded,
    auth_event,
    rest_event,
    safe_query,
    with_logical_references,
)

CTX = EventContext(base_url="https://portal.example.org", tag_system="https://portal.example.org/tags",
                   tag_code="run-1")
# smart_auth's kinds as of today (grep 'audit(' smart_auth) - every one must produce a valid event.
SMART_AUTH_KINDS = [
    "authorize", "authorize.code", "client.register", "consent", "enrolment", "enrolment.identity",
    "enrolment.locked", "invitation", "launch.create", "lockout", "login", "logout", "mfa.setup",
    "password_reset", "proxy.accept", "proxy.grant", "proxy.withdraw", "token.revoke", "token.code_reuse",
    "token.issue", "token.refresh", "token.refresh_reuse",
]


def rest(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        interaction="read", outcome="0", action="R", entity_refs=["Observation/obs-1"],
        patient_refs=["Patient/pt-0001"], account_ref="Practitioner/prac-01", account_id="acct-7",
        client_id="portal-web", on_behalf_of=None, source_ip="203.0.113.9", request_id="req-123", query=None,
        context=CTX,
    )
    args.update(overrides)
    return rest_event(**args)


def validate(event: dict[str, Any]) -> AuditEvent:
    return AuditEvent.model_validate(event)


def entity_by_role(event: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [e for e in event.get("entity", []) if (e.get("role") or {}).get("code") == role]


def agents(event: dict[str, Any]) -> list[dict[str, Any]]:
    return event["agent"]


@pytest.mark.parametrize("interaction", sorted(INTERACTIONS))
def test_every_interaction_builds_a_valid_auditevent(interaction: str) -> None:
    event = rest(interaction=interaction)
    model = validate(event)
    assert model.type.code == "rest"
    assert model.type.system == "http://terminology.hl7.org/CodeSystem/audit-event-type"
    assert model.subtype[0].system == "http://hl7.org/fhir/restful-interaction"
    assert model.subtype[0].code == interaction


def test_read_event_names_user_client_patient_resource_and_request() -> None:
    event = rest(recorded=datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    validate(event)
    assert event["recorded"].startswith("2024-05-01T12:00:00")
    user, client = agents(event)
    assert user["requestor"] is True
    assert user["who"] == {"reference": "Practitioner/prac-01"}
    assert user["altId"] == "acct-7"
    assert user["network"] == {"address": "203.0.113.9", "type": "2"}
    assert client["requestor"] is False
    assert client["who"]["identifier"]["value"] == "portal-web"
    assert [e["what"]["reference"] for e in entity_by_role(event, "1")] == ["Patient/pt-0001"]
    assert [e["what"]["reference"] for e in entity_by_role(event, "4")] == ["Observation/obs-1"]
    request = [e for e in event["entity"] if (e.get("type") or {}).get("code") == "XrequestId"]
    assert request[0]["what"]["identifier"]["value"] == "req-123"
    assert event["source"]["type"][0]["code"] == "4"
    assert event["meta"]["tag"] == [{"system": "https://portal.example.org/tags", "code": "run-1"}]


def test_search_lists_every_patient_in_the_result_once() -> None:
    event = rest(interaction="search-type", action="E", entity_refs=["Observation/a", "Observation/b"],
                 patient_refs=["Patient/pt-0001", "Patient/pt-0002", "Patient/pt-0001"],
                 query="patient=Patient/pt-0001&category=laboratory")
    validate(event)
    assert [e["what"]["reference"] for e in entity_by_role(event, "1")] == ["Patient/pt-0001", "Patient/pt-0002"]
    (query,) = entity_by_role(event, "24")
    assert base64.b64decode(query["query"]).decode() == "patient=Patient/pt-0001&category=laboratory"
    assert query["type"]["code"] == "Observation"


def test_caregiver_acting_for_a_patient_is_recorded() -> None:
    event = rest(account_ref="RelatedPerson/rp-1", on_behalf_of="Patient/pt-0003", patient_refs=["Patient/pt-0003"])
    validate(event)
    user = agents(event)[0]
    assert user["who"]["reference"] == "RelatedPerson/rp-1"
    assert user["extension"][0]["valueReference"] == {"reference": "Patient/pt-0003"}
    assert user["extension"][0]["url"] == "https://portal.example.org/StructureDefinition/auditevent-on-behalf-of"
    subject = [a for a in agents(event) if a["type"]["coding"][0]["code"] == "datasubject"]
    assert subject == [{"type": subject[0]["type"], "who": {"reference": "Patient/pt-0003"}, "requestor": False}]


def test_backend_service_is_a_device_agent() -> None:
    event = rest(account_ref="Device/bulk-exporter", account_id=None, client_id="bulk-exporter")
    validate(event)
    assert agents(event)[0]["type"]["coding"][0]["code"] == "dataprocessor"


def test_anonymous_failed_request_still_validates() -> None:
    event = rest(account_ref=None, account_id=None, client_id=None, outcome="4", entity_refs=[], patient_refs=[],
                 request_id=None, source_ip=None, interaction="capabilities")
    validate(event)
    assert agents(event)[0]["who"] == {"display": "unauthenticated"}


def test_ids_are_unique_and_never_all_digits() -> None:
    ids = {rest()["id"] for _ in range(2000)}
    assert len(ids) == 2000
    assert not any(i.replace("-", "").isdigit() for i in ids)


@pytest.mark.parametrize(("field", "value"), [("outcome", "2"), ("action", "X"), ("interaction", "frobnicate")])
def test_bad_codes_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        rest(**{field: value})


def test_query_keeps_names_but_not_demographic_or_free_text_values() -> None:
    phi_query = (
        "name=Delgado&given=Maria&birthdate=1961-04-12&identifier=http://hospital.example.org/mrn|MRN-55721"
        "&address-city=Springfield&phone=555-0199&_content=diabetes%20notes&code:text=depression"
        "&subject.name=Delgado&_has:Observation:patient:code=1234&category=vital-signs&_count=10"
    )
    kept = safe_query(phi_query)
    assert kept is not None
    for secret in ("Delgado", "Maria", "1961-04-12", "MRN-55721", "Springfield", "555-0199", "diabetes",
                   "depression", "1234"):
        assert secret not in kept
    for name in ("name=", "birthdate=", "identifier=", "code:text=", "subject.name="):
        assert name in kept
    assert "category=vital-signs" in kept and "_count=10" in kept


_PLAIN_PIECES = ["patient", "name", "code:text", "subject.name", "_has:Observation:patient:code", "category", "_count",
                 "=", "&", "Pt-1", "a|b", "x/y", "~", ",", ":", "10", ""]
_QUERIES = st.one_of(
    st.lists(st.sampled_from(_PLAIN_PIECES), max_size=12).map("".join),
    st.lists(st.sampled_from([*_PLAIN_PIECES, "?", "%20", "%3D", "+", " ", "é", ";"]), max_size=12).map("".join),
)


@example("?patient=Patient/a=b&category=x")
@given(_QUERIES)
def test_the_quick_query_redaction_gives_what_decoding_and_re_encoding_gives(query: str) -> None:
    # The usual query is split instead of parsed; the result must be exactly the general path's.
    assert safe_query(query) == _safe_query_decoded(query.lstrip("?"))


def test_a_plain_query_is_redacted_without_decoding() -> None:
    assert safe_query("?patient=Patient/pt-1&name=Delgado&code:text=x&status&_count=10") == \
        "patient=Patient/pt-1&name=redacted&code:text=redacted&status=&_count=10"


def test_built_events_carry_no_phi_anywhere() -> None:
    secrets = ["Delgado", "1961-04-12", "MRN-55721", "123-45-6789"]
    query = "family=Delgado&birthdate=1961-04-12&identifier=http://hospital.example.org/mrn|MRN-55721" \
            "&identifier=http://hl7.org/fhir/sid/us-ssn|123-45-6789"
    event = rest(interaction="search-type", action="E", entity_refs=["Patient/pt-0001"], query=query)
    validate(event)
    text = json.dumps(event)
    decoded = " ".join(base64.b64decode(e["query"]).decode() for e in entity_by_role(event, "24"))
    for secret in secrets:
        assert secret not in text
        assert secret not in decoded
    # and no demographic or free-text elements at all
    assert not all_keys(event) & {"birthDate", "name", "telecom", "gender", "description", "text"}


def all_keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | set().union(*(all_keys(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(all_keys(v) for v in node)) if node else set()
    return set()


@pytest.mark.parametrize("kind", SMART_AUTH_KINDS)
@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_every_smart_auth_kind_builds_a_valid_auditevent(kind: str, outcome: str) -> None:
    event = auth_event(kind, outcome, account_id="acct-1", fhir_user="Patient/pt-0001", client_id="app-1",
                       patient_id="pt-0001", on_behalf_of=None, source_ip="198.51.100.2", request_id="rq-1",
                       detail="method=totp", context=CTX)
    model = validate(event)
    assert model.type.system == DCM
    assert model.type.code in ("110114", "110113")
    local = [s for s in model.subtype if s.system == "https://portal.example.org/CodeSystem/portal-auth-event"]
    assert local and local[0].code in AUTH_EVENTS, f"{kind} has no local code"
    assert event["outcome"] == ("0" if outcome == "success" else "4")


def test_auth_event_codes() -> None:
    login = auth_event("login", "success", fhir_user="Patient/pt-0001")
    assert login["type"]["code"] == "110114"
    assert [s["code"] for s in login["subtype"]] == ["110122", "login"]
    logout = auth_event("logout", "success", fhir_user="Patient/pt-0001")
    assert [s["code"] for s in logout["subtype"]] == ["110123", "logout"]
    lockout = auth_event("lockout", "failure", account_id="acct-1")
    assert lockout["type"]["code"] == "110113"
    assert lockout["subtype"][0]["code"] == "110137"
    proxy = auth_event("proxy.grant", "success", fhir_user="Patient/pt-0001", on_behalf_of="pt-0001")
    assert proxy["subtype"][0]["code"] == "110136"


def test_unknown_auth_kind_is_still_recorded() -> None:
    event = auth_event("mystery.thing", "success")
    validate(event)
    assert event["type"]["code"] == "110113"
    assert event["subtype"][-1]["code"] == "mystery-thing"


def test_auth_event_names_the_patient_so_their_access_log_finds_it() -> None:
    event = auth_event("proxy.grant", "success", account_id="acct-1", fhir_user="Patient/pt-0004",
                       patient_id="pt-0004", request_id="r-9", detail="invited link=lnk-1")
    assert [e["what"]["reference"] for e in entity_by_role(event, "1")] == ["Patient/pt-0004"]
    request = [e for e in event["entity"] if e.get("detail")]
    assert request[0]["detail"] == [{"type": "detail", "valueString": "invited link=lnk-1"}]


def test_auth_event_detail_is_bounded_and_single_line() -> None:
    event = auth_event("authorize", "failure", detail="invalid_request:\n" + "x" * 1000)
    validate(event)
    (detail,) = [d["valueString"] for e in event["entity"] for d in e.get("detail", [])]
    assert "\n" not in detail and len(detail) <= 300


def test_auth_event_rejects_bad_outcome() -> None:
    with pytest.raises(ValueError):
        auth_event("login", "maybe")


def test_failed_request_names_resources_without_literal_references() -> None:
    # HAPI auto-creates placeholder resources for unknown literal references; a 404 must not create one.
    event = rest(outcome="4", entity_refs=["Observation/does-not-exist"])
    validate(event)
    (entity,) = entity_by_role(event, "4")
    assert "reference" not in entity["what"]
    assert entity["what"]["identifier"] == {"system": "https://portal.example.org/fhir-reference",
                                            "value": "Observation/does-not-exist"}
    assert [e["what"]["reference"] for e in entity_by_role(event, "1")] == ["Patient/pt-0001"]
    device = rest(account_ref="Device/bulk-client")
    assert agents(device)[0]["who"] == {"type": "Device", "identifier": {
        "system": "https://portal.example.org/oauth-client", "value": "bulk-client"}}


def test_logical_references_keep_every_fact_but_no_literal_reference() -> None:
    ctx = EventContext()
    event = rest_event(interaction="read", outcome="0", action="R", entity_refs=["Observation/o1"],
                       patient_refs=["Patient/pt-9"], account_ref="RelatedPerson/rp-1", account_id="acct",
                       client_id="app", on_behalf_of="Patient/pt-9", source_ip="10.0.0.1", request_id="r1",
                       query=None, context=ctx)
    logical = with_logical_references(event, ctx)
    text = json.dumps(logical)
    assert '"reference"' not in text
    for ref in ("Observation/o1", "Patient/pt-9", "RelatedPerson/rp-1"):
        assert {"type": ref.split("/")[0], "identifier": {"system": ctx.reference_system, "value": ref}} \
            in list(_references_or_logical(logical))
    assert logical["id"] == event["id"] and logical["recorded"] == event["recorded"]
    AuditEvent.model_validate(logical)  # still a valid AuditEvent


def _references_or_logical(value: object):
    if isinstance(value, dict):
        if "identifier" in value and "type" in value:
            yield value
        for inner in value.values():
            yield from _references_or_logical(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references_or_logical(inner)
