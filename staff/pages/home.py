"""The staff home page: the queues the person's role works."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ..core import StaffArea, StaffVisit
from ..settings import PREFIX


def add_home_routes(router: APIRouter, area: StaffArea) -> None:
    async def home(visit: StaffVisit) -> Response:
        return visit.render("staff/home.html", title="Your work")

    router.get(f"{PREFIX}/", include_in_schema=False)(area.page(home))
