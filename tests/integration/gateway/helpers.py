"""Token minting with the gateway's own signing key, and direct EHR look-ups for expected answers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from smart_auth.keys import KeyStore
from tests.conftest import GatewayServer


def mint(gw: GatewayServer, scope: str, *, patient: str | None = None, fhir_user: str | None = None,
         client_id: str = "it-app", ttl: int = 600) -> str:
    keys = KeyStore.load_or_create(gw.state_dir / "signing-key.pem")
    now = int(time.time())
    claims: dict[str, Any] = {"iss": gw.url, "sub": f"acct-{uuid.uuid4().hex[:8]}", "aud": gw.fhir, "iat": now,
                              "exp": now + ttl, "jti": uuid.uuid4().hex, "client_id": client_id, "scope": scope,
                              "grant_id": uuid.uuid4().hex}
    if patient:
        claims["patient"] = patient
    if fhir_user or patient:
        claims["fhirUser"] = f"{gw.fhir}/{fhir_user or f'Patient/{patient}'}"
    return keys.sign(claims)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ehr_search(base: str, rtype: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every match of a search made straight to the EHR, all pages."""
    out: list[dict[str, Any]] = []
    url: str | None = f"{base}/{rtype}"
    query: dict[str, Any] | None = {**params, "_count": 200}
    with httpx.Client(timeout=60) as c:
        while url:
            bundle = c.get(url, params=query).json()
            out += [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") != "include"]
            url = next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"), None)
            query = None
    return out


def first_id(base: str, rtype: str, params: dict[str, Any]) -> str:
    found = ehr_search(base, rtype, {**params, "_count": 1})
    assert found, f"fixture data has no {rtype} for {params}"
    return found[0]["id"]
