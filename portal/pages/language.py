"""The language switch on every portal page (/portal/language).

Signed in, the choice is a form (with the session's CSRF token): it is kept with the account's display
settings, so it follows the person to every device and wins over the language in their health record, and
it applies at once to this session. Before sign-in and after sign-out it is a link that only sets this
browser's language cookie (nothing of the account changes without a signed-in form).
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from locales import supported
from smart_auth.accounts.preferences import DisplayPreferences
from web.i18n import remember_locale

from ..core import PREFIX, Portal
from ..safe_next import safe_next

LANGUAGE_PAGE = f"{PREFIX}/language"


def add_language_routes(router: APIRouter, portal: Portal) -> None:
    def back(next_url: str, code: str | None) -> Response:
        response = RedirectResponse(safe_next(next_url), status_code=303)
        if code:
            remember_locale(response, code, secure=portal.settings.https)
        return response

    @router.post(LANGUAGE_PAGE, include_in_schema=False)
    async def choose_language(request: Request) -> Response:
        visit = await portal.visit(request)
        await visit.check_csrf()
        form = await request.form()
        code, next_url = supported(form.get("lang")), str(form.get("next") or "")
        if code is None:
            return back(next_url, None)
        session = visit.session
        chosen = replace(DisplayPreferences.from_fields(session.extra.get("display") or {}), language=code)
        # Choosing the same language twice is harmless, so a resent form needs no submission id.
        await portal.deps.accounts.save_display_preferences(session.account_id, chosen)
        session.extra["display"] = chosen.as_fields()
        session.extra["lang"] = code
        await portal.store.save(session)
        return back(next_url, code)

    @router.get(LANGUAGE_PAGE, include_in_schema=False)
    async def language_link(request: Request, lang: str = "", next: str = "") -> Response:
        return back(next, supported(lang))
