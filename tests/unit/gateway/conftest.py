"""A gateway assembled from its real parts, with respx standing in for the EHR."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import respx
from fastapi import FastAPI

from fhir_gateway.access import AccessChecker
from fhir_gateway.caller import TokenVerifier
from fhir_gateway.capability import capability_statement
from fhir_gateway.idempotency import IdempotencyStore
from fhir_gateway.links import LinkRewriter
from fhir_gateway.request_context import install_request_context
from fhir_gateway.routes import AccessRecord, Gateway, build_fhir_router
from fhir_gateway.upstream import Upstream, make_client
from fhir_gateway.writes import PatientWrites
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


@pytest.fixture
def ehr() -> respx.MockRouter:
    with respx.mock(base_url=EHR, assert_all_called=False) as router:
        yield router


@pytest.fixture
def harness(tmp_path: Path, ehr: respx.MockRouter) -> Harness:
    keys = KeyStore.load_or_create(tmp_path / "k.pem")
    audit: list[AccessRecord] = []
    revoked: set[str] = set()

    async def sink(record: AccessRecord) -> None:
        audit.append(record)

    async def is_revoked(claims: Any) -> bool:
        return claims.get("jti") in revoked

    upstream = Upstream(make_client(EHR, connect_timeout=1, read_timeout=2, max_connections=10), EHR, retries=1)
    # Idempotency keys need Redis; a closed port shows the store degrading quietly in unit tests.
    dead_redis = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    gateway = Gateway(
        upstream=upstream,
        verifier=TokenVerifier(keys.verification_keys(), is_revoked, issuer=PUBLIC, audience=AUD),
        checker=AccessChecker(strict_search=True),
        links=LinkRewriter(EHR, AUD, b"k" * 32),
        writes=PatientWrites(upstream),
        idempotency=IdempotencyStore(dead_redis),
        audit=sink,
        public_base=AUD,
        max_body_bytes=10_000,
        capability=lambda: capability_statement(PUBLIC, "test"),
    )
    app = FastAPI()
    install_request_context(app, ["*"])
    app.include_router(build_fhir_router(gateway))
    return Harness(keys, app, audit, revoked)


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
