"""/auth/authorize (GET and POST): authorization code + PKCE S256, SMART standalone and EHR launch,
patient picker and consent.

Errors before the client and redirect_uri are trusted get an error page (never a redirect);
afterwards they go back to the app per RFC 6749 §4.1.2.1 with error, error_description and state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636.challenge import CODE_CHALLENGE_PATTERN
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from locales import ENGLISH, N_
from mappers.names import human_name
from web import csrf_input
from web.i18n import browser_locale, current_locale, reset_locale, set_locale
from web.i18n import gettext as _
from web.security import csp_allowing_form_to

from .clients import Client
from .codes import CodeData
from .consent import ConsentRecord, describe_scope
from .errors import (
    AccessDeniedError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    TemporarilyUnavailableError,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
)
from .grants import new_grant_id
from .pending import Pending
from .request_bodies import FormExpired, read_form, require_csrf, single_values
from .scope_policy import (
    PERSON_KINDS,
    allowed_for_account,
    allowed_for_client,
    context_of,
    narrow_for_person,
    narrow_for_staff,
    parse_requested,
)
from .server import AuthServer, request_id, source_ip
from .staff_roles import staff_role_code

log = logging.getLogger("smart_auth.authorize")

AUTHORIZE_PARAMS = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "aud", "launch",
    "code_challenge", "code_challenge_method", "nonce",
)


class _PageError(Exception):
    """A refusal shown to the person as a page: English message ids, translated when shown (the audit keeps the
    English title). `detail`: the OAuth error description behind it, for the app's developer (English, as RFC
    6749 errors are)."""

    def __init__(self, title: str, text: str, status: int = 400, detail: str | None = None) -> None:
        super().__init__(text)
        self.title, self.text, self.status, self.detail = title, text, status, detail


def _redirect_error(redirect_uri: str, exc: OAuth2Error, state: str | None) -> RedirectResponse:
    params: list[tuple[str, str]] = [("error", exc.error)]
    description = exc.get_error_description()
    if description:
        params.append(("error_description", description))
    if state:
        params.append(("state", state))
    location = add_params_to_uri(redirect_uri, params)
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


class AuthorizeFlow:
    def __init__(self, server: AuthServer) -> None:
        self.s = server

    # ---------- pages ----------
    def page(self, request: Request, template: str, status: int = 200, *, form_target: str | None = None,
             **context: Any) -> HTMLResponse:
        """``form_target``: where the page's form may lead (the app's redirect URI). Browsers apply the CSP's
        form-action to the redirect after a form post too, so that origin is allowed there."""
        headers = {"Content-Security-Policy": csp_allowing_form_to(form_target)} if form_target else None
        return self.s.pages.page(f"oauth/{template}", status, headers=headers, request=request, **context)

    def error_page(self, request: Request, err: _PageError) -> HTMLResponse:
        return self.page(request, "error.html", err.status, title=_(err.title), text=_(err.text), detail=err.detail)

    # ---------- step 1: the request itself ----------
    async def start(self, request: Request, params: dict[str, str]) -> Response:
        client = await self.s.clients.get(params.get("client_id"))
        if client is None:
            raise _PageError(N_("Unknown app"), N_("The app that sent you here is not registered with this portal."))
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri or redirect_uri not in client.redirect_uris:
            raise _PageError(N_("App address mismatch"),
                             N_("The app asked to send you to an address it has not registered, so we stopped "
                               "here."))
        state = params.get("state")
        try:
            pending = await self._validate(request, client, redirect_uri, params)
        except OAuth2Error as exc:
            await self._audit_refusal(request, exc, client.client_id)
            return _redirect_error(redirect_uri, exc, state)
        if pending is None:
            # Not signed in: the accounts side signs the person in, then sends them back here.
            nxt = "/auth/authorize?" + urlencode({k: v for k, v in params.items() if k in AUTHORIZE_PARAMS})
            return RedirectResponse(f"{self.s.urls.login}?{urlencode({'next': nxt})}", status_code=303)
        return await self.resume(request, pending, client)

    async def _validate(
        self, request: Request, client: Client, redirect_uri: str, params: dict[str, str]
    ) -> Pending | None:
        response_type = params.get("response_type")
        if not response_type:
            raise InvalidRequestError(description="Missing response_type")
        if response_type != "code":
            raise UnsupportedResponseTypeError(response_type)
        state = params.get("state")
        if not state:
            raise InvalidRequestError(description="Missing state")
        if "authorization_code" not in client.grant_types:
            raise UnauthorizedClientError(description="This client may not use the authorization code flow")
        challenge = params.get("code_challenge")
        if not challenge:
            raise InvalidRequestError(description="Missing code_challenge: PKCE is required")
        if params.get("code_challenge_method") != "S256":
            raise InvalidRequestError(description="code_challenge_method must be S256")
        if not CODE_CHALLENGE_PATTERN.match(challenge):
            raise InvalidRequestError(description="Malformed code_challenge")
        aud = (params.get("aud") or "").rstrip("/")
        if aud != self.s.urls.fhir_base:
            raise InvalidRequestError(description="aud must be this server's FHIR base URL")
        requested = parse_requested(params.get("scope"))
        if not requested:
            raise InvalidScopeError(description="Missing scope")
        if any(context_of(s) == "system" for s in requested):
            raise InvalidScopeError(description="system/ scopes are only for backend services")
        pending_ctx: dict[str, Any] = {}
        launch_id = params.get("launch")
        if launch_id:
            ctx = await self.s.launches.get(launch_id)
            if ctx is None:
                raise InvalidRequestError(description="Unknown or expired launch")
            pending_ctx = {"launch_patient": ctx.patient, "encounter": ctx.encounter,
                           "launch_fhir_user": ctx.fhir_user, "ehr_launch": True}
        elif "launch" in requested:
            raise InvalidRequestError(description="The launch scope needs a launch parameter (EHR launch)")

        session = await self.s.sessions.current(request)
        if session is None:
            return None
        return Pending(
            client_id=client.client_id, redirect_uri=redirect_uri, state=state, code_challenge=challenge,
            requested=requested, account_id=session.account.id, session_id=session.id,
            nonce=params.get("nonce"), **pending_ctx,
        )

    # ---------- step 2: which patient ----------
    async def resume(self, request: Request, pending: Pending, client: Client) -> Response:
        session = await self.s.sessions.current(request)
        try:
            if session is None or session.account.id != pending.account_id:
                raise AccessDeniedError(description="The sign-in changed during authorization")
            account = session.account
            if pending.patient is None:
                chosen = await self._choose_patient(pending, account)
                if chosen is None:
                    pending_id = await self.s.pending.create(pending)
                    return self.page(request, "picker.html", form_target=pending.redirect_uri,
                                     app_name=client.client_name,
                                     patients=pending.candidates, pending_id=pending_id,
                                     csrf_field=csrf_input(session.csrf_token))
            return await self._consent_or_code(request, pending, client, session)
        except OAuth2Error as exc:
            await self._audit_refusal(request, exc, client.client_id)
            return _redirect_error(pending.redirect_uri, exc, pending.state)

    async def _links(self, account: Any) -> list[Any]:
        links: list[Any] = []
        if self.s.patients is not None:
            links = list(await self.s.patients.patients_for(account.id))
        if not links and account.kind == "patient" and account.patient_id:
            links = [_SelfLink(account.patient_id)]
        return links

    async def _choose_patient(self, pending: Pending, account: Any) -> str | None:
        """Bind the patient; None when the person must pick (pending.candidates filled)."""
        person = account.kind in ("patient", "caregiver")
        if pending.ehr_launch:
            if person:
                link = next((x for x in await self._links(account) if x.patient_id == pending.launch_patient), None)
                if link is None:
                    raise AccessDeniedError(description="You may not open this patient's record")
                self._bind(pending, account, link)
            else:
                pending.patient = pending.launch_patient
            return pending.patient
        wants_patient = "launch/patient" in pending.requested
        if not person and not wants_patient:
            pending.patient = ""  # staff without patient context
            return ""
        links = await self._links(account)
        if not links:
            raise AccessDeniedError(description="There is no patient record you may open")
        if len(links) == 1:
            self._bind(pending, account, links[0])
            return pending.patient
        pending.candidates = [
            {"patient_id": x.patient_id, "name": await self._display_name(x),
             "related_person_id": getattr(x, "related_person_id", None)}
            for x in links
        ]
        return None

    def _bind(self, pending: Pending, account: Any, link: Any) -> None:
        pending.patient = link.patient_id
        related_person_id = getattr(link, "related_person_id", None)
        pending.on_behalf_of = f"RelatedPerson/{related_person_id}" if related_person_id else None

    async def _display_name(self, link: Any) -> str:
        if getattr(link, "display_name", None):
            return str(link.display_name)
        try:
            resource = await self.s.deps.ehr.read("Patient", link.patient_id)
        except Exception:  # an unreachable EHR must not block the picker; show the record id instead
            log.warning("EHR name lookup failed for a picker entry")
            resource = None
        return human_name(resource) or _("Patient record %(id)s") % {"id": link.patient_id}

    async def _continue(self, request: Request, pending_id: str, form: dict[str, str]) -> tuple[Pending, Any, Client]:
        """A picker or consent form posted back: its request, signed-in session (CSRF-checked) and app."""
        pending = await self.s.pending.get(pending_id)
        session = await self.s.sessions.current(request)
        if pending is None or session is None or session.account.id != pending.account_id:
            raise _PageError(N_("This request has expired"), N_("Please start again from the app."))
        try:
            await require_csrf(request, session.csrf_token)
        except FormExpired:
            raise _PageError(N_("Form expired"), N_("Please go back to the app and start again."), 403) from None
        client = await self.s.clients.get(pending.client_id)
        if client is None:
            raise _PageError(N_("Unknown app"), N_("The app is no longer registered."))
        return pending, session, client

    async def choose(self, request: Request, form: dict[str, str]) -> Response:
        pending_id = form.get("pending", "")
        pending, _session, client = await self._continue(request, pending_id, form)
        picked = next((c for c in pending.candidates if c["patient_id"] == form.get("patient")), None)
        if picked is None:
            raise _PageError(N_("Choose a patient"), N_("Please choose one of the listed people."))
        await self.s.pending.drop(pending_id)
        pending.patient = picked["patient_id"]
        related_person_id = picked.get("related_person_id")
        pending.on_behalf_of = f"RelatedPerson/{related_person_id}" if related_person_id else None
        pending.candidates = []
        return await self.resume(request, pending, client)

    # ---------- step 3: consent ----------
    async def _consent_or_code(self, request: Request, pending: Pending, client: Client, session: Any) -> Response:
        account = session.account
        offered = allowed_for_account(
            account.kind, allowed_for_client(client, pending.requested), has_patient=bool(pending.patient)
        )
        if account.kind in PERSON_KINDS:
            offered = narrow_for_person(offered, self.s.patient_writes)
        elif account.kind == "staff":
            role = await staff_role_code(self.s.deps.ehr, account.fhir_user, request_id(request))
            offered = narrow_for_staff(offered, role)
        if not any(context_of(s) for s in offered):
            raise InvalidScopeError(description="None of the requested data scopes can be granted to this account")
        pending.offered = offered
        if client.first_party:
            # The product's own portal: the person signed up for it, so there is nothing to consent to
            # (the code it gets is audited like any other).
            return await self._issue_code(request, pending, client, session, offered)
        remembered = await self.s.consents.covered(account.id, client.client_id, pending.patient, offered)
        if remembered is not None and any(context_of(s) for s in remembered):
            return await self._issue_code(request, pending, client, session, remembered)
        pending_id = await self.s.pending.create(pending)
        lines: dict[str, list[str]] = {}  # one line per thing the person is asked (openid + fhirUser: one)
        person = account.kind in PERSON_KINDS
        for scope in offered:
            lines.setdefault(describe_scope(scope, patient_facing=person), []).append(scope)
        # Staff lines are in English (as the staff area is): marked so on a page in another language.
        lang = None if person or current_locale() == ENGLISH else ENGLISH
        items = [{"scope": " ".join(scopes), "text": text, "lang": lang} for text, scopes in lines.items()]
        return self.page(request, "consent.html", form_target=pending.redirect_uri, app_name=client.client_name,
                         items=items,
                         pending_id=pending_id, csrf_field=csrf_input(session.csrf_token),
                         acting_for=pending.on_behalf_of is not None)

    async def decide(self, request: Request, form: dict[str, str], scopes: list[str]) -> Response:
        pending_id = form.get("pending", "")
        pending, session, client = await self._continue(request, pending_id, form)
        await self.s.pending.drop(pending_id)
        account = session.account
        fields = {"account_id": account.id, "fhir_user": account.fhir_user, "client_id": client.client_id,
                  "patient_id": pending.patient or None, "on_behalf_of": pending.on_behalf_of,
                  "source_ip": source_ip(request), "request_id": request_id(request)}
        try:
            ticked = {s for line in scopes for s in line.split()}
            granted = [s for s in pending.offered if s in ticked]
            if form.get("decision") != "allow" or not any(context_of(s) for s in granted):
                await self.s.audit("consent", "failure", detail="denied", **fields)
                raise AccessDeniedError(description="The user did not allow access")
            withheld = [s for s in pending.offered if s not in granted]
            await self.s.audit("consent", "success",
                               detail=f"granted={' '.join(granted)} withheld={' '.join(withheld)}", **fields)
            await self.s.consents.remember(account.id, client.client_id, pending.patient,
                                           ConsentRecord(pending.offered, granted))
            return await self._issue_code(request, pending, client, session, granted)
        except OAuth2Error as exc:
            if not isinstance(exc, AccessDeniedError | TemporarilyUnavailableError):
                await self._audit_refusal(request, exc, client.client_id)
            return _redirect_error(pending.redirect_uri, exc, pending.state)

    async def _issue_code(
        self, request: Request, pending: Pending, client: Client, session: Any, granted: list[str]
    ) -> Response:
        account = session.account
        fhir_user = account.fhir_user
        if pending.on_behalf_of:
            fhir_user = pending.on_behalf_of
        elif pending.ehr_launch and pending.launch_fhir_user and account.kind == "staff":
            fhir_user = pending.launch_fhir_user
        data = CodeData(
            client_id=client.client_id, redirect_uri=pending.redirect_uri, code_challenge=pending.code_challenge,
            grant_id=new_grant_id(), scope=" ".join(granted), account_id=account.id, fhir_user=fhir_user,
            patient=pending.patient or None, encounter=pending.encounter if pending.ehr_launch else None,
            on_behalf_of=pending.on_behalf_of, nonce=pending.nonce, session_id=session.id,
            need_patient_banner=(not pending.ehr_launch) and self.s.settings.need_patient_banner,
            auth_time=int(self.s.now()),
        )
        code = await self.s.codes.issue(data)
        await self.s.audit("authorize.code", "success", account_id=account.id, fhir_user=fhir_user,
                           client_id=client.client_id, patient_id=data.patient, on_behalf_of=data.on_behalf_of,
                           source_ip=source_ip(request), request_id=request_id(request),
                           detail=f"grant={data.grant_id} scope={data.scope}")
        location = add_params_to_uri(pending.redirect_uri, [("code", code), ("state", pending.state)])
        return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})

    async def _audit_refusal(self, request: Request, exc: OAuth2Error, client_id: str | None) -> None:
        if isinstance(exc, TemporarilyUnavailableError):
            return
        try:
            await self.s.audit("authorize", "failure", client_id=client_id, source_ip=source_ip(request),
                               request_id=request_id(request),
                               detail=f"{exc.error}: {exc.get_error_description() or ''}")
        except TemporarilyUnavailableError:
            log.warning("authorize refusal could not be audited")


@dataclass
class _SelfLink:
    patient_id: str
    display_name: str | None = None
    related_person_id: str | None = None


def add_authorize_routes(router: APIRouter, server: AuthServer) -> None:
    flow = AuthorizeFlow(server)

    async def _guard(request: Request, coro: Any) -> Response:
        # The person's pages (picker, consent, refusals) in this browser's language, as the sign-in pages are;
        # what goes back to the app (RFC 6749 error codes and descriptions) stays as the standard has it.
        language = set_locale(browser_locale(request.cookies, request.headers.get("accept-language")))
        try:
            return await coro
        except _PageError as err:
            try:
                await server.audit("authorize", "failure", source_ip=source_ip(request),
                                   request_id=request_id(request), detail=err.title)
            except TemporarilyUnavailableError:
                return flow.error_page(request, _PageError(N_("Try again later"),
                                                           N_("The portal cannot record this step right now."), 503))
            return flow.error_page(request, err)
        except TemporarilyUnavailableError:
            return flow.error_page(request, _PageError(N_("Try again later"),
                                                       N_("The portal cannot record this step right now."), 503))
        except OAuth2Error as exc:  # malformed request before the redirect target is known
            return flow.error_page(request, _PageError(N_("Bad request"), N_("The app sent a request we cannot use."),
                                                       detail=exc.description or exc.error))
        finally:
            reset_locale(language)

    @router.get("/auth/authorize", tags=["oauth"])
    async def authorize_get(request: Request) -> Response:
        async def run() -> Response:
            return await flow.start(request, single_values(request.query_params.multi_items()))
        return await _guard(request, run())

    @router.post("/auth/authorize", tags=["oauth"])
    async def authorize_post(request: Request) -> Response:
        async def run() -> Response:
            return await flow.start(request, single_values(await read_form(request)))
        return await _guard(request, run())

    @router.post("/auth/authorize/patient", tags=["oauth"], include_in_schema=False)
    async def choose_patient(request: Request) -> Response:
        async def run() -> Response:
            return await flow.choose(request, single_values(await read_form(request)))
        return await _guard(request, run())

    @router.post("/auth/authorize/decision", tags=["oauth"], include_in_schema=False)
    async def decision(request: Request) -> Response:
        async def run() -> Response:
            fields = await read_form(request)
            scopes = [v for k, v in fields if k == "scope"]
            return await flow.decide(request, single_values(fields, repeatable=frozenset({"scope"})), scopes)
        return await _guard(request, run())
