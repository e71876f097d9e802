"""The staff area: the care team's side of the portal (inbox, request queues, patient charts), under
/portal/staff/. Same app, same look and the same backend-for-frontend SMART client design as the patient
portal, with practitioner accounts and `user/` scopes; everything staff do is a FHIR write through the
gateway, audited."""

from .core import StaffArea, StaffDeps, StaffVisit
from .router import build_staff_router
from .settings import PREFIX, StaffUiSettings

__all__ = ["PREFIX", "StaffArea", "StaffDeps", "StaffUiSettings", "StaffVisit", "build_staff_router"]
