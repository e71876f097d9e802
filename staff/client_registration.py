"""The staff area registers itself as its own confidential SMART client, with `user/` scopes.

A separate client from the patient portal's: its own secret (generated on first run into the state
directory, 0600), its own redirect URI, and scopes no patient account can ever be granted (the
authorization server gives `user/` scopes to staff accounts only, and cuts them down by role).
"""

from __future__ import annotations

from portal.client_registration import ClientRegistry, client_secret, ensure_registered

from .settings import StaffUiSettings

SECRET_FILE = "staff-client-secret"  # noqa: S105 - a file name, not a secret
# Reads of the records of the patients the person cares for, and the writes the staff pages make:
# messages (replies, marking done), work items (assigning, finishing), refill decisions, referral and
# allergy decisions, insurance changes. The gateway still decides each request (care team, write rules).
SCOPES = ("openid fhirUser online_access user/*.rs user/Communication.cu user/Task.cu user/MedicationRequest.cu "
          "user/ServiceRequest.cu user/AllergyIntolerance.u user/Coverage.cu")


async def ensure_staff_client(registry: ClientRegistry, settings: StaffUiSettings) -> str:
    return await ensure_registered(registry, settings, scopes=SCOPES, secret_file=SECRET_FILE,
                                   registered_by="staff-portal")


def staff_secret(settings: StaffUiSettings) -> str:
    return client_secret(settings.state_dir, SECRET_FILE)
