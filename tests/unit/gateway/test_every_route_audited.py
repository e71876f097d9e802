"""Every route of the FHIR router, walked from the router itself (a new route without an example here
fails the test): with a failing EHR and with refused callers, each request leaves exactly ONE audit record
whose outcome matches how it ended.

The rule: every /fhir request except the capability read (`/fhir/metadata`, no patient data) is recorded
once. A request refused before any caller is known (no token, a token that does not verify) is recorded
with no caller; a revoked token's request names whom the token was issued to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx
from fastapi.routing import APIRoute
from joserfc import jwt

from fhir_gateway.caller import TokenVerifier
from fhir_gateway.links import LinkRewriter
from fhir_gateway.pipeline import AccessRecord
from smart_auth.keys import derive_secret

from .conftest import AUD, EHR, PUBLIC, Harness, all_routes

PT = "pt-0001"
FULL = "launch/patient openid fhirUser patient/*.cruds"
ONLY_SLOTS = "launch/patient patient/Slot.rs"  # a real token, but for nothing these routes serve to it


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    form: dict[str, str] | None = None
    reaches_ehr: bool = True


def message() -> dict:
    return {"resourceType": "Communication", "status": "completed",
            "recipient": [{"reference": "Practitioner/prac-01"}], "payload": [{"contentString": "Hello"}]}


# One example request per (method, route path) of the FHIR router.
EXAMPLES: dict[tuple[str, str], Call] = {
    ("GET", "/fhir"): Call("GET", "/fhir"),  # a page link; its signed parameters are added per caller
    ("POST", "/fhir"): Call("POST", "/fhir", json={"resourceType": "Bundle", "type": "batch"}, reaches_ehr=False),
    ("GET", "/fhir/{rtype}"): Call("GET", "/fhir/Observation", {"code": "4548-4"}),
    ("POST", "/fhir/{rtype}/_search"): Call("POST", "/fhir/Observation/_search", form={"code": "4548-4"}),
    ("GET", "/fhir/Patient/{patient_id}/$everything"): Call("GET", f"/fhir/Patient/{PT}/$everything"),
    ("GET", "/fhir/Patient/{patient_id}/$summary"): Call("GET", f"/fhir/Patient/{PT}/$summary"),
    ("GET", "/fhir/{rtype}/{resource_id}"): Call("GET", "/fhir/Observation/o1"),
    ("GET", "/fhir/{rtype}/{resource_id}/_history"): Call("GET", "/fhir/Observation/o1/_history"),
    ("GET", "/fhir/{rtype}/{resource_id}/_history/{version_id}"): Call("GET", "/fhir/Observation/o1/_history/2"),
    ("POST", "/fhir/{rtype}"): Call("POST", "/fhir/Communication", json=message()),
    ("PUT", "/fhir/{rtype}/{resource_id}"): Call("PUT", f"/fhir/Patient/{PT}",
                                                 json={"resourceType": "Patient", "id": PT}),
    **{(m, "/fhir/{path:path}"): Call(m, "/fhir/Observation/o1/$validate/x", reaches_ehr=False)
       for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")},
    **{(m, "/fhir"): Call(m, "/fhir", reaches_ehr=False) for m in ("PUT", "PATCH", "DELETE", "OPTIONS")},
    **{(m, "/fhir/metadata"): Call(m, "/fhir/metadata", reaches_ehr=False)
       for m in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS")},
}
NOT_AUDITED = {("GET", "/fhir/metadata")}


def fhir_routes(h: Harness) -> Iterator[tuple[str, str]]:
    """(method, path) of every route of the FHIR router, as the app built by create_app holds them."""
    for route in all_routes(h.app.routes):
        if isinstance(route, APIRoute) and "fhir" in (route.tags or []):
            for method in sorted(route.methods - {"HEAD"}):
                yield method, route.path


@pytest.fixture(scope="module")
def walker(shared_harness: Harness) -> Harness:
    return shared_harness


def page_params(h: Harness, token: str) -> dict[str, str]:
    """A page link as the gateway issues it to this token's caller."""
    caller = TokenVerifier(h.keys.verification_keys(), None, issuer=PUBLIC, audience=AUD).authenticate(  # type: ignore[arg-type]
        f"Bearer {token}")
    link = LinkRewriter(EHR, AUD, derive_secret(h.keys, "page-links")).page_link(
        f"{EHR}?_getpages=abc&_getpagesoffset=20&_count=20", caller.binding)
    return dict(httpx.URL(link).params.multi_items())


async def send(h: Harness, call: Call, authorization: str | None, page_token: str) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    params = {**call.params, **(page_params(h, page_token) if call.path == "/fhir" and call.method == "GET" else {})}
    async with h.client() as c:
        if call.form is not None:
            return await c.request(call.method, call.path, params=params, data=call.form, headers=headers)
        content = json.dumps(call.json).encode() if call.json is not None else None
        return await c.request(call.method, call.path, params=params, content=content,
                               headers={**headers, "Content-Type": "application/fhir+json"})


async def sent_once(h: Harness, call: Call, authorization: str | None, page_token: str
                    ) -> tuple[httpx.Response, AccessRecord]:
    """The answer to `call`, and the one audit record it left (it must leave exactly one)."""
    before = len(h.audit)
    r = await send(h, call, authorization, page_token)
    records = h.audit[before:]
    assert len(records) == 1, (call.method, call.path, r.status_code, records)
    return r, records[0]


def test_every_route_has_an_example(walker: Harness) -> None:
    routes = set(fhir_routes(walker))
    assert routes - NOT_AUDITED - set(EXAMPLES) == set(), "add an example request for the new route"
    assert set(EXAMPLES) <= routes, "an example names a route that no longer exists"
    assert len(routes) >= 15  # the walk found the router (FastAPI's way of including routers may change)


async def test_metadata_is_not_audited(walker: Harness) -> None:
    before = len(walker.audit)
    async with walker.client() as c:
        assert (await c.get("/fhir/metadata")).status_code == 200
    assert len(walker.audit) == before


@pytest.mark.parametrize("failure", ["ehr-500", "ehr-down"])
async def test_failing_ehr_leaves_one_record_per_route(walker: Harness, failure: str) -> None:
    token = walker.token(FULL, patient=PT)
    with respx.mock(base_url=EHR, assert_all_called=False) as ehr:
        if failure == "ehr-500":
            ehr.route().respond(500, text="java.lang.IllegalStateException")
        else:
            ehr.route().mock(side_effect=httpx.ConnectError("refused"))
        for method, path in fhir_routes(walker):
            if (method, path) in NOT_AUDITED:
                continue
            call = EXAMPLES[(method, path)]
            r, record = await sent_once(walker, call, f"Bearer {token}", token)
            assert r.headers["content-type"].startswith("application/fhir+json"), (method, path)
            assert record.caller is not None and record.caller.patient_id == PT
            if call.reaches_ehr:
                assert r.status_code in (502, 503), (method, path, r.status_code, r.text)
                assert record.outcome == "8", (method, path, record)
            else:
                assert 400 <= r.status_code < 500 and record.outcome == "4", (method, path, record)
            assert "java" not in r.text


def revoked_token(h: Harness) -> str:
    token = h.token(FULL, patient=PT)
    h.revoked.add(jwt.decode(token, h.keys.verification_keys()).claims["jti"])
    return token


@pytest.mark.parametrize("who", ["no token", "bad token", "out of scope", "revoked"])
async def test_refused_caller_leaves_one_record_per_route(walker: Harness, who: str) -> None:
    good = walker.token(FULL, patient=PT)
    authorization = {"no token": None, "bad token": "Bearer not-a-jwt",
                     "out of scope": f"Bearer {walker.token(ONLY_SLOTS, patient=PT)}",
                     "revoked": f"Bearer {revoked_token(walker)}"}[who]
    with respx.mock(base_url=EHR, assert_all_called=False) as ehr:
        catch_all = ehr.route().respond(404, json={"resourceType": "OperationOutcome", "issue": []})
        for method, path in fhir_routes(walker):
            if (method, path) in NOT_AUDITED:
                continue
            # The page link is issued to another token: following it with this one is a refusal too.
            r, record = await sent_once(walker, EXAMPLES[(method, path)], authorization, good)
            assert 400 <= r.status_code < 500 and record.outcome == "4", (who, method, path, r.status_code)
            assert r.json()["resourceType"] == "OperationOutcome"
            if who in ("no token", "bad token"):
                assert r.status_code == 401 and record.caller is None
            else:
                assert record.caller is not None and record.caller.patient_id == PT
            if who == "revoked":
                assert r.status_code == 401 and record.patient_refs == []
        if who != "revoked":  # a revoked token's reads overlap the revocation look-up with the EHR call
            assert not catch_all.called, who
