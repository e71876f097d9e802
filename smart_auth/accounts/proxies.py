"""Caregiver (proxy) access: a patient invites, the caregiver enrols, the patient can withdraw.

Each link is backed by a RelatedPerson in the EHR (created idempotently with If-None-Exist on a
portal identifier); withdrawing marks it inactive and revokes the caregiver's live grants at once.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from mappers.references import parse_reference

from .context import Ctx, EhrUnavailable, log
from .factors import EMAIL_RE
from .models import Account, ProxyLink
from .sessions import Session

PROXY_ID_SYSTEM = "http://hospital.example.org/portal-proxy"
ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
RELATIONSHIPS: dict[str, str] = {
    "PRN": "Parent",
    "CHILD": "Child",
    "SPS": "Spouse",
    "DOMPART": "Domestic partner",
    "SIB": "Sibling",
    "GRPRN": "Grandparent",
    "GUARD": "Guardian",
    "FAMMEMB": "Other family member",
    "FRND": "Friend",
    "O": "Other",
}


class ProxyError(ValueError):
    """A request a person can fix (shown next to the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _related_person(link_id: str, patient_id: str, name: str, email: str | None, relationship: str) -> dict:
    resource: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "active": True,
        "identifier": [{"system": PROXY_ID_SYSTEM, "value": link_id}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "relationship": [
            {"coding": [{"system": ROLE_SYSTEM, "code": relationship, "display": RELATIONSHIPS[relationship]}]}
        ],
        "name": [{"text": name}],
    }
    if email:
        resource["telecom"] = [{"system": "email", "value": email}]
    return resource


def _id_from(response: Any) -> str | None:
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("resourceType") == "RelatedPerson" and body.get("id"):
            return str(body["id"])
    except ValueError:
        pass
    location = response.headers.get("Location") or response.headers.get("Content-Location") or ""
    ref = parse_reference(location, "RelatedPerson")
    return ref.id if ref else None


async def create_related_person(ctx: Ctx, link_id: str, patient_id: str, name: str, email: str | None,
                                relationship: str) -> str:
    body = _related_person(link_id, patient_id, name, email, relationship)
    try:
        response = await ctx.deps.ehr.request(
            "POST", "RelatedPerson", json=body,
            headers={"If-None-Exist": f"identifier={PROXY_ID_SYSTEM}|{link_id}", "Prefer": "return=representation"},
        )
    except Exception as exc:  # transport errors and EHR refusals look the same to a person
        raise EhrUnavailable("RelatedPerson") from exc
    rp_id = _id_from(response) if response.status_code < 400 else None
    if rp_id is None:
        log.warning("EHR refused RelatedPerson create status=%s", response.status_code)
        raise EhrUnavailable("RelatedPerson")
    return rp_id


async def deactivate_related_person(ctx: Ctx, related_person_id: str) -> bool:
    try:
        resource = await ctx.deps.ehr.read("RelatedPerson", related_person_id)
        if resource is None:
            return True
        if resource.get("active") is False:
            return True
        resource["active"] = False
        headers = {}
        version = (resource.get("meta") or {}).get("versionId")
        if version:
            headers["If-Match"] = f'W/"{version}"'
        response = await ctx.deps.ehr.request("PUT", f"RelatedPerson/{related_person_id}", json=resource,
                                              headers=headers)
        return response.status_code < 400
    except Exception as exc:
        log.warning("EHR RelatedPerson deactivate failed: %s", type(exc).__name__)
        return False


async def invite_caregiver(
    ctx: Ctx, request: Request | None, patient: Account, *, name: str, email: str, relationship: str,
    display_name: str | None,
) -> ProxyLink:
    name = " ".join(name.split())
    email = email.strip()
    if not name or len(name) > 200:
        raise ProxyError("name", "Enter the caregiver's name.")
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise ProxyError("email", "Enter a valid e-mail address.")
    if relationship not in RELATIONSHIPS:
        raise ProxyError("relationship", "Choose how this person is related to you.")
    if patient.kind != "patient" or not patient.patient_id:
        raise ProxyError("account", "Only patients can share their own record.")
    link_id = uuid.uuid4().hex
    await ctx.audit(request, "proxy.grant", "success", account_id=patient.id, fhir_user=patient.fhir_user,
                    patient_id=patient.patient_id, detail=f"invited link={link_id}")
    rp_id = await create_related_person(ctx, link_id, patient.patient_id, name, email, relationship)
    invitation, code = await ctx.store.create_invitation(
        kind="caregiver", patient_id=patient.patient_id, ttl_seconds=ctx.settings.invitation_ttl_seconds,
        created_by=patient.fhir_user, email=email, proxy_link_id=link_id,
    )
    link = ProxyLink(id=link_id, patient_id=patient.patient_id, related_person_id=rp_id, status="invited",
                     caregiver_name=name, relationship=relationship, caregiver_email=email,
                     invitation_id=invitation.id, patient_display=display_name)
    await ctx.store.save_proxy(link)
    url = f"{ctx.deps.public_url.rstrip('/')}/auth/enroll?code={code}"
    await ctx.sender.send(
        "email", email, "You have been invited to help with a patient's health record",
        f"You have been invited as a caregiver in the {ctx.settings.totp_issuer}. To accept, open {url} "
        f"(valid for {ctx.settings.invitation_ttl_seconds // 86400} days).",
        purpose="caregiver-invitation",
    )
    return link


async def withdraw(ctx: Ctx, request: Request | None, actor: Account, link: ProxyLink) -> int:
    """End a caregiver's access now: link gone, grants revoked, RelatedPerson inactive. Returns grants revoked."""
    await ctx.audit(request, "proxy.withdraw", "success", account_id=actor.id, fhir_user=actor.fhir_user,
                    patient_id=link.patient_id, on_behalf_of=link.related_person_id,
                    detail=f"link={link.id} caregiver={link.caregiver_account_id}")
    link.status = "withdrawn"
    await ctx.store.save_proxy(link)
    if link.invitation_id:
        await ctx.store.revoke_invitation(link.invitation_id)
    revoked = 0
    if link.caregiver_account_id:
        revoked = await ctx.grants.revoke_for(link.caregiver_account_id, link.patient_id)
    if not await deactivate_related_person(ctx, link.related_person_id):
        # Access is already gone on our side; the EHR flag is bookkeeping that staff can fix.
        log.warning("proxy link=%s withdrawn but RelatedPerson/%s still active in the EHR",
                    link.id, link.related_person_id)
    return revoked


def _link_json(link: ProxyLink) -> dict[str, Any]:
    return {
        "id": link.id,
        "patient": f"Patient/{link.patient_id}",
        "relatedPerson": f"RelatedPerson/{link.related_person_id}",
        "status": link.status,
        "name": link.caregiver_name,
        "email": link.caregiver_email,
        "relationship": link.relationship,
    }


def add_proxy_routes(router: APIRouter, ctx: Ctx) -> None:
    async def patient_session(request: Request) -> Session | None:
        session = await ctx.sessions.current(request)
        if session is None or session.account.kind != "patient" or not session.account.patient_id:
            return None
        return session

    async def page(request: Request, session: Session, status: int = 200, **extra: Any) -> Response:
        links = await ctx.store.proxies_of_patient(session.account.patient_id or "")
        extra.setdefault("errors", {})
        extra.setdefault("values", {})
        return ctx.render(request, "proxies.html", status, session=session, links=links,
                          relationships=RELATIONSHIPS, notice=request.query_params.get("notice"), **extra)

    @router.get("/auth/proxies", name="accounts_proxies")
    async def proxies_page(request: Request) -> Response:
        session = await ctx.sessions.current(request)
        if session is None:
            return RedirectResponse("/auth/login?next=/auth/proxies", status_code=303)
        if session.account.kind != "patient":
            return ctx.message(request, "Not available", "Only patients can share access to their own record.", 403)
        return await page(request, session)

    @router.post("/auth/proxies")
    async def proxies_invite(request: Request) -> Response:
        form = await request.form()
        session = await patient_session(request)
        if session is None:
            return RedirectResponse("/auth/login?next=/auth/proxies", status_code=303)
        if not ctx.sessions.verify_csrf(request, session, str(form.get("csrf_token") or "")):
            return ctx.message(request, "Form expired", "This form has expired. Please reload and try again.", 400)
        values = {k: str(form.get(k) or "") for k in ("name", "email", "relationship")}
        record = await ctx.store.get_record(session.account.id)
        try:
            await invite_caregiver(ctx, request, session.account, display_name=record.display_name if record else None,
                                   **values)
        except ProxyError as exc:
            return await page(request, session, 400, errors={exc.field: [exc.message]}, values=values)
        return RedirectResponse("/auth/proxies?notice=invited", status_code=303)

    @router.post("/auth/proxies/{link_id}/withdraw")
    async def proxies_withdraw(request: Request, link_id: str) -> Response:
        form = await request.form()
        session = await patient_session(request)
        if session is None:
            return RedirectResponse("/auth/login?next=/auth/proxies", status_code=303)
        if not ctx.sessions.verify_csrf(request, session, str(form.get("csrf_token") or "")):
            return ctx.message(request, "Form expired", "This form has expired. Please reload and try again.", 400)
        link = await ctx.store.get_proxy(link_id)
        if link is None or link.patient_id != session.account.patient_id or link.status == "withdrawn":
            return ctx.message(request, "Not found", "That caregiver access does not exist.", 404)
        await withdraw(ctx, request, session.account, link)
        return RedirectResponse("/auth/proxies?notice=withdrawn", status_code=303)

    # ---- JSON API (same session cookie; CSRF token in the X-CSRF-Token header) -----------------
    def api_error(status: int, error: str, description: str) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=status,
                            headers={"Cache-Control": "no-store"})

    @router.get("/auth/api/proxies")
    async def api_list(request: Request) -> Response:
        session = await patient_session(request)
        if session is None:
            return api_error(401, "login_required", "Sign in as a patient first")
        links = await ctx.store.proxies_of_patient(session.account.patient_id or "")
        return JSONResponse({"proxies": [_link_json(lk) for lk in links], "csrf_token": session.csrf_token},
                            headers={"Cache-Control": "no-store"})

    @router.post("/auth/api/proxies")
    async def api_invite(request: Request) -> Response:
        session = await patient_session(request)
        if session is None:
            return api_error(401, "login_required", "Sign in as a patient first")
        if not ctx.sessions.verify_csrf(request, session, None):
            return api_error(403, "invalid_csrf", "Missing or wrong X-CSRF-Token header")
        try:
            body = await request.json()
        except ValueError:
            return api_error(400, "invalid_request", "Body must be JSON")
        if not isinstance(body, dict):
            return api_error(400, "invalid_request", "Body must be a JSON object")
        record = await ctx.store.get_record(session.account.id)
        try:
            link = await invite_caregiver(
                ctx, request, session.account, name=str(body.get("name") or ""), email=str(body.get("email") or ""),
                relationship=str(body.get("relationship") or ""), display_name=record.display_name if record else None,
            )
        except ProxyError as exc:
            return api_error(400, "invalid_request", f"{exc.field}: {exc.message}")
        return JSONResponse(_link_json(link), status_code=201, headers={"Cache-Control": "no-store"})

    @router.delete("/auth/api/proxies/{link_id}")
    async def api_withdraw(request: Request, link_id: str) -> Response:
        session = await patient_session(request)
        if session is None:
            return api_error(401, "login_required", "Sign in as a patient first")
        if not ctx.sessions.verify_csrf(request, session, None):
            return api_error(403, "invalid_csrf", "Missing or wrong X-CSRF-Token header")
        link = await ctx.store.get_proxy(link_id)
        if link is None or link.patient_id != session.account.patient_id or link.status == "withdrawn":
            return api_error(404, "not_found", "No such caregiver access")
        revoked = await withdraw(ctx, request, session.account, link)
        return JSONResponse({"id": link.id, "status": "withdrawn", "revoked_grants": revoked},
                            headers={"Cache-Control": "no-store"})
