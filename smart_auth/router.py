"""Entry point for the composition root: every OAuth / SMART route in one APIRouter."""

from __future__ import annotations

from fastapi import APIRouter

from . import endpoint_docs
from .authorize import add_authorize_routes
from .deps import AuthDeps
from .discovery import add_discovery_routes
from .endpoint import add_endpoint_route
from .grants import GrantStore
from .launch_api import add_launch_routes
from .scope_policy import PatientWrites
from .seams import PatientDirectory, Sessions
from .server import AuthServer
from .settings import AuthSettings


def build_auth_server(
    deps: AuthDeps,
    settings: AuthSettings,
    sessions: Sessions,
    patients: PatientDirectory | None = None,
    *,
    grants: GrantStore | None = None,
    patient_writes: PatientWrites | None = None,
) -> AuthServer:
    """`patients` is the accounts AccountStore (patients_for); without it a patient account can only open
    its own record. `grants` lets the accounts side share the store that ending a session revokes from.
    `patient_writes` is what the gateway lets a patient create or update, by resource type: a patient or
    caregiver is granted read/search plus exactly those (without it, read/search only)."""
    return AuthServer(deps, settings, sessions, patients, grants, patient_writes)


def build_auth_router(server: AuthServer) -> APIRouter:
    """Routes at absolute paths: /auth/authorize|token|introspect|revoke|register|launch, /.well-known/*,
    /fhir/.well-known/smart-configuration. Cross-origin access (browser apps) is the app's CORS middleware."""
    router = APIRouter()
    add_discovery_routes(router, server)
    add_authorize_routes(router, server)
    add_endpoint_route(router, "/auth/token", server.token_endpoint, doc=endpoint_docs.TOKEN)
    add_endpoint_route(router, "/auth/introspect", server.introspection_endpoint, doc=endpoint_docs.INTROSPECT)
    add_endpoint_route(router, "/auth/revoke", server.revocation_endpoint, doc=endpoint_docs.REVOKE)
    add_endpoint_route(router, "/auth/register", server.registration_endpoint, body="json",
                       doc=endpoint_docs.REGISTER)
    add_launch_routes(router, server)
    return router
