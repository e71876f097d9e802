"""Display settings (/portal/settings): large text and high contrast, kept with the account (not in the
record) so they follow the person to every device at their next sign-in, and applied at once here."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from smart_auth.accounts.preferences import CONTRASTS, TEXT_SIZES, DisplayPreferences
from web.i18n import gettext as _
from web.i18n import lazy_gettext as _l

from ..core import PREFIX, Portal, Visit

SETTINGS_PAGE = f"{PREFIX}/settings"
FIELDS = {"text_size": (TEXT_SIZES, _l("Please pick a text size.")),
          "contrast": (CONTRASTS, _l("Please pick standard or high contrast."))}


def display_errors(form: dict[str, str]) -> dict[str, list[str]]:
    return {name: [str(message)] for name, (allowed, message) in FIELDS.items() if form.get(name) not in allowed}


def add_settings_routes(router: APIRouter, portal: Portal) -> None:
    def settings_page(visit: Visit, status: int = 200, **context: object) -> Response:
        current = visit.session.extra.get("display") or DisplayPreferences().as_fields()
        context.setdefault("form", current)
        context.setdefault("errors", {})
        return visit.render("portal/settings.html", status, title=_("Display settings"),
                            saved=visit.request.query_params.get("saved") == "1", **context)

    async def settings(visit: Visit) -> Response:
        return settings_page(visit)

    router.get(SETTINGS_PAGE, include_in_schema=False)(portal.page(settings))

    @router.post(SETTINGS_PAGE, include_in_schema=False)
    async def save_settings(request: Request) -> Response:
        visit = await portal.visit(request)
        await visit.check_csrf()
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str) and k in FIELDS}
        errors = display_errors(form)
        if errors:
            return settings_page(visit, 400, form=form, errors=errors)
        # The language (chosen with the switch) is not on this form: keep it.
        chosen = DisplayPreferences.from_fields({**(visit.session.extra.get("display") or {}), **form})
        # Setting the same values twice is harmless, so a resent form needs no submission id.
        await portal.deps.accounts.save_display_preferences(visit.session.account_id, chosen)
        visit.session.extra["display"] = chosen.as_fields()
        await portal.store.save(visit.session)
        return RedirectResponse(f"{SETTINGS_PAGE}?saved=1", status_code=303)
