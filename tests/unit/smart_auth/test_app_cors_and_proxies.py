"""Cross-origin and proxy plumbing of the app as `create_app` builds it: browser SMART apps call the token
endpoint, the discovery documents and /fhir/metadata cross-origin (the one CORS middleware answers them), and
forwarded headers are believed only from the trusted TLS-terminating proxy."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from fhir_gateway.app import create_app
from fhir_gateway.settings import PortalSettings

ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The app as `create_app` builds it (its Redis is a closed port: nothing here needs it)."""
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("PORTAL_"):
                env.delenv(name)
        settings = PortalSettings.load(fhir_base_url="http://ehr.test/fhir", public_url="http://portal.test",
                                       redis_url="redis://127.0.0.1:1/0", state_dir=tmp_path_factory.mktemp("cors")
                                       ).replace(gateway={"audit_export": False, "upstream_transport": "httpx"},
                                                 cache={"cache_enabled": False})
        yield create_app(settings)


@pytest.mark.parametrize("path", ["/auth/token", "/auth/revoke", "/auth/introspect", "/auth/register"])
async def test_preflight_of_the_oauth_endpoints(app: FastAPI, path: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test") as http:
        r = await http.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


@pytest.mark.parametrize("path", ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration",
                                  "/.well-known/openid-configuration", "/.well-known/jwks.json", "/fhir/metadata"])
async def test_discovery_documents_are_readable_cross_origin(app: FastAPI, path: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test") as http:
        r = await http.get(path, headers={"Origin": ORIGIN})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


async def test_token_errors_are_readable_cross_origin(app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test") as http:
        r = await http.post("/auth/token", data={"grant_type": "password"}, headers={"Origin": ORIGIN})
    assert r.status_code in (400, 503) and r.headers["access-control-allow-origin"] == "*"
    assert r.json()["error"] in ("unsupported_grant_type", "temporarily_unavailable")


def _probe(app: FastAPI) -> None:
    async def probe(request: Request) -> dict[str, str]:
        return {"client": request.client.host if request.client else "", "scheme": request.url.scheme}

    if not any(getattr(r, "path", None) == "/test/probe" for r in app.router.routes):
        app.add_api_route("/test/probe", probe)


FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


async def test_forwarded_headers_are_believed_from_the_trusted_proxy(app: FastAPI) -> None:
    _probe(app)  # the test client connects from 127.0.0.1, the default trusted proxy
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 5000)),
                                 base_url="http://portal.test") as http:
        seen = (await http.get("/test/probe", headers=FORWARDED)).json()
    assert seen == {"client": "203.0.113.9", "scheme": "https"}


async def test_forwarded_headers_from_anyone_else_are_ignored(app: FastAPI) -> None:
    _probe(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("198.51.100.7", 5000)),
                                 base_url="http://portal.test") as http:
        seen = (await http.get("/test/probe", headers=FORWARDED)).json()
    assert seen == {"client": "198.51.100.7", "scheme": "http"}
