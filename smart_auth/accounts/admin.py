"""Staff-side invitation API: `POST /auth/admin/invitations`.

Authorised by the admin API key from settings or by an access token of ours whose fhirUser is a
Practitioner and whose scopes include a `user/` scope (a staff member signed in through a SMART app).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..request_bodies import read_json_object
from .context import Ctx
from .factors import EMAIL_RE, PHONE_RE
from .models import Invitation


def _error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="portal-admin"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


async def staff_caller(ctx: Ctx, authorization: str | None) -> str | None:
    """Who is calling ("admin-key" or the staff fhirUser), or None when not allowed."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    token = authorization[7:].strip()
    key = ctx.settings.admin_api_key
    if key is not None and key.get_secret_value() and secrets.compare_digest(token, key.get_secret_value()):
        return "admin-key"
    claims = await ctx.bearer.claims(authorization)
    if claims is None:
        return None
    scopes = str(claims.get("scope") or "").split()
    fhir_user = str(claims.get("fhirUser") or "")
    if not fhir_user.startswith("Practitioner/") or not any(s.startswith("user/") for s in scopes):
        return None
    return fhir_user


def invitation_json(ctx: Ctx, invitation: Invitation, code: str) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "patient": f"Patient/{invitation.patient_id}",
        "code": code,
        "enroll_url": f"{ctx.deps.public_url.rstrip('/')}/auth/enroll?code={code}",
        "expires_at": int(invitation.expires_at),
        "delivery": invitation.delivery,
    }


async def create_patient_invitation(
    ctx: Ctx, request: Request | None, *, patient_id: str, created_by: str, email: str | None = None,
    phone: str | None = None, letter: bool = False,
) -> tuple[Invitation, str]:
    """Check the patient exists, then create the invitation and (with an address) send the link."""
    patient = await ctx.ehr_read("Patient", patient_id)
    if patient is None or patient.get("resourceType") != "Patient":
        raise LookupError(patient_id)
    await ctx.audit(request, "invitation", "success", patient_id=patient_id, fhir_user=created_by
                    if created_by.startswith("Practitioner/") else None, detail=f"by={created_by}")
    invitation, code = await ctx.store.create_invitation(
        kind="patient", patient_id=patient_id, ttl_seconds=ctx.settings.invitation_ttl_seconds,
        created_by=created_by, email=email, phone=phone,
        delivery="letter" if letter else "email" if email else "sms" if phone else "link",
    )
    url = f"{ctx.deps.public_url.rstrip('/')}/auth/enroll?code={code}"
    days = ctx.settings.invitation_ttl_seconds // 86400
    text = f"You are invited to the {ctx.settings.totp_issuer}. Enrol at {url} (valid for {days} days)."
    if email:
        await ctx.sender.send("email", email, "Your patient portal invitation", text, purpose="invitation")
    elif phone:
        await ctx.sender.send("sms", phone, "Your patient portal invitation", text, purpose="invitation")
    return invitation, code


def add_admin_routes(router: APIRouter, ctx: Ctx) -> None:
    @router.post("/auth/admin/invitations")
    async def create_invitation(request: Request) -> Response:
        caller = await staff_caller(ctx, request.headers.get("Authorization"))
        if caller is None:
            return _error(401, "invalid_token", "A staff access token or the admin API key is required")
        body = await read_json_object(request)
        patient_id = str(body.get("patient") or body.get("patient_id") or "").removeprefix("Patient/")
        email = (str(body.get("email")).strip() or None) if body.get("email") else None
        phone = (str(body.get("phone")).strip() or None) if body.get("phone") else None
        letter = body.get("delivery") == "letter"  # a code typed from a printed letter
        if body.get("delivery") not in (None, "letter", "email", "sms", "link"):
            return _error(400, "invalid_request", "delivery must be link, email, sms or letter")
        if not patient_id or len(patient_id) > 64 or not all(c.isalnum() or c in "-." for c in patient_id):
            return _error(400, "invalid_request", "patient is required (a Patient id)")
        if email and not EMAIL_RE.match(email):
            return _error(400, "invalid_request", "email is not a valid address")
        if phone and not PHONE_RE.match(phone.replace(" ", "")):
            return _error(400, "invalid_request", "phone is not a valid number")
        try:
            invitation, code = await create_patient_invitation(
                ctx, request, patient_id=patient_id, created_by=caller, email=email, phone=phone, letter=letter
            )
        except LookupError:
            return _error(404, "not_found", f"Patient/{patient_id} is not known to the EHR")
        return JSONResponse(invitation_json(ctx, invitation, code), status_code=201,
                            headers={"Cache-Control": "no-store"})
