"""A staff member's role, read from the EHR (their active PractitionerRole) when they authorize an app:
it decides which scopes they may hold (scope_policy.narrow_for_staff)."""

from __future__ import annotations

import logging
from typing import Any

from mappers.staff import staff_role

from .deps import EhrClient
from .errors import TemporarilyUnavailableError

log = logging.getLogger("smart_auth.staff_roles")


async def staff_role_code(ehr: EhrClient, fhir_user: str, request_id: str | None = None) -> str | None:
    """`clinician`, `nurse`, `front-desk`, `billing`, or None when the Practitioner holds no staff role."""
    if not fhir_user.startswith("Practitioner/"):
        return None
    try:
        bundle = await ehr.search("PractitionerRole", [("practitioner", fhir_user), ("active", "true"),
                                                       ("_count", "50")], request_id)
    except Exception as exc:  # the EHR's client raises its own errors; any of them means "cannot tell now"
        log.warning("staff role look-up failed: %s", type(exc).__name__)
        raise TemporarilyUnavailableError(description="The staff directory cannot be read right now") from exc
    roles: list[Any] = [e.get("resource") for e in bundle.get("entry") or [] if isinstance(e, dict)]
    found = staff_role([r for r in roles if isinstance(r, dict)], fhir_user)
    return found.code if found else None
