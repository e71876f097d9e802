"""POST /auth/launch: staff or an EHR system creates an EHR-launch context and gets an opaque id."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from .errors import NO_STORE, OAuth2Error, error_response
from .launch import LaunchContext
from .scope_policy import context_of
from .server import AuthServer, request_id, source_ip

_ID = r"^[A-Za-z0-9\-.]{1,64}$"
_USER = r"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\-.]{1,64}$"


class LaunchRequest(BaseModel):
    patient: str = Field(pattern=_ID)
    encounter: str | None = Field(default=None, pattern=_ID)
    # SMART spelling of the field name.
    fhirUser: str | None = Field(default=None, pattern=_USER)


def _may_create_launch(claims: dict) -> bool:
    fhir_user = str(claims.get("fhirUser", ""))
    if fhir_user.startswith(("Practitioner/", "PractitionerRole/")):
        return True
    scopes = str(claims.get("scope", "")).split()
    return not claims.get("patient") and any(context_of(s) == "system" for s in scopes)


def add_launch_routes(router: APIRouter, server: AuthServer) -> None:
    @router.post("/auth/launch", tags=["oauth"])
    async def create_launch(request: Request) -> JSONResponse:
        claims = await server.bearer_claims(request)
        if claims is None:
            return JSONResponse({"error": "invalid_token", "error_description": "A valid bearer token is required"},
                                status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if not _may_create_launch(claims):
            return JSONResponse({"error": "insufficient_scope",
                                 "error_description": "Only staff or a backend system may create launches"},
                                status_code=403, headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
        try:
            body = LaunchRequest.model_validate_json(await request.body())
        except ValidationError:
            return JSONResponse({"error": "invalid_request",
                                 "error_description": "Body must be JSON with patient (and optional encounter)"},
                                status_code=400)
        caller = str(claims.get("fhirUser", ""))
        fhir_user = body.fhirUser or (caller if caller.startswith("Practitioner") else None)
        launch_id = await server.launches.create(
            LaunchContext(patient=body.patient, encounter=body.encounter, fhir_user=fhir_user,
                          created_by=str(claims.get("sub")))
        )
        try:
            await server.audit("launch.create", "success", client_id=claims.get("client_id"),
                               fhir_user=claims.get("fhirUser"), patient_id=body.patient,
                               source_ip=source_ip(request), request_id=request_id(request))
        except OAuth2Error as exc:
            return error_response(exc)
        return JSONResponse({"launch": launch_id, "expires_in": server.settings.launch_ttl},
                            status_code=201, headers=NO_STORE)
