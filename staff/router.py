"""Every staff route in one APIRouter (under /portal/staff), each page module adding its own."""

from __future__ import annotations

from fastapi import APIRouter

from .core import StaffArea
from .pages.chart import add_chart_routes
from .pages.home import add_home_routes
from .pages.inbox import add_inbox_routes
from .pages.invitations import add_invitation_routes
from .pages.metrics import add_metrics_routes
from .pages.queues import add_queue_routes
from .pages.signin import add_signin_routes


def build_staff_router(area: StaffArea) -> APIRouter:
    router = APIRouter(route_class=area.route_class(), tags=["staff"], include_in_schema=False)
    add_signin_routes(router, area)
    add_home_routes(router, area)
    add_chart_routes(router, area)
    add_inbox_routes(router, area)
    extra = area.deps.extra or {}
    if "invitations" in extra:
        add_invitation_routes(router, area, extra["invitations"])
    if "service_metrics" in extra:
        add_metrics_routes(router, area, extra["service_metrics"])
    add_queue_routes(router, area)
    return router
