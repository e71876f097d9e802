"""Fixtures for the smart_auth integration tests (OAuth side first; the accounts side may add its own).

OAuth: `oauth_env` runs a real uvicorn on a free loopback port serving the OAuth router + the accounts
SessionManager/AccountStore + a KeyStore, against the private test Redis (`redis_server` from
tests/conftest.py). Sessions are created through the accounts SessionManager's public API by a
test-only route, so the tests do not depend on the sign-in UI.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from devstack.procs import free_port
from fhir_gateway.app import patient_write_scopes
from fhir_gateway.request_context import install_request_context
from smart_auth.accounts import AccountSettings, AccountStore, build_accounts
from smart_auth.accounts.models import Account, AccountRecord, ProxyLink
from smart_auth.clients import Client
from smart_auth.deps import AuthDeps
from smart_auth.grants import GrantStore
from smart_auth.keys import KeyStore
from smart_auth.router import build_auth_router, build_auth_server
from smart_auth.server import AuthServer
from smart_auth.settings import AuthSettings
from tests.recording_audit import RecordingAudit

OAUTH_REDIS_DB = 3


class OAuthFakeEhr:
    """Patient names for the picker and staff roles (PractitionerRole); the OAuth flow reads nothing else
    from the EHR."""

    def __init__(self) -> None:
        self.patients: dict[str, dict[str, Any]] = {}
        self.staff_roles: dict[str, str] = {"Practitioner/prac-01": "clinician"}

    async def read(self, resource_type: str, resource_id: str, request_id: str | None = None) -> dict | None:
        return self.patients.get(resource_id) if resource_type == "Patient" else None

    async def search(self, resource_type: str, params: Any, request_id: str | None = None) -> dict:
        practitioner = dict(params).get("practitioner") if resource_type == "PractitionerRole" else None
        role = self.staff_roles.get(practitioner or "")
        if role is None:
            return {"resourceType": "Bundle", "entry": []}
        return {"resourceType": "Bundle", "entry": [{"resource": {
            "resourceType": "PractitionerRole", "id": "role-1", "active": True,
            "practitioner": {"reference": practitioner},
            "code": [{"coding": [{"system": "http://hospital.example.org/fhir/CodeSystem/staff-role",
                                  "code": role}]}]}}]}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.Response(404)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class OAuthEnv:
    url: str
    redis: aioredis.Redis
    server: AuthServer
    accounts: AccountStore
    audit: RecordingAudit
    ehr: OAuthFakeEhr
    settings: AuthSettings
    routers: list[APIRouter]

    @staticmethod
    def pkce() -> tuple[str, str]:
        return pkce_pair()

    @property
    def fhir_base(self) -> str:
        return self.url + "/fhir"

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=10, **kwargs)

    async def new_client(self, **kwargs: Any) -> tuple[Client, str | None]:
        kwargs.setdefault("client_name", "Test Health App")
        kwargs.setdefault("redirect_uris", ["http://127.0.0.1:9999/callback"])
        return await self.server.clients.create(**kwargs)

    async def new_account(self, kind: str = "patient", patient_id: str | None = "pt-0001",
                          fhir_user: str | None = None, display_name: str | None = "Pat One") -> Account:
        username = f"oauth-{secrets.token_hex(4)}"
        record = AccountRecord(
            id="", username=username, kind=kind, patient_id=patient_id if kind == "patient" else None,  # type: ignore[arg-type]
            fhir_user=fhir_user or (f"Patient/{patient_id}" if kind == "patient" else "Practitioner/prac-01"),
            password_hash="unused", mfa_method="totp", display_name=display_name,
        )
        record = await self.accounts.create(record)
        return record.public()

    async def add_proxy(self, caregiver: Account, patient_id: str, related_person_id: str, name: str) -> None:
        await self.accounts.save_proxy(ProxyLink(
            id=secrets.token_hex(6), patient_id=patient_id, related_person_id=related_person_id,
            status="active", caregiver_name="Carer", relationship="CHILD",
            caregiver_account_id=caregiver.id, patient_display=name,
        ))

    async def browser(self, account: Account) -> httpx.AsyncClient:
        """An httpx client carrying a real signed-in session cookie for `account`."""
        async with self.http() as signer:
            response = await signer.get(f"/test/oauth-sign-in/{account.id}")
            assert response.status_code == 200, response.text
            cookies = signer.cookies
        return self.http(cookies=cookies)

    async def authorize(self, browser: httpx.AsyncClient, client: Client, *, scope: str,
                        challenge: str, state: str = "st-123", launch: str | None = None,
                        method: str = "GET", **extra: str) -> httpx.Response:
        params = {
            "response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uris[0],
            "scope": scope, "state": state, "aud": self.fhir_base, "code_challenge": challenge,
            "code_challenge_method": "S256", **extra,
        }
        if launch:
            params["launch"] = launch
        params = {k: v for k, v in params.items() if v is not None}
        if method == "POST":
            return await browser.post("/auth/authorize", data=params)
        return await browser.get("/auth/authorize", params=params)

    async def consent(self, browser: httpx.AsyncClient, page: httpx.Response, *,
                      keep: list[str] | None = None, decision: str = "allow") -> httpx.Response:
        """Submit the consent form as shown, keeping only `keep` ticked (None = all)."""
        assert page.status_code == 200, page.text
        html = page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        pending = re.search(r'name="pending" value="([^"]+)"', html).group(1)
        offered = re.findall(r'name="scope" value="([^"]+)"', html)
        ticked = offered if keep is None else [s for s in offered if s in keep]
        data = [("csrf_token", csrf), ("pending", pending), ("decision", decision)]
        data += [("scope", s) for s in ticked]
        return await browser.post("/auth/authorize/decision", content=urlencode(data),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})

    async def code_from(self, response: httpx.Response) -> tuple[str, dict[str, list[str]]]:
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert "code" in query, response.headers["location"]
        return query["code"][0], query

    async def full_flow(self, account: Account, client: Client, scope: str, *,
                        keep: list[str] | None = None, token_headers: dict[str, str] | None = None,
                        token_form: dict[str, str] | None = None, **extra: str) -> dict[str, Any]:
        verifier, challenge = pkce_pair()
        browser = await self.browser(account)
        async with browser:
            page = await self.authorize(browser, client, scope=scope, challenge=challenge, **extra)
            answer = await self.consent(browser, page, keep=keep) if page.status_code == 200 else page
            code, _ = await self.code_from(answer)
        async with self.http() as http:
            token = await http.post("/auth/token", data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uris[0],
                "code_verifier": verifier,
                **(token_form if token_form is not None else {"client_id": client.client_id}),
            }, headers=token_headers)
        assert token.status_code == 200, token.text
        return token.json() | {"_code": code, "_verifier": verifier}


@pytest.fixture(scope="session")
async def oauth_env(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OAuthEnv]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    redis_url = f"redis://127.0.0.1:{redis_server.port}/{OAUTH_REDIS_DB}"
    redis = aioredis.from_url(redis_url)
    await redis.flushdb()
    state: Path = tmp_path_factory.mktemp("oauth-state")
    keys = KeyStore.load_or_create(state / "signing-key.pem")
    audit = RecordingAudit()
    ehr = OAuthFakeEhr()
    deps = AuthDeps(redis=redis, keys=keys, ehr=ehr, audit=audit, public_url=url, state_dir=state)
    settings = AuthSettings(public_url=url, redis_url=redis_url)
    # Wired the way the composition root does it: one GrantStore that the OAuth server issues from and
    # that ending a sign-in session revokes through, then both routers on one app.
    grants = GrantStore(redis, access_token_ttl=settings.access_token_ttl)
    accounts_part = build_accounts(deps, AccountSettings(public_url=url, state_dir=state),
                                   on_session_end=grants.revoke_for_session)
    accounts, sessions = accounts_part.store, accounts_part.sessions
    auth_server = build_auth_server(deps, settings, sessions, accounts, grants=grants,
                                    patient_writes=patient_write_scopes())
    app = FastAPI()
    install_request_context(app, ["*"])  # CORS as the app has it: browser apps call these endpoints
    routers = [build_auth_router(auth_server), accounts_part.router(auth_server.grants)]
    for router in routers:
        app.include_router(router)

    @app.get("/test/oauth-sign-in/{account_id}")
    async def sign_in(account_id: str) -> JSONResponse:
        account = await accounts.get(account_id)
        response = JSONResponse({"ok": True})
        await sessions.create(response, account)
        return response

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    env = OAuthEnv(url, redis, auth_server, accounts, audit, ehr, settings, routers)
    try:
        yield env
    finally:
        server.should_exit = True
        await task
        await redis.flushdb()
        await redis.aclose()
