"""Staff sign-in (authorization code + PKCE through /auth/authorize, where the person signs in with
password and second factor), the staff role read at sign-in, and signing out.

Only a Practitioner with a staff role (clinician, nurse, front desk, billing) on an active
PractitionerRole gets a staff session; anyone else is told so and the tokens are revoked at once.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mappers.names import human_name
from mappers.staff import staff_role
from portal.core import request_id
from portal.devices import describe_device
from portal.fhir import FhirProblem
from portal.oauth import OAuthFailure, local_ref
from portal.safe_next import safe_next

from ..core import StaffArea
from ..settings import PREFIX

log = logging.getLogger("staff.signin")
HOME = f"{PREFIX}/"


def staff_next(value: str) -> str:
    target = safe_next(value)
    if not target.startswith(HOME) or target.startswith((f"{PREFIX}/login", f"{PREFIX}/callback")):
        return HOME
    return target


def add_signin_routes(router: APIRouter, area: StaffArea) -> None:
    store = area.store

    @router.get(f"{PREFIX}/login", include_in_schema=False)
    async def login(request: Request, next: str = "") -> Response:
        next_url = staff_next(next)
        return await area.begin_login(request, next_url)

    start_again = area.start_again

    @router.get(f"{PREFIX}/callback", include_in_schema=False)
    async def callback(request: Request) -> Response:
        params = request.query_params
        pending = await area.pending_login(request)
        if pending is None:
            return start_again(request, "Please sign in again", "This sign-in took too long or was started in "
                                                                 "another window.")
        if params.get("error"):
            if params["error"] in ("invalid_scope", "access_denied"):
                return not_staff(request)
            return start_again(request, "Sign-in did not work", "Something went wrong while signing you in.")
        rid = request_id(request)
        try:
            body, claims = await area.oauth.exchange_code(params.get("code", ""), pending.verifier, rid)
        except OAuthFailure as exc:
            log.warning("staff code exchange refused: %s", exc.error)
            return start_again(request, "Sign-in did not work", "Something went wrong while signing you in.")
        tokens = area.oauth.tokens_of(body)
        practitioner = local_ref(claims.get("fhirUser"))
        role = None
        name = ""
        if practitioner.startswith("Practitioner/") and not claims.get("patient"):
            fhir = area.fhir_for(request, tokens.access_token)
            try:
                roles = await fhir.search("PractitionerRole", [("practitioner", practitioner), ("active", "true")])
                role = staff_role(roles, practitioner)
                name = human_name(await fhir.read("Practitioner", practitioner.split("/", 1)[1]),
                                  with_prefix=True) or ""
            except FhirProblem:
                log.warning("staff role look-up failed at sign-in")
                await area.oauth.revoke(tokens, rid)
                return start_again(request, "We can't sign you in right now",
                                   "The health record system is not answering. Try again in a few minutes.", 503)
        if role is None:
            await area.oauth.revoke(tokens, rid)
            return not_staff(request)
        cookie, session = await store.create(
            account_id=str(claims.get("sub") or ""), fhir_user=practitioner, patient_id="", patient_name=name,
            tokens=tokens, device=describe_device(request.headers.get("user-agent")),
            address=request.client.host if request.client else None)
        session.extra.update(role=role.code, role_label=role.label, role_id=role.role_id, team=role.team,
                             team_name=role.team_name)
        await store.save(session)
        response = RedirectResponse(pending.next_url, status_code=303)
        response.delete_cookie(area.login_cookie, path=f"{PREFIX}/callback")
        area.set_cookie(response, cookie)
        return response

    def not_staff(request: Request) -> Response:
        return start_again(request, "This is not a staff account",
                           "The staff area is for the clinic's care team. If you are signed in to the patient "
                           "portal in this browser, sign out there first, then sign in with your staff account.",
                           403)

    @router.post(f"{PREFIX}/signout", include_in_schema=False)
    async def signout(request: Request) -> Response:
        visit = await area.visit(request)
        await visit.check_csrf()
        await area.end_session(visit.session, request_id(request))
        response = RedirectResponse(f"{PREFIX}/signed-out", status_code=303)
        area.clear_cookie(response)
        await area.deps.signins.end(request, response)
        return response

    @router.get(f"{PREFIX}/signed-out", include_in_schema=False)
    async def signed_out(request: Request, reason: str = "") -> Response:
        session = await area.current_session(request, touch=False)
        if session is not None and reason == "idle":
            return RedirectResponse(HOME, status_code=303)
        title = "You have been signed out" if reason == "idle" else "You have signed out"
        response = area.message(request, title, "Close this window if you share this computer.",
                                action_url=f"{PREFIX}/login", action_text="Sign in again")
        if session is None:
            area.clear_cookie(response)
        return response
