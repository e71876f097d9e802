"""Signing in to the portal (the SMART standalone launch, done by the server), signing out, staying
signed in, and the person's list of signed-in sessions.

/portal/login starts an authorization-code + PKCE request at /auth/authorize (where the person signs in
with password and second factor if they have no sign-in yet, and a caregiver picks whose record to
open); /portal/callback checks that this browser started it, exchanges the code with the portal's client
secret, and opens a portal session. Nothing about the tokens ever reaches the browser.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from locales import choose_locale
from mappers.languages import preferred_language
from mappers.names import human_name
from web.i18n import gettext as _
from web.i18n import ngettext, remember_locale

from ..core import PREFIX, Portal, Visit, request_id
from ..devices import describe_device
from ..fhir import FhirProblem
from ..guide import GUIDE_PAGE
from ..oauth import OAuthFailure
from ..safe_next import safe_next

log = logging.getLogger("portal.signin")


def add_signin_routes(router: APIRouter, portal: Portal) -> None:
    store = portal.store

    @router.get(f"{PREFIX}/login", include_in_schema=False)
    async def login(request: Request, next: str = "") -> Response:
        next_url = safe_next(next)
        return await portal.begin_login(request, next_url)

    start_again = portal.start_again

    @router.get(f"{PREFIX}/callback", include_in_schema=False)
    async def callback(request: Request) -> Response:
        params = request.query_params
        pending = await portal.pending_login(request)
        if pending is None:
            return start_again(request, _("Please sign in again"), _("This sign-in took too long or was started in "
                                                                     "another window."))
        if params.get("error"):
            if params["error"] == "access_denied":
                text = params.get("error_description") or _("There is no record this account may open.")
                return start_again(request, _("We could not open a record"), text, 403)
            return start_again(request, _("Sign-in did not work"), _("Something went wrong while signing you in."))
        rid = request_id(request)
        try:
            grant = await portal.oauth.exchange(params.get("code", ""), pending.verifier, rid)
        except OAuthFailure as exc:
            log.warning("code exchange refused: %s", exc.error)
            return start_again(request, _("Sign-in did not work"), _("Something went wrong while signing you in."))
        patient_name = ""
        fhir = portal.fhir_for(request, grant.tokens.access_token)
        patient: dict | None = None
        try:
            patient = await fhir.read("Patient", grant.patient_id)
            patient_name = human_name(patient) or ""
        except FhirProblem:
            log.info("patient name not available at sign-in; the banner says 'this record'")
        display = await portal.deps.accounts.display_preferences(grant.account_id)
        # The person's own language: their choice with the switch, else their record's preferred language, else
        # this browser's. A caregiver's is not on the record they open (that is the patient's): the switch or
        # the browser decides (their RelatedPerson is not read for it: that would be one more entry in the
        # patient's access log at every sign-in).
        record = patient if grant.fhir_user == f"Patient/{grant.patient_id}" else None
        lang = choose_locale(display.language, preferred_language(record), portal.browser_locale(request))
        cookie, _session = await store.create(
            account_id=grant.account_id, fhir_user=grant.fhir_user, patient_id=grant.patient_id,
            patient_name=patient_name, tokens=grant.tokens, device=describe_device(request.headers.get("user-agent")),
            address=request.client.host if request.client else None,
            extra={"display": display.as_fields(), "lang": lang})
        next_url = pending.next_url
        if await portal.deps.accounts.first_guide(grant.account_id):
            next_url = f"{GUIDE_PAGE}?{urlencode({'next': next_url})}"
        response = RedirectResponse(next_url, status_code=303)
        response.delete_cookie(portal.login_cookie, path=f"{PREFIX}/callback")
        portal.set_cookie(response, cookie)
        # Kept on this browser too, so the signed-out page after this session is in the same language.
        remember_locale(response, lang, secure=portal.settings.https)
        return response

    @router.post(f"{PREFIX}/signout", include_in_schema=False)
    async def signout(request: Request) -> Response:
        visit = await portal.visit(request)
        await visit.check_csrf()
        return await sign_out(portal, request, visit, "signed-out")

    @router.get(f"{PREFIX}/signed-out", include_in_schema=False)
    async def signed_out(request: Request, reason: str = "") -> Response:
        session = await portal.current_session(request, touch=False)
        if session is not None and reason == "idle":
            # The warning's timer ran out in this tab, but the person was active in another.
            return RedirectResponse(f"{PREFIX}/", status_code=303)
        minutes = portal.settings.idle_timeout_seconds // 60
        title, text = (_("You have been signed out"),
                       ngettext("For your safety, we sign you out after %(num)s minute without activity.",
                                "For your safety, we sign you out after %(num)s minutes without activity.",
                                minutes) % {"num": minutes}) \
            if reason == "idle" else (_("You have signed out"), _("Thank you for using the patient portal."))
        response = portal.message(request, title, text, action_url=f"{PREFIX}/login", action_text=_("Sign in again"))
        if session is None:
            portal.clear_cookie(response)
        return response

    @router.post(f"{PREFIX}/session/keepalive", include_in_schema=False)
    async def keepalive(request: Request) -> Response:
        """The idle warning's "stay signed in" (JSON, CSRF token in the X-CSRF-Token header)."""
        session = await portal.current_session(request)
        if session is None:
            return JSONResponse({"signed_in": False}, status_code=401, headers={"Cache-Control": "no-store"})
        visit = Visit(portal, request, session, portal.fhir_for(request, session.tokens.access_token))
        await visit.check_csrf()
        return JSONResponse({"signed_in": True, "idle_timeout": portal.settings.idle_timeout_seconds},
                            headers={"Cache-Control": "no-store"})

    async def account(visit: Visit) -> Response:
        sessions = await store.of_account(visit.session.account_id, visit.session.id)
        return visit.render("portal/account.html", title=_("Your sign-ins"), sessions=sessions,
                            notice=visit.request.query_params.get("notice"))

    router.get(f"{PREFIX}/account", include_in_schema=False)(portal.page(account))

    @router.post(f"{PREFIX}/account/sessions/{{sid}}/end", include_in_schema=False)
    async def end_other(request: Request, sid: str) -> Response:
        visit = await portal.visit(request)
        await visit.check_csrf()
        if sid == visit.session.id:
            return await sign_out(portal, request, visit, "signed-out")
        other = await store.get_of_account(visit.session.account_id, sid)
        if other is None:
            return portal.message(request, _("Page not found"), _("That sign-in has already ended."), 404,
                                  session=visit.session)
        await portal.end_session(other, request_id(request))
        return RedirectResponse(f"{PREFIX}/account?notice=ended", status_code=303)


async def sign_out(portal: Portal, request: Request, visit: Visit, reason: str) -> Response:
    """End the portal session (tokens revoked) and the sign-in session behind it."""
    await portal.end_session(visit.session, request_id(request))
    response = RedirectResponse(f"{PREFIX}/signed-out?reason={reason}", status_code=303)
    portal.clear_cookie(response)
    await portal.deps.signins.end(request, response)
    return response

