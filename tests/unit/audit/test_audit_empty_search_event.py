"""A search that matched nothing is still one valid AuditEvent the EHR will accept."""

from __future__ import annotations

import json

from fhir.resources.R4B.auditevent import AuditEvent

from audit.access_log import describe
from audit.events import rest_event


def empty_search(outcome: str) -> dict:
    # The gateway names the searched type ("Observation") when a search returned no resources.
    return rest_event(interaction="search-type", outcome=outcome, action="E", entity_refs=["Observation"],
                      patient_refs=["Patient/pt-0001"] if outcome == "0" else [], account_ref="Patient/pt-0001",
                      account_id="acct-1", client_id="portal-web", on_behalf_of=None, source_ip="127.0.0.1",
                      request_id="r-1", query="patient=Patient/pt-0001&category=laboratory")


def test_empty_search_has_no_literal_reference_without_an_id() -> None:
    event = empty_search("0")
    AuditEvent.model_validate(event)
    # HAPI refuses a whole event whose reference lacks an id ("Observation"): it would never be exported.
    references = [e["what"]["reference"] for e in event["entity"] if "reference" in e.get("what", {})]
    assert references == ["Patient/pt-0001"]
    assert '"reference":"Observation"' not in json.dumps(event, separators=(",", ":"))
    query = next(e for e in event["entity"] if e.get("role", {}).get("code") == "24")
    assert query["type"]["code"] == "Observation"
    assert describe(event, {}, patient="pt-0001")["what"] == "looked through your lab results"


def test_refused_search_still_names_the_type_logically() -> None:
    event = empty_search("4")
    AuditEvent.model_validate(event)
    logical = [e["what"] for e in event["entity"] if "identifier" in e.get("what", {})
               and e["what"]["identifier"].get("system", "").endswith("/fhir-reference")]
    assert logical == [{"type": "Observation", "identifier": {"system": "http://127.0.0.1:8000/fhir-reference",
                                                              "value": "Observation"}}]
