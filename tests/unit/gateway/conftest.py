"""A gateway assembled from its real parts, with respx standing in for the EHR."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI
from starlette.routing import BaseRoute

from fhir_gateway.access_log_api import AccessLogApi
from fhir_gateway.app import create_app
from fhir_gateway.gateway import Gateway
from fhir_gateway.pipeline import AccessRecord
from fhir_gateway.settings import PortalSettings
from smart_auth.keys import KeyStore

EHR = "http://ehr.test/fhir"
PUBLIC = "http://portal.test"
AUD = PUBLIC + "/fhir"


class Harness:
    def __init__(self, keys: KeyStore, app: FastAPI, audit: list[AccessRecord], revoked: set[str]) -> None:
        self.keys = keys
        self.app = app
        self.audit = audit
        self.revoked = revoked
        self.memos = memos_of(app)

    def reset(self) -> None:
        """Back to how `create_app` left it, for the next test: no audit records, no revoked token and
        empty per-replica memos (the care teams the EHR named, the names the access log looked up)."""
        self.audit.clear()
        self.revoked.clear()
        for memo in self.memos:
            memo.clear()

    def token(self, scope: str, *, patient: str | None = None, fhir_user: str | None = None,
              **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": PUBLIC, "sub": "acct-1", "aud": AUD, "exp": now + 600, "iat": now, "jti": uuid.uuid4().hex,
            "client_id": "app-1", "scope": scope, "grant_id": "g-1",
        }
        if patient:
            claims["patient"] = patient
            claims["fhirUser"] = fhir_user or f"{AUD}/Patient/{patient}"
        elif fhir_user:
            claims["fhirUser"] = fhir_user
        claims.update(overrides)
        return self.keys.sign({k: v for k, v in claims.items() if v is not None})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=PUBLIC)


def memos_of(app: FastAPI) -> list[MutableMapping[str, Any]]:
    """The memos an app keeps between requests, found on what its route handlers hold: the care teams
    the EHR named (the gateway's access checker) and the people's names the access log looked up."""
    found: dict[int, MutableMapping[str, Any]] = {}
    for route in all_routes(app.routes):
        for cell in getattr(getattr(route, "endpoint", None), "__closure__", None) or ():
            held = cell.cell_contents
            if isinstance(held, Gateway) and held.checker.care_teams is not None:
                memo = held.checker.care_teams._memo
            elif isinstance(held, AccessLogApi):
                memo = held._known._items
            else:
                continue
            found[id(memo)] = memo
    assert len(found) == 2, "the app's memos moved: find them again for Harness.reset"
    return list(found.values())


def all_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route of the app, through included routers (FastAPI keeps those as one entry each)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from all_routes(included.routes) if included is not None else [route]


# Whose care team each practitioner is on, as the EHR's CareTeams say (the gateway's care-team rule).
# ("gone": a patient on a care team whose record has since been removed from the EHR.)
CARE_TEAMS = {"Practitioner/prac-01": ("pt-0001", "gone")}


def mock_care_teams(router: respx.MockRouter, teams: dict[str, tuple[str, ...]] | None = None) -> respx.Route:
    """The EHR's answer to the gateway's care-team look-up (`CareTeam?participant=...&_elements=subject`)."""
    teams = CARE_TEAMS if teams is None else teams

    def answer(request: httpx.Request) -> httpx.Response:
        patients = teams.get(request.url.params.get("participant", ""), ())
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "CareTeam", "id": f"ct-{p}", "subject": {"reference": f"Patient/{p}"}}}
            for p in patients]})

    return router.get("/CareTeam", params__contains={"_elements": "subject"}).mock(side_effect=answer)


@pytest.fixture
def ehr() -> respx.MockRouter:
    with respx.mock(base_url=EHR, assert_all_called=False) as router:
        mock_care_teams(router)
        yield router


def build_harness(tmp_path: Path) -> Harness:
    """The app exactly as `create_app` builds it, with respx as the EHR, a list as the audit sink and a
    set as the revocation list. Its Redis is a closed port: idempotency keys and the cache degrade
    quietly, as they do in production when Redis is unreachable. PORTAL_* variables must be cleared."""
    audit: list[AccessRecord] = []
    revoked: set[str] = set()

    async def sink(record: AccessRecord) -> None:
        audit.append(record)

    async def is_revoked(claims: Any) -> bool:
        return claims.get("jti") in revoked

    settings = PortalSettings.load(
        fhir_base_url=EHR, public_url=PUBLIC, redis_url="redis://127.0.0.1:1/0", state_dir=tmp_path,
    ).replace(gateway={"max_body_bytes": 10_000, "upstream_retries": 1, "upstream_read_timeout": 2.0,
                       "upstream_connect_timeout": 1.0, "audit_export": False,
                       # respx stands in for the EHR inside httpx's own transport
                       "upstream_transport": "httpx"},
              cache={"cache_enabled": False})
    app = create_app(settings, access_audit=sink, revocation_check=is_revoked)
    keys = KeyStore.load_or_create(tmp_path / "signing-key.pem")
    return Harness(keys, app, audit, revoked)


def clear_portal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def gateway_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The app, built once per test process: building one (and FastAPI's route set-up on its first
    request) costs more than most tests, and a test changes none of its settings. Tests take it through
    `harness`, which resets what a test leaves behind; a test that needs other settings builds its own."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        clear_portal_env(monkeypatch)
        yield build_harness(tmp_path_factory.mktemp("harness"))


@pytest.fixture
def harness(gateway_app: Harness, ehr: respx.MockRouter, monkeypatch: pytest.MonkeyPatch) -> Harness:
    clear_portal_env(monkeypatch)
    gateway_app.reset()
    return gateway_app


@pytest.fixture(scope="module")
def shared_harness(gateway_app: Harness) -> Harness:
    """The same app, reset once for a module whose fixtures outlive one test; its tests look only at the
    audit records their own requests added."""
    gateway_app.reset()
    return gateway_app


def bundle(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "self", "url": f"{EHR}/Observation"}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle", "type": "searchset", "total": len(resources), "link": links,
        "entry": [{"fullUrl": f"{EHR}/{r['resourceType']}/{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in resources],
    }


def obs(oid: str, patient: str, category: str = "laboratory") -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": oid, "meta": {"versionId": "3", "lastUpdated": "2026-01-02T03:04:05Z"},
        "status": "final", "subject": {"reference": f"Patient/{patient}"},
        "category": [{"coding": [{"code": category}]}], "code": {"text": "x"},
    }
