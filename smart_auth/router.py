"""Entry point for the composition root: every OAuth / SMART route in one APIRouter."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from .authorize import add_authorize_routes
from .deps import AuthDeps
from .discovery import add_discovery_routes
from .launch_api import add_launch_routes
from .registration import add_registration_routes
from .seams import PatientDirectory, Sessions
from .server import AuthServer
from .settings import AuthSettings
from .token_endpoint import add_token_routes

STATIC_DIR = Path(__file__).parent / "static"


def build_auth_server(
    deps: AuthDeps, settings: AuthSettings, sessions: Sessions, patients: PatientDirectory | None = None
) -> AuthServer:
    return AuthServer(deps, settings, sessions, patients)


def build_auth_router(
    deps: AuthDeps,
    settings: AuthSettings,
    sessions: Sessions,
    patients: PatientDirectory | None = None,
    *,
    server: AuthServer | None = None,
) -> APIRouter:
    """Routes at absolute paths: /auth/authorize|token|introspect|revoke|register|launch, /.well-known/*,
    /fhir/.well-known/smart-configuration. `patients` is the accounts AccountStore (patients_for);
    without it a patient account can only open its own record."""
    server = server or build_auth_server(deps, settings, sessions, patients)
    router = APIRouter()
    add_discovery_routes(router, server)
    add_authorize_routes(router, server)
    add_token_routes(router, server)
    add_registration_routes(router, server)
    add_launch_routes(router, server)

    @router.get("/auth/static/oauth.css", include_in_schema=False)
    async def stylesheet() -> FileResponse:
        return FileResponse(STATIC_DIR / "oauth.css", media_type="text/css",
                            headers={"Cache-Control": "public, max-age=3600"})

    router.auth_server = server  # type: ignore[attr-defined]  # lets the lead reach GrantStore for accounts
    return router
