"""The fast lane (`GET /fhir/<Type>` and `GET /fhir/<Type>/<id>` straight to the gateway) answers and
refuses exactly as the route table does: the same gateway call for every path it takes, and the same
answers, headers and audit records as an app without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from joserfc import jwt

from fhir_gateway.fast_lane import FhirFastLane, lane_of
from fhir_gateway.gateway import Gateway

from .conftest import Harness, build_harness, bundle, clear_portal_env, obs

PT = "pt-0001"
OTHER = "pt-0002"
SCOPES = "launch/patient openid fhirUser patient/*.rs"


def _gateway(h: Harness) -> Gateway:
    return next(m.kwargs["gateway"] for m in h.app.user_middleware if m.cls is FhirFastLane)


def _without_lane(h: Harness) -> Harness:
    h.app.user_middleware = [m for m in h.app.user_middleware if m.cls is not FhirFastLane]
    return h


@pytest.fixture
def pair(tmp_path: Path, ehr: respx.MockRouter, monkeypatch: pytest.MonkeyPatch) -> tuple[Harness, Harness]:
    """Two apps on the same signing key (so one token serves both): with the lane, and without it."""
    clear_portal_env(monkeypatch)
    return build_harness(tmp_path), _without_lane(build_harness(tmp_path))


PATHS = [
    "/fhir/Observation", "/fhir/Observation/o1", "/fhir/Patient/pt-0001", "/fhir/Observation/a.b-1",
    "/fhir/metadata", "/fhir/.well-known/smart-configuration", "/fhir/Patient/pt-0001/$everything",
    "/fhir/Observation/_history", "/fhir/Observation/_search", "/fhir/observation", "/fhir/Observation/",
    "/fhir/Observation/o1/_history", "/fhir/Observation/a b", "/fhir/Observation/" + "x" * 65, "/fhir/$export",
    "/fhir/_history", "/fhir//Observation", "/fhir/Observation/..", "/fhir/Obs3rvation", "/fhir/Observation/$x",
]


@pytest.mark.parametrize("path", PATHS)
async def test_the_lane_takes_a_path_only_to_the_call_its_route_makes(tmp_path: Path, ehr: respx.MockRouter,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      path: str) -> None:
    clear_portal_env(monkeypatch)
    slow = build_harness(tmp_path)
    gateway = _gateway(slow)  # the one the /fhir routes call: they look its methods up at call time
    _without_lane(slow)
    made: list[tuple[str, tuple[Any, ...]]] = []
    for name in ("search", "read"):
        original = getattr(gateway, name)

        async def spy(request: Any, *args: Any, _name: str = name, _original: Any = original) -> Any:
            made.append((_name, args))
            return await _original(request, *args)

        monkeypatch.setattr(gateway, name, spy)
    ehr.route().respond(json=bundle())
    async with slow.client() as c:
        await c.get(path, headers={"Authorization": f"Bearer {slow.token(SCOPES, patient=PT)}"})
    lane = lane_of("GET", path)
    if lane is not None:
        rtype, resource_id = lane
        assert made == [("search", (rtype,)) if resource_id is None else ("read", (rtype, resource_id))]


def test_the_dashboards_requests_take_the_lane() -> None:
    assert lane_of("GET", "/fhir/Observation") == ("Observation", None)
    assert lane_of("GET", "/fhir/Patient/pt-0001") == ("Patient", "pt-0001")
    assert lane_of("POST", "/fhir/Observation") is None
    assert lane_of("HEAD", "/fhir/Patient/pt-0001") is None


async def _both(pair: tuple[Harness, Harness], path: str, token: str | None,
                headers: dict[str, str] | None = None) -> tuple[httpx.Response, httpx.Response]:
    sent = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    answers = []
    for h in pair:
        async with h.client() as c:
            answers.append(await c.get(path, headers=sent))
    return answers[0], answers[1]


def _same(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert fast.content == slow.content
    ignore = {"x-request-id", "date"}
    assert {k: v for k, v in fast.headers.items() if k not in ignore} == \
           {k: v for k, v in slow.headers.items() if k not in ignore}


def _records(h: Harness) -> list[tuple[Any, ...]]:
    return [(a.interaction, a.outcome, a.entity_refs, a.patient_refs, a.caller.subject if a.caller else None)
            for a in h.audit]


async def test_refusals_and_answers_are_the_same_with_and_without_the_lane(pair: tuple[Harness, Harness],
                                                                           ehr: respx.MockRouter) -> None:
    fast, slow = pair
    ehr.get("/Observation/o1").respond(json=obs("o1", PT))
    ehr.get("/Observation/o2").respond(json=obs("o2", OTHER))
    ehr.get("/Observation/gone").respond(404, json={"resourceType": "OperationOutcome", "issue": []})
    ehr.get("/Observation").respond(json=bundle(obs("o1", PT), obs("o9", OTHER)))
    ehr.get(f"/Patient/{OTHER}").respond(json={"resourceType": "Patient", "id": OTHER})
    token = fast.token(SCOPES, patient=PT)
    narrow = fast.token("patient/Observation.rs", patient=PT)
    revoked = fast.token(SCOPES, patient=PT)
    jti = jwt.decode(revoked, fast.keys.verification_keys()).claims["jti"]
    fast.revoked.add(jti)
    slow.revoked.add(jti)
    cases: list[tuple[str, str | None, dict[str, str] | None, int]] = [
        ("/fhir/Observation/o1", token, None, 200),  # own record
        ("/fhir/Observation/o1", token, {"If-None-Match": 'W/"3"'}, 304),
        ("/fhir/Observation/o2", token, None, 404),  # another patient's: as if it did not exist
        ("/fhir/Observation/o2", token, {"If-None-Match": 'W/"3"'}, 404),
        ("/fhir/Observation/gone", token, None, 404),
        ("/fhir/Observation", token, None, 200),  # the other patient's entry filtered out
        ("/fhir/Observation?_include=*", token, None, 403),
        ("/fhir/Observation?subject.name=Smith", token, None, 403),
        ("/fhir/MedicationRequest", narrow, None, 403),  # a type outside the token's scopes
        ("/fhir/MedicationRequest/m1", narrow, None, 403),
        ("/fhir/Observation/o1", None, None, 401),
        ("/fhir/Observation", "not-a-jwt", None, 401),
        ("/fhir/Observation/o1", revoked, None, 401),
        ("/fhir/Observation", revoked, None, 401),
        (f"/fhir/Patient/{OTHER}", token, None, 404),
    ]
    for path, bearer, headers, status in cases:
        answer, routed = await _both(pair, path, bearer, headers)
        assert answer.status_code == status, (path, answer.text)
        _same(answer, routed)
    assert OTHER not in (await _both(pair, "/fhir/Observation", token))[0].text
    assert _records(fast) == _records(slow)
    assert len(fast.audit) == len(cases) + 1  # one record per request, refused or not


async def test_an_unexpected_failure_is_a_clean_500_with_its_audit_record(pair: tuple[Harness, Harness],
                                                                          ehr: respx.MockRouter) -> None:
    ehr.get("/Observation/o1").mock(side_effect=RuntimeError("boom"))
    answer, routed = await _both(pair, "/fhir/Observation/o1", pair[0].token(SCOPES, patient=PT))
    assert answer.status_code == routed.status_code == 500
    assert answer.json() == routed.json() and "boom" not in answer.text
    assert _records(pair[0]) == _records(pair[1]) and pair[0].audit[-1].outcome == "8"
