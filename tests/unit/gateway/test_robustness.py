"""Bad input and EHR failures answer cleanly, are audited once, and tell nothing about other patients'
records (respx is the EHR)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from fhir_gateway.pipeline import AccessRecord

from .conftest import EHR, Harness, bundle, obs

PT, OTHER = "pt-0001", "pt-0002"
SCOPES = "launch/patient openid fhirUser patient/*.cruds"
STAFF = "openid fhirUser user/*.cruds"
OUTCOME = {"resourceType": "OperationOutcome", "issue": []}


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


async def call(h: Harness, method: str, path: str, *, token: str | None = None, body: object = None,
               raw: bytes | None = None, **kw) -> tuple[httpx.Response, list[AccessRecord]]:
    """One request and the audit records it left."""
    headers = {"Authorization": f"Bearer {token or h.token(SCOPES, patient=PT)}",
               "Content-Type": "application/fhir+json", **kw.pop("headers", {})}
    content = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    before = len(h.audit)
    async with h.client() as c:
        r = await c.request(method, path, content=content, headers=headers, **kw)
    return r, h.audit[before:]


def outcome_of(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]
    return body


def message(**extra) -> dict:
    return {"resourceType": "Communication", "status": "completed",
            "recipient": [{"reference": "Practitioner/prac-01"}],
            "payload": [{"contentString": "Is this normal?"}], **extra}


def patient(pid: str = PT) -> dict:
    return {"resourceType": "Patient", "id": pid, "meta": {"versionId": "4"},
            "generalPractitioner": [{"reference": "Practitioner/prac-01"}]}


# -- #12.2: $everything and _history EHR failures are audited -------------------------------------
@pytest.mark.parametrize("path", [f"/fhir/Patient/{PT}/$everything", f"/fhir/Patient/{PT}/_history",
                                  f"/fhir/Patient/{PT}/$summary"])
@pytest.mark.parametrize("failure", [500, "down"])
async def test_ehr_failure_of_whole_record_reads_is_audited(h: Harness, ehr: respx.MockRouter, path: str,
                                                            failure: object) -> None:
    if failure == "down":
        ehr.route().mock(side_effect=httpx.ConnectError("refused"))
    else:
        ehr.route().respond(500, text="boom")
    r, records = await call(h, "GET", path)
    outcome_of(r, 503 if failure == "down" else 502)
    assert [(a.outcome, a.entity_refs) for a in records] == [("8", [f"Patient/{PT}"])]


# -- #12.3: deeply nested JSON -------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path"), [("POST", "/fhir/Communication"), ("PUT", f"/fhir/Patient/{PT}")])
@pytest.mark.parametrize("depth", [100_000, 65])
async def test_deeply_nested_json_is_a_400(h: Harness, ehr: respx.MockRouter, method: str, path: str,
                                           depth: int) -> None:
    catch_all = ehr.route().respond(json={})
    # 9,000 bytes of nesting fit the test's 10 kB body limit; the 100,000-deep one is refused for size
    raw = b"[" * min(depth, 4_500) + b"]" * min(depth, 4_500)
    r, records = await call(h, method, path, raw=raw)
    body = outcome_of(r, 400)
    assert "nested" in body["issue"][0]["diagnostics"]
    assert [a.outcome for a in records] == ["4"] and not catch_all.called


async def test_nesting_within_the_limit_is_read_normally(h: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    ehr.get("/CareTeam").respond(json={"resourceType": "Bundle", "type": "searchset"})
    post = ehr.post("/Communication").respond(201, json={**message(), "id": "c1"})
    nested: dict = {"url": "http://example.org/x", "valueString": "x"}
    for _ in range(20):  # 42 levels deep
        nested = {"url": "http://example.org/x", "extension": [nested]}
    r, _ = await call(h, "POST", "/fhir/Communication", body=message(extension=[nested]))
    assert r.status_code == 201, r.text
    assert json.loads(post.calls.last.request.content)["payload"] == message()["payload"]


# -- #12.4: wrongly shaped replies ---------------------------------------------------------------
@pytest.mark.parametrize("shape", [{"inResponseTo": "Communication/c1"}, {"inResponseTo": None},
                                   {"inResponseTo": {"reference": "Communication/c1"}}, {"inResponseTo": [5]},
                                   {"partOf": [{"reference": 5}]}, {"recipient": None}, {"payload": [None]}])
async def test_wrongly_shaped_message_is_a_422_before_any_rule_runs(h: Harness, ehr: respx.MockRouter,
                                                                    shape: dict) -> None:
    catch_all = ehr.route().respond(json=patient())
    r, records = await call(h, "POST", "/fhir/Communication", body=message(**shape))
    outcome_of(r, 422)
    assert [a.outcome for a in records] == ["4"] and not catch_all.called


# -- #12.5: ids at the edge ----------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/fhir/Patient/%00"), ("GET", "/fhir/Observation/a%1Fb"), ("GET", "/fhir/Observation/a%0Ab/_history"),
    ("GET", "/fhir/Observation/o1/_history/%00"), ("GET", "/fhir/Observation/%2E%2E"),
    ("GET", f"/fhir/Patient/{'x' * 65}"), ("GET", "/fhir/Patient/a%20b/$everything"),
    ("GET", "/fhir/Patient/a%00/$summary"), ("PUT", "/fhir/Patient/a%0Ab"),
])
async def test_ids_outside_the_fhir_grammar_are_a_400(h: Harness, ehr: respx.MockRouter, method: str,
                                                      path: str) -> None:
    catch_all = ehr.route().respond(json={})
    r, records = await call(h, method, path, body={"resourceType": "Patient"} if method == "PUT" else None)
    outcome_of(r, 400)
    assert not catch_all.called
    (record,) = records
    # the bad id never reaches the audit trail either: only the type that was asked for
    assert record.outcome == "4" and all("\x00" not in ref and "\n" not in ref for ref in record.entity_refs)


# -- #12.6: search size ------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["code=" + ",".join(str(n) for n in range(200)),
                                   "&".join(f"code={n}" for n in range(30)),
                                   "&".join(f"_tag=t{n}" for n in range(60))])
async def test_oversized_searches_are_refused_up_front(h: Harness, ehr: respx.MockRouter, query: str) -> None:
    catch_all = ehr.route().respond(json=bundle())
    get, get_records = await call(h, "GET", f"/fhir/Observation?{query}")
    post, post_records = await call(h, "POST", "/fhir/Observation/_search", raw=query.encode(),
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    outcome_of(get, 400)
    outcome_of(post, 400)
    assert [a.outcome for a in get_records + post_records] == ["4", "4"] and not catch_all.called


async def test_huge_search_form_is_a_413(h: Harness, ehr: respx.MockRouter) -> None:
    catch_all = ehr.route().respond(json=bundle())
    r, records = await call(h, "POST", "/fhir/Observation/_search", raw=b"code=" + b"x" * 2_000_000,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    outcome_of(r, 413)
    assert [a.outcome for a in records] == ["4"] and not catch_all.called


async def test_posted_search_is_searched_and_audited_with_its_parameters(h: Harness, ehr: respx.MockRouter) -> None:
    route = ehr.get("/Observation").respond(json=bundle(obs("o1", PT)))
    r, records = await call(h, "POST", "/fhir/Observation/_search", raw=b"code=4548-4",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and route.calls.last.request.url.params["code"] == "4548-4"
    assert records[0].query == "code=4548-4" and records[0].entity_refs == ["Observation/o1"]


# -- #12.9: the EHR's 4xx is the caller's error --------------------------------------------------
HAPI_400 = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing",
            "diagnostics": "HAPI-1234: Invalid date/time format: \"notadate\" at http://ehr.test/fhir/Observation"}]}


@pytest.mark.parametrize("path", ["/fhir/Observation?date=notadate", "/fhir/Observation/o1",
                                  "/fhir/Observation/o1/_history/1", f"/fhir/Patient/{PT}/$everything"])
async def test_ehr_4xx_comes_back_as_that_4xx_cleaned(h: Harness, ehr: respx.MockRouter, path: str) -> None:
    ehr.route().respond(400, json=HAPI_400)
    r, records = await call(h, "GET", path)
    body = outcome_of(r, 400)
    assert "ehr.test" not in r.text and "HAPI-" not in r.text
    assert body["issue"][0]["diagnostics"].startswith("Invalid date/time format")
    assert [a.outcome for a in records] == ["4"]


async def test_staff_write_refused_by_the_ehr_keeps_its_status(h: Harness, ehr: respx.MockRouter) -> None:
    ehr.post("/Observation").respond(422, json=HAPI_400)
    staff = h.token(STAFF, fhir_user="Practitioner/prac-01")
    new = {k: v for k, v in obs("n", PT).items() if k not in ("id", "meta")}
    r, records = await call(h, "POST", "/fhir/Observation", token=staff, body=new)
    outcome_of(r, 422)
    assert "ehr.test" not in r.text and [a.outcome for a in records] == ["4"]


async def test_ehr_refusing_the_gateway_itself_is_a_502(h: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Observation").respond(401, json=OUTCOME)
    r, records = await call(h, "GET", "/fhir/Observation")
    outcome_of(r, 502)
    assert "www-authenticate" not in r.headers and [a.outcome for a in records] == ["8"]


# -- #12.10: references a patient sends, and no existence oracle ----------------------------------
FUTURE = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)


def booking(slot_ref: str) -> dict:
    return {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": slot_ref}],
            "participant": [{"actor": {"reference": f"Patient/{PT}"}, "status": "accepted"}]}


async def test_booking_a_path_into_another_record_answers_like_a_made_up_slot(h: Harness,
                                                                              ehr: respx.MockRouter) -> None:
    theirs = ehr.get("/Observation/o9").respond(json=obs("o9", OTHER))
    ehr.get("/Slot/made-up").respond(404, json=OUTCOME)
    tx = ehr.post("").respond(200, json={})
    made_up, _ = await call(h, "POST", "/fhir/Appointment", body=booking("Slot/made-up"))
    answers = [await call(h, "POST", "/fhir/Appointment", body=booking(ref))
               for ref in ("Slot/../Observation/o9", "http://ehr.test/fhir/Slot/s1", "Slot/s1/_history/2",
                           "Observation/o9")]
    outcome_of(made_up, 422)
    for r, records in answers:
        assert (r.status_code, r.json()) == (made_up.status_code, made_up.json())
        assert [a.outcome for a in records] == ["4"]
    assert not theirs.called and not tx.called


@pytest.mark.parametrize(("rtype", "body", "ref_field"), [
    ("MedicationRequest", {"resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
                           "subject": {"reference": f"Patient/{PT}"}, "medicationCodeableConcept": {"text": "x"}},
     "basedOn"),
    ("Communication", message(), "inResponseTo"),
])
async def test_references_into_other_records_answer_like_made_up_ones(h: Harness, ehr: respx.MockRouter,
                                                                      rtype: str, body: dict,
                                                                      ref_field: str) -> None:
    ehr.get(f"/Patient/{PT}").respond(json=patient())
    theirs = ehr.get("/Observation/o9").respond(json=obs("o9", OTHER))
    ehr.get(f"/{rtype if ref_field == 'basedOn' else 'Communication'}/made-up").respond(404, json=OUTCOME)
    target = "MedicationRequest" if ref_field == "basedOn" else "Communication"
    answers = []
    for ref in (f"{target}/made-up", f"{target}/../Observation/o9", "Observation/o9"):
        r, records = await call(h, "POST", f"/fhir/{rtype}", body={**body, ref_field: [{"reference": ref}]})
        answers.append((r.status_code, r.json()))
        assert [a.outcome for a in records] == ["4"]
    assert answers[0][0] == 404 and all(a == answers[0] for a in answers)
    assert not theirs.called


# -- $summary ------------------------------------------------------------------------------------
def ips(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "document",
            "entry": [{"fullUrl": f"{EHR}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources]}


COMPOSITION = {"resourceType": "Composition", "id": "ips-1", "status": "final", "type": {"text": "IPS"},
               "subject": {"reference": f"Patient/{PT}"}, "date": "2026-01-01", "title": "Patient Summary",
               "author": [{"reference": "Organization/org-1"}]}


async def test_summary_of_own_record_is_checked_and_audited(h: Harness, ehr: respx.MockRouter) -> None:
    route = ehr.get(f"/Patient/{PT}/$summary").respond(json=ips(
        COMPOSITION, patient(), obs("o1", PT), obs("o9", OTHER),
        {"resourceType": "MedicationStatement", "id": "ms-1", "status": "active",
         "subject": {"reference": f"Patient/{PT}"}, "medicationCodeableConcept": {"text": "x"}},
        {"resourceType": "Organization", "id": "org-1"}, {"resourceType": "Basic", "id": "b1"}))
    for token in (h.token(SCOPES, patient=PT),
                  h.token(SCOPES, patient=PT, fhir_user="http://portal.test/fhir/RelatedPerson/rp-1")):
        r, records = await call(h, "GET", f"/fhir/Patient/{PT}/$summary", token=token)
        assert r.status_code == 200, r.text
        kept = [e["resource"]["id"] for e in r.json()["entry"]]
        assert kept == ["ips-1", PT, "o1", "ms-1", "org-1"] and OTHER not in r.text
        assert all(e["fullUrl"].startswith("http://portal.test/fhir/") for e in r.json()["entry"])
        assert [(a.interaction, a.outcome, a.entity_refs, a.patient_refs) for a in records] == [
            ("operation", "0", [f"Patient/{PT}"], [f"Patient/{PT}"])]
    assert route.call_count == 2


async def test_summary_of_someone_else_is_404_without_asking_the_ehr(h: Harness, ehr: respx.MockRouter) -> None:
    catch_all = ehr.route().respond(json=ips(COMPOSITION))
    r, records = await call(h, "GET", f"/fhir/Patient/{OTHER}/$summary")
    outcome_of(r, 404)
    assert not catch_all.called and [(a.outcome, a.patient_refs) for a in records] == [("4", [])]


async def test_summary_the_ehr_does_not_offer_is_501_not_supported(h: Harness, ehr: respx.MockRouter) -> None:
    ehr.get(f"/Patient/{PT}/$summary").respond(400, json={"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "not-supported", "diagnostics": "Invalid request: The FHIR endpoint on this "
        "server does not know how to handle GET operation[Patient/pt-0001/$summary] with parameters [[]]"}]})
    r, records = await call(h, "GET", f"/fhir/Patient/{PT}/$summary")
    body = outcome_of(r, 501)
    assert body["issue"][0]["code"] == "not-supported" and "[[]]" not in r.text
    assert [a.outcome for a in records] == ["8"]


async def test_summary_of_an_unknown_patient_is_404(h: Harness, ehr: respx.MockRouter) -> None:
    ehr.get("/Patient/gone/$summary").respond(404, json={"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "processing", "diagnostics": "Resource Patient/gone is not known"}]})
    staff = h.token(STAFF, fhir_user="Practitioner/prac-01")
    outcome_of((await call(h, "GET", "/fhir/Patient/gone/$summary", token=staff))[0], 404)


async def test_capability_statement_lists_the_patient_operations(h: Harness) -> None:
    async with h.client() as c:
        cs = (await c.get("/fhir/metadata")).json()
    types = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert [o["name"] for o in types["Patient"]["operation"]] == ["everything", "summary"]
    assert "Composition" not in types and all("operation" not in r for t, r in types.items() if t != "Patient")


# -- the OpenAPI document ------------------------------------------------------------------------
async def test_openapi_describes_the_fhir_routes(h: Harness) -> None:
    async with h.client() as c:
        doc = (await c.get("/openapi.json")).json()
    paths = doc["paths"]
    read = paths["/fhir/{rtype}/{resource_id}"]["get"]
    params = {p["name"]: p for p in read["parameters"]}
    assert params["resource_id"]["schema"]["pattern"] == r"^[A-Za-z0-9\-.]{1,64}$"
    assert "Observation" in params["rtype"]["schema"]["enum"] and "Claim" not in params["rtype"]["schema"]["enum"]
    search = {p["name"]: p for p in paths["/fhir/{rtype}"]["get"]["parameters"]}["parameters"]
    assert (search["in"], search["style"], search["explode"], search["schema"]["type"]) == ("query", "form", True,
                                                                                             "object")
    create = paths["/fhir/{rtype}"]["post"]["requestBody"]["content"]["application/fhir+json"]["schema"]
    assert create["type"] == "object" and create["required"] == ["resourceType"]
    vread = {p["name"]: p for p in paths["/fhir/{rtype}/{resource_id}/_history/{version_id}"]["get"]["parameters"]}
    assert vread["version_id"]["schema"]["pattern"] == params["resource_id"]["schema"]["pattern"]
    assert "/fhir/Patient/{patient_id}/$summary" in paths
    assert read["security"] == [{"HTTPBearer": []}] and "security" not in paths["/fhir/metadata"]["get"]
    assert "application/fhir+json" in read["responses"]["4XX"]["content"]


# -- found by schemathesis against /openapi.json ---------------------------------------------------
async def test_a_page_link_with_a_non_ascii_signature_is_unknown_not_a_500(h: Harness,
                                                                          ehr: respx.MockRouter) -> None:
    catch_all = ehr.route().respond(json=bundle())
    r, records = await call(h, "GET", "/fhir", params={"_getpages": "ʇǝɯɐ", "_page_sig": "Ê\x85I"})
    outcome_of(r, 404)
    assert [a.outcome for a in records] == ["4"] and not catch_all.called


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/fhir/Observation/o1", "GET, PUT"), ("PATCH", "/fhir/Observation/o1", "GET, PUT"),
    ("OPTIONS", "/fhir", "GET, POST"), ("PUT", "/fhir/Observation", "GET, POST"),
    ("POST", "/fhir/metadata", "GET"), ("OPTIONS", "/fhir/Observation/_search", "POST"),
    ("DELETE", f"/fhir/Patient/{PT}/$everything", "GET"),
])
async def test_a_served_path_with_another_method_is_405_naming_the_served_ones(
    h: Harness, ehr: respx.MockRouter, method: str, path: str, allow: str
) -> None:
    catch_all = ehr.route().respond(json={})
    r, records = await call(h, method, path)
    outcome_of(r, 405)
    assert r.headers["allow"] == allow and len(records) == 1 and not catch_all.called


# -- found by the fuzzing suite (tests/fuzz) ---------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "status"), [
    ("TRACE", "/fhir/Observation/o1", 405), ("TRACE", "/fhir/metadata", 405), ("TRACE", "/fhir", 405),
    ("CONNECT", f"/fhir/Patient/{PT}/$everything", 405), ("BREW", "/fhir/Observation", 405),
    ("TRACE", "/fhir/Nothing/here/at/all", 404),
])
async def test_a_method_no_route_lists_is_refused_and_audited(h: Harness, ehr: respx.MockRouter, method: str,
                                                              path: str, status: int) -> None:
    catch_all = ehr.route().respond(json={})
    r, records = await call(h, method, path)
    outcome_of(r, status)
    assert [(a.outcome, a.caller is not None) for a in records] == [("4", True)] and not catch_all.called


async def test_only_the_types_that_serve_an_interaction_are_offered_for_it(h: Harness) -> None:
    async with h.client() as c:
        paths = (await c.get("/openapi.json")).json()["paths"]

    def offered(path: str, method: str) -> set[str]:
        params = {p["name"]: p for p in paths[path][method]["parameters"]}
        return set(params["rtype"]["schema"]["enum"])

    assert "Immunization" in offered("/fhir/{rtype}", "get")
    assert "Immunization" not in offered("/fhir/{rtype}", "post")
    assert "AllergyIntolerance" in offered("/fhir/{rtype}", "post")  # a patient's own report
    assert "Immunization" not in offered("/fhir/{rtype}/{resource_id}", "put")
    assert "AllergyIntolerance" in offered("/fhir/{rtype}/{resource_id}", "put")  # staff checking a report
    assert "AuditEvent" not in offered("/fhir/{rtype}/{resource_id}/_history", "get")
    assert {"Patient", "Appointment"} <= offered("/fhir/{rtype}/{resource_id}", "put")
