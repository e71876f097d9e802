"""The "All pages" page: every part of the portal, grouped, each with a line saying what it is for."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from web.i18n import lazy_gettext as _l

from ..core import Portal, Visit
from ..menu import MENU_PAGE, grouped_places


def add_menu_routes(router: APIRouter, portal: Portal) -> None:
    async def menu(visit: Visit) -> Response:
        return visit.render("portal/menu.html", title=_l("All pages"), groups=grouped_places())

    router.get(MENU_PAGE, include_in_schema=False)(portal.page(menu))
