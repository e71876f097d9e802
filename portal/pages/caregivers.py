"""Caregivers: a caregiver chooses whose record to open; a patient sees (and can withdraw) who may see theirs.

Inviting and withdrawing are smart_auth's proxy flows (/auth/proxies): the withdraw buttons here post to
them with the sign-in session's own form token, so there is one way to share a record, with one look.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from smart_auth.accounts.proxies import RELATIONSHIPS
from web.i18n import gettext as _

from ..core import PREFIX, Portal, Visit, request_id


def add_caregiver_routes(router: APIRouter, portal: Portal) -> None:
    accounts = portal.deps.accounts

    async def caregivers(visit: Visit) -> Response:
        session = visit.session
        records = await accounts.patients_for(session.account_id)
        own_record = session.fhir_user == f"Patient/{session.patient_id}"
        proxies = await accounts.proxies_of_patient(session.patient_id) if own_record else []
        signin = await portal.deps.signins.current(visit.request)
        return visit.render("portal/caregivers.html", title=_("Caregivers"), records=records, proxies=proxies,
                            own_record=own_record, relationships=RELATIONSHIPS,
                            signin_csrf=signin.csrf_token if signin else "")

    async def switch(visit: Visit) -> Response:
        """Open another record: this portal session ends (its tokens revoked) and a new sign-in to the
        portal starts, where the person picks the record; their sign-in itself carries on."""
        await visit.check_csrf()
        await portal.end_session(visit.session, request_id(visit.request))
        response = RedirectResponse(f"{PREFIX}/login?next=%2Fportal%2F", status_code=303)
        portal.clear_cookie(response)
        return response

    router.get(f"{PREFIX}/caregivers", include_in_schema=False)(portal.page(caregivers))
    router.post(f"{PREFIX}/switch", include_in_schema=False)(portal.page(switch))
