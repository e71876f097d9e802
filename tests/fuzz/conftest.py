"""The fuzzing suite's app: built by `create_app` exactly as production builds it, with a well-behaved fake EHR
(respx), a list as the /fhir audit sink and a private Redis (so the OAuth endpoints, idempotency keys and
revocation run for real). Requests go through one event loop on a background thread, so hypothesis and
schemathesis tests (synchronous) share the app's Redis and HTTP clients.

How long it runs: by default a short run for CI with a fixed seed (the same examples every run, so a failure
reproduces): 40 examples per property test and 15 per OpenAPI operation. `FUZZ_EXAMPLES=N` sets both counts;
`FUZZ_LONG=1` draws 2,000 per test (or `FUZZ_EXAMPLES`) from a fresh random seed each run and shrinks failures.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import respx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, Phase, settings

if TYPE_CHECKING:  # the app's modules are imported where the app is built: pytest-xdist's controller, which
    # runs no test, loads this file too, and importing the app there would delay every worker's start.
    from fastapi import FastAPI

    from fhir_gateway.pipeline import AccessRecord
    from fhir_gateway.settings import PortalSettings
    from smart_auth.keys import KeyStore

EHR = "http://ehr.test/fhir"
PUBLIC = "http://portal.test"
AUD = PUBLIC + "/fhir"
PT = "pt-0001"
MAX_BODY = 64_000
PATIENT_SCOPES = "launch/patient openid fhirUser offline_access patient/*.cruds"

LONG = os.environ.get("FUZZ_LONG", "") not in ("", "0")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or (2000 if LONG else 40))
OPERATION_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or (2000 if LONG else 15))

# CI: a fixed seed (the same examples every run, so a failure reproduces) and a bounded count. Long: random.
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=not LONG,
    deadline=None,
    database=None,
    print_blob=True,
    phases=(Phase.explicit, Phase.generate, Phase.shrink) if LONG else (Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)


def outcome(code: str, text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


# The patient's record as the fake EHR holds it: one of each type the patient writes touch.
def _record() -> dict[str, dict[str, Any]]:
    me = {"reference": f"Patient/{PT}"}
    resources = [
        {"resourceType": "Patient", "id": PT, "name": [{"family": "Doe", "given": ["Jo"]}], "gender": "female",
         "generalPractitioner": [{"reference": "Practitioner/prac-01"}]},
        {"resourceType": "Practitioner", "id": "prac-01", "name": [{"family": "Lee"}]},
        {"resourceType": "Observation", "id": "o1", "status": "final", "subject": me, "code": {"text": "Hb"},
         "category": [{"coding": [{"code": "laboratory"}]}], "valueQuantity": {"value": 13.2, "unit": "g/dL"}},
        {"resourceType": "Condition", "id": "c1", "subject": me, "code": {"text": "Asthma"}},
        {"resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order", "subject": me,
         "medicationCodeableConcept": {"text": "Salbutamol"}, "requester": {"reference": "Practitioner/prac-01"}},
        {"resourceType": "Schedule", "id": "sch1", "actor": [{"reference": "Practitioner/prac-01"}]},
        {"resourceType": "Slot", "id": "s1", "schedule": {"reference": "Schedule/sch1"}, "status": "free",
         "start": "2099-01-01T09:00:00Z", "end": "2099-01-01T09:30:00Z"},
        {"resourceType": "Appointment", "id": "a1", "status": "booked", "slot": [{"reference": "Slot/s0"}],
         "participant": [{"actor": me, "status": "accepted"},
                         {"actor": {"reference": "Practitioner/prac-01"}, "status": "accepted"}]},
        {"resourceType": "Communication", "id": "m1", "status": "completed", "subject": me,
         "sender": {"reference": "Practitioner/prac-01"}, "recipient": [me], "payload": [{"contentString": "Hi"}]},
    ]
    for r in resources:
        r["meta"] = {"versionId": "1", "lastUpdated": "2026-01-02T03:04:05Z"}
    return {f"{r['resourceType']}/{r['id']}": r for r in resources}


def _bundle(kind: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "total": len(resources),
            "link": [{"relation": "self", "url": EHR}],
            "entry": [{"fullUrl": f"{EHR}/{r['resourceType']}/{r['id']}", "resource": r,
                       **({"search": {"mode": "match"}} if kind == "searchset" else {})} for r in resources]}


@dataclass
class FakeEHR:
    """A FHIR server that always answers sensibly (so any 5xx the gateway gives is the gateway's own): reads
    and searches of the patient's record, creates and updates echoed back, 404 for what it does not hold."""

    record: dict[str, dict[str, Any]] = field(default_factory=_record)
    written: dict[str, dict[str, Any]] = field(default_factory=dict)  # created: read back by replays
    created: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/fhir").strip("/")
        parts = path.split("/") if path else []
        method = request.method
        if parts == ["metadata"]:
            return httpx.Response(200, json={"resourceType": "CapabilityStatement", "status": "active",
                                             "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"]})
        if len(parts) == 3 and parts[2] in ("$everything", "$summary"):
            owner = self.record.get(f"Patient/{parts[1]}")
            if owner is None:
                return httpx.Response(404, json=outcome("not-found", "unknown patient"))
            if parts[2] == "$summary":
                composition = {"resourceType": "Composition", "id": "ips", "status": "final", "type": {"text": "IPS"},
                               "subject": {"reference": f"Patient/{PT}"}, "date": "2026-01-01", "title": "Summary",
                               "author": [{"reference": "Practitioner/prac-01"}]}
                return httpx.Response(200, json=_bundle("document", [composition, *self.record.values()]))
            return httpx.Response(200, json=_bundle("searchset", list(self.record.values())))
        if method in ("GET", "POST") and (len(parts) == 1 or (len(parts) == 2 and parts[1] == "_search")):
            if method == "POST" and len(parts) == 1:
                return self._create(parts[0], request)
            return httpx.Response(200, json=_bundle("searchset", self._of_type(parts[0])))
        if len(parts) >= 2:
            key = f"{parts[0]}/{parts[1]}"
            if method == "PUT" and len(parts) == 2:
                return self._update(key, request)
            found = self.record.get(key) or self.written.get(key)
            if found is None:
                return httpx.Response(404, json=outcome("not-found", f"{key} is not known"))
            if len(parts) == 2 and method == "GET":
                return httpx.Response(200, json=found, headers={"ETag": 'W/"1"'})
            if len(parts) == 3 and parts[2] == "_history":
                return httpx.Response(200, json=_bundle("history", [found]))
            if len(parts) == 4 and parts[2] == "_history":
                if parts[3] != "1":
                    return httpx.Response(404, json=outcome("not-found", "no such version"))
                return httpx.Response(200, json=found)
        return httpx.Response(400, json=outcome("not-supported", f"{method} {path} is not supported"))

    def _of_type(self, rtype: str) -> list[dict[str, Any]]:
        return [r for r in self.record.values() if r["resourceType"] == rtype]

    def _body(self, request: httpx.Request) -> dict[str, Any] | None:
        try:
            body = json.loads(request.content)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _create(self, rtype: str, request: httpx.Request) -> httpx.Response:
        body = self._body(request)
        if body is None:
            return httpx.Response(400, json=outcome("invalid", "not a resource"))
        self.created += 1
        body = {**body, "resourceType": rtype, "id": f"new-{self.created}", "meta": {"versionId": "1"}}
        self.written[f"{rtype}/{body['id']}"] = body
        return httpx.Response(201, json=body, headers={"Location": f"{EHR}/{rtype}/{body['id']}/_history/1",
                                                       "ETag": 'W/"1"'})

    def _update(self, key: str, request: httpx.Request) -> httpx.Response:
        body = self._body(request)
        if body is None:
            return httpx.Response(400, json=outcome("invalid", "not a resource"))
        if key not in self.record:
            return httpx.Response(404, json=outcome("not-found", f"{key} is not known"))
        # Not kept: the record stays the same for every example.
        return httpx.Response(200, json={**body, "meta": {"versionId": "2"}}, headers={"ETag": 'W/"2"'})


@dataclass
class FuzzApp:
    app: FastAPI
    keys: KeyStore
    audit: list[AccessRecord]
    portal: BlockingPortal
    client: httpx.AsyncClient
    ehr: FakeEHR
    ehr_mock: respx.MockRouter
    tally: dict[str, int] = field(default_factory=lambda: {"requests": 0, "5xx": 0})

    def token(self, scope: str = PATIENT_SCOPES, *, patient: str | None = PT) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": PUBLIC, "sub": "acct-1", "aud": AUD, "exp": now + 3600, "iat": now,
                                  "jti": uuid.uuid4().hex, "client_id": "app-1", "scope": scope, "grant_id": "g-1"}
        if patient:
            claims.update(patient=patient, fhirUser=f"{AUD}/Patient/{patient}")
        return self.keys.sign(claims)

    def send(self, request: httpx.Request) -> tuple[httpx.Response, list[AccessRecord]]:
        """One request through the app, and the /fhir audit records it left."""
        before = len(self.audit)
        response = self.portal.call(self._send, request)  # the EHR: respx, while a test runs (ehr_stands_in)
        self.tally["requests"] += 1
        self.tally["5xx"] += response.status_code >= 500
        return response, self.audit[before:]

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.client.send(request)
        await response.aread()
        return response


def fuzz_settings(redis_url: str, state: Path) -> PortalSettings:
    """PORTAL_* variables must be cleared first."""
    from fhir_gateway.settings import PortalSettings

    return PortalSettings.load(fhir_base_url=EHR, public_url=PUBLIC, redis_url=redis_url, state_dir=state).replace(
        gateway={"max_body_bytes": MAX_BODY, "upstream_retries": 0, "upstream_read_timeout": 5.0,
                 "upstream_connect_timeout": 1.0, "audit_export": False,
                 "upstream_transport": "httpx"},  # respx stands in for the EHR inside httpx's own transport
        cache={"cache_enabled": False})


def openapi_document() -> dict[str, Any]:
    """/openapi.json as `create_app` builds it with the suite's settings (at collection time, before any
    fixture runs: schemathesis makes one test per operation from it)."""
    from fhir_gateway.app import create_app

    with tempfile.TemporaryDirectory() as state, pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("PORTAL_"):
                env.delenv(name)
        return create_app(fuzz_settings("redis://127.0.0.1:1/0", Path(state))).openapi()


TALLY = pytest.StashKey[dict[str, int]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if (tally := config.stash.get(TALLY, None)) is not None:
        terminalreporter.write_line(f"fuzz: {tally['requests']} requests sent, {tally['5xx']} answered with a 5xx")


@pytest.fixture(scope="session")
def fuzz_app(redis_server: Any, tmp_path_factory: pytest.TempPathFactory,
             pytestconfig: pytest.Config) -> Iterator[FuzzApp]:
    from fhir_gateway.app import create_app
    from smart_auth.keys import KeyStore

    state = tmp_path_factory.mktemp("fuzz-state")
    audit: list[AccessRecord] = []

    async def sink(record: AccessRecord) -> None:
        audit.append(record)

    ehr = FakeEHR()
    with ExitStack() as stack:
        env = stack.enter_context(pytest.MonkeyPatch.context())
        for name in list(os.environ):
            if name.startswith("PORTAL_"):
                env.delenv(name)
        router = respx.mock(base_url=EHR, assert_all_called=False)
        router.route().mock(side_effect=ehr)
        app = create_app(fuzz_settings(redis_server.url, Path(state)), access_audit=sink)
        portal = stack.enter_context(start_blocking_portal())
        with router:
            stack.enter_context(portal.wrap_async_context_manager(app.router.lifespan_context(app)))
        # raise_app_exceptions=False: an exception that escapes the app is seen as the 500 a client would get.
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                   base_url=PUBLIC, timeout=30)
        stack.callback(portal.call, client.aclose)
        keys = KeyStore.load_or_create(Path(state) / "signing-key.pem")
        fuzz = FuzzApp(app, keys, audit, portal, client, ehr, router)
        pytestconfig.stash[TALLY] = fuzz.tally
        yield fuzz


@pytest.fixture(autouse=True)
def ehr_stands_in(fuzz_app: FuzzApp) -> Iterator[None]:
    """respx stands in for the EHR only while a test of this suite runs (all of its examples), so the suite
    can share a process with tests that mock the EHR their own way. Once per test, not per request:
    entering the mock patches a dozen httpx and httpcore names (0.4 ms, some 2,000 requests a run)."""
    with fuzz_app.ehr_mock:
        yield


FHIR_JSON = re.compile(r"^application/fhir\+json\b")


def is_fhir_error(response: httpx.Response) -> bool:
    body = _json(response)
    return (bool(FHIR_JSON.match(response.headers.get("content-type", "")))
            and isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"
            and bool(body.get("issue")))


def is_oauth_error(response: httpx.Response) -> bool:
    body = _json(response)
    return (response.headers.get("content-type", "").startswith("application/json")
            and isinstance(body, dict) and isinstance(body.get("error"), str) and bool(body["error"]))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
