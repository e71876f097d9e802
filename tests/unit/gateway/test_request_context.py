"""Request ids and the last-resort error answer: nothing leaves as a bare 500 or a stack trace."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from fhir_gateway.request_context import install_request_context


def app_that_fails() -> FastAPI:
    app = FastAPI()
    install_request_context(app, ["*"])

    @app.get("/fhir/Boom")
    async def boom() -> None:
        raise RuntimeError("secret detail: Patient/pt-0001")

    @app.get("/auth/boom")
    async def auth_boom() -> None:
        raise KeyError("secret")

    @app.get("/fhir/ok")
    async def ok() -> dict[str, str]:
        return {"ok": "yes"}

    return app


async def test_unexpected_failure_is_a_clean_operation_outcome_with_the_request_id() -> None:
    transport = httpx.ASGITransport(app=app_that_fails(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        fhir = await c.get("/fhir/Boom", headers={"X-Request-Id": "trace-123"})
        oauth = await c.get("/auth/boom")
        ok = await c.get("/fhir/ok", headers={"X-Request-Id": "bad id with spaces"})
    assert fhir.status_code == 500 and fhir.headers["content-type"].startswith("application/fhir+json")
    assert fhir.json()["resourceType"] == "OperationOutcome" and "secret" not in fhir.text
    assert fhir.headers["x-request-id"] == "trace-123"
    assert oauth.status_code == 500 and oauth.json()["error"] == "server_error" and "secret" not in oauth.text
    assert len(oauth.headers["x-request-id"]) == 32
    # An unsafe incoming id is replaced, never echoed.
    assert ok.status_code == 200 and ok.headers["x-request-id"] != "bad id with spaces"
