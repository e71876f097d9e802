"""The first-use guide (/portal/guide): shown once per account right after its first sign-in, then
whenever the person opens it from the help page. Skipping is a plain link on to where they were going
(it works without JavaScript; the account has already been marked as having seen it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from web.i18n import gettext as _

from ..core import Portal, Visit
from ..guide import GUIDE_PAGE, stops_for
from ..safe_next import safe_next


def add_guide_routes(router: APIRouter, portal: Portal) -> None:
    async def guide(visit: Visit) -> Response:
        next_url = safe_next(visit.request.query_params.get("next", ""))
        caregiver = visit.session.is_caregiver
        return visit.render("portal/guide.html", title=_("Welcome to your patient portal"), next_url=next_url,
                            stops=stops_for(caregiver), caregiver=caregiver)

    router.get(GUIDE_PAGE, include_in_schema=False)(portal.page(guide))
