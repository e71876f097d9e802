"""Caregiver access for a signed-in patient: the /auth/proxies page and its JSON API (same session cookie;
the CSRF token in the X-CSRF-Token header)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from web.i18n import gettext as _

from ..request_bodies import read_json_object, require_csrf
from .context import posted_form
from .flow import AccountsFlow
from .models import ProxyLink
from .proxy_links import RELATIONSHIPS, ProxyError, invite_caregiver, withdraw
from .sessions import Session

NO_STORE = {"Cache-Control": "no-store"}


def link_json(link: ProxyLink) -> dict[str, Any]:
    return {
        "id": link.id,
        "patient": f"Patient/{link.patient_id}",
        "relatedPerson": f"RelatedPerson/{link.related_person_id}",
        "status": link.status,
        "name": link.caregiver_name,
        "email": link.caregiver_email,
        "relationship": link.relationship,
    }


class CaregiverAccess(AccountsFlow):
    """What the page and the API share: the signed-in patient and their links."""

    async def patient_session(self, request: Request) -> Session | None:
        session = await self.ctx.sessions.current(request)
        if session is None or session.account.kind != "patient" or not session.account.patient_id:
            return None
        return session

    async def open_link(self, session: Session, link_id: str) -> ProxyLink | None:
        link = await self.ctx.store.get_proxy(link_id)
        if link is None or link.patient_id != session.account.patient_id or link.status == "withdrawn":
            return None
        return link

    async def invite(self, request: Request, session: Session, values: dict[str, str]) -> ProxyLink:
        record = await self.ctx.store.get_record(session.account.id)
        return await invite_caregiver(self.ctx, request, session.account,
                                      display_name=record.display_name if record else None, **values)


class CaregiverPages(CaregiverAccess):
    def add_routes(self, router: APIRouter) -> None:
        self.page(router, "/auth/proxies", self.overview, name="accounts_proxies")
        self.form(router, "/auth/proxies", self.invite_form)
        self.form(router, "/auth/proxies/{link_id}/withdraw", self.withdraw)

    async def _page(self, request: Request, session: Session, status: int = 200, **extra: Any) -> Response:
        links = await self.ctx.store.proxies_of_patient(session.account.patient_id or "")
        extra.setdefault("errors", {})
        extra.setdefault("values", {})
        relationships = {code: _(name) for code, name in RELATIONSHIPS.items()}
        return self.ctx.render(request, "proxies.html", status, session=session, links=links,
                               relationships=relationships, notice=request.query_params.get("notice"), **extra)

    async def overview(self, request: Request) -> Response:
        session = await self.ctx.sessions.current(request)
        if session is None:
            return RedirectResponse("/auth/login?next=/auth/proxies", status_code=303)
        if session.account.kind != "patient":
            return self.ctx.message(request, _("Not available"),
                                    _("Only patients can share access to their own record."), 403)
        return await self._page(request, session)

    async def invite_form(self, request: Request) -> Response:
        form = await posted_form(request)
        session = await self.patient_session(request)
        if session is None:
            return RedirectResponse("/auth/login?next=/auth/proxies", status_code=303)
        values = {k: form.raw(k) for k in ("name", "email", "relationship")}
        try:
            await self.invite(request, session, values)
        except ProxyError as exc:
            return await self._page(request, session, 400, errors={exc.field: [_(exc.message)]}, values=values)
        return RedirectResponse("/auth/proxies?notice=invited", status_code=303)

    async def withdraw(self, request: Request, link_id: str) -> Response:
        session = await self.patient_session(request)
        if session is None:
            return RedirectResponse("/auth/login?next=/auth/proxies", status_code=303)
        link = await self.open_link(session, link_id)
        if link is None:
            return self.ctx.message(request, _("Not found"), _("That caregiver access does not exist."), 404)
        await withdraw(self.ctx, request, session.account, link)
        return RedirectResponse("/auth/proxies?notice=withdrawn", status_code=303)


def _api_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=NO_STORE)


class CaregiverApi(CaregiverAccess):
    def add_routes(self, router: APIRouter) -> None:
        router.add_api_route("/auth/api/proxies", self.list, methods=["GET"])
        router.add_api_route("/auth/api/proxies", self.invite_json, methods=["POST"])
        router.add_api_route("/auth/api/proxies/{link_id}", self.withdraw_json, methods=["DELETE"])

    async def _session(self, request: Request, *, changes: bool) -> Session | None:
        session = await self.patient_session(request)
        if session is not None and changes:
            await require_csrf(request, session.csrf_token)
        return session

    async def list(self, request: Request) -> Response:
        session = await self._session(request, changes=False)
        if session is None:
            return _api_error(401, "login_required", "Sign in as a patient first")
        links = await self.ctx.store.proxies_of_patient(session.account.patient_id or "")
        return JSONResponse({"proxies": [link_json(lk) for lk in links], "csrf_token": session.csrf_token},
                            headers=NO_STORE)

    async def invite_json(self, request: Request) -> Response:
        session = await self._session(request, changes=True)
        if session is None:
            return _api_error(401, "login_required", "Sign in as a patient first")
        body = await read_json_object(request)
        values = {k: str(body.get(k) or "") for k in ("name", "email", "relationship")}
        try:
            link = await self.invite(request, session, values)
        except ProxyError as exc:
            return _api_error(400, "invalid_request", f"{exc.field}: {exc.message}")
        return JSONResponse(link_json(link), status_code=201, headers=NO_STORE)

    async def withdraw_json(self, request: Request, link_id: str) -> Response:
        session = await self._session(request, changes=True)
        if session is None:
            return _api_error(401, "login_required", "Sign in as a patient first")
        link = await self.open_link(session, link_id)
        if link is None:
            return _api_error(404, "not_found", "No such caregiver access")
        revoked = await withdraw(self.ctx, request, session.account, link)
        return JSONResponse({"id": link.id, "status": "withdrawn", "revoked_grants": revoked}, headers=NO_STORE)
