"""Every portal route in one APIRouter (under /portal), each page module adding its own."""

from __future__ import annotations

from fastapi import APIRouter

from .core import Portal
from .pages.access_log import add_access_log_routes
from .pages.appointments import add_appointment_routes
from .pages.billing import add_billing_routes
from .pages.caregivers import add_caregiver_routes
from .pages.dashboard import add_dashboard_routes
from .pages.downloads import add_download_routes
from .pages.forms import add_form_routes
from .pages.guide import add_guide_routes
from .pages.help import add_help_routes
from .pages.language import add_language_routes
from .pages.medications import add_medication_routes
from .pages.menu import add_menu_routes
from .pages.messages import add_message_routes
from .pages.notebook import add_notebook_routes
from .pages.profile import add_profile_routes
from .pages.record import add_record_routes
from .pages.referrals import add_referral_routes
from .pages.results import add_results_routes
from .pages.settings import add_settings_routes
from .pages.signin import add_signin_routes
from .pages.todo import add_todo_routes


def build_portal_router(portal: Portal) -> APIRouter:
    router = APIRouter(route_class=portal.route_class(), tags=["portal"], include_in_schema=False)
    add_signin_routes(router, portal)
    add_dashboard_routes(router, portal)
    add_record_routes(router, portal)
    add_results_routes(router, portal)
    add_message_routes(router, portal)
    add_menu_routes(router, portal)
    add_profile_routes(router, portal)
    add_appointment_routes(router, portal)
    add_medication_routes(router, portal)
    add_referral_routes(router, portal)
    add_billing_routes(router, portal)
    add_form_routes(router, portal)
    add_todo_routes(router, portal)
    add_download_routes(router, portal)
    add_access_log_routes(router, portal)
    add_caregiver_routes(router, portal)
    add_notebook_routes(router, portal)
    add_guide_routes(router, portal)
    add_help_routes(router, portal)
    add_settings_routes(router, portal)
    add_language_routes(router, portal)
    return router
