"""The portal registers itself as a confidential SMART client of our own authorization server.

Its secret is generated on first run into the state directory (0600, never committed) and re-used on
every start; the registry keeps only its hash. Every replica writes the same record, so starting twice
(or after the state Redis was emptied) is harmless.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Protocol

from smart_auth.clients import SECRET_BASIC, Client, hash_secret
from smart_auth.secret_files import read_or_create_secret

from .settings import PortalUiSettings

SECRET_FILE = "portal-client-secret"  # noqa: S105 - a file name, not a secret
# What the portal asks for, for as long as the person stays signed in: reads of their own (or their chosen
# patient's) whole record, and the writes its pages make: messages (sending, marking one as read), the
# patient's own contact details, allergies they report, refill requests, referral requests, payments
# (paying a statement), appointments (booking, moving, cancelling), answers to the clinic's forms and the
# entries of their health notebook (Observations they write, keep private or share, and change).
SCOPES = ("openid fhirUser launch/patient online_access patient/*.rs patient/Communication.cu patient/Patient.u "
          "patient/AllergyIntolerance.c patient/MedicationRequest.c patient/ServiceRequest.c "
          "patient/PaymentReconciliation.c patient/Appointment.cu patient/QuestionnaireResponse.cu "
          "patient/Observation.cu")


class ClientRegistry(Protocol):
    """smart_auth's ClientStore satisfies it."""

    async def get(self, client_id: str | None) -> Client | None: ...

    async def save(self, client: Client) -> None: ...


def client_secret(state_dir: Path, secret_file: str = SECRET_FILE) -> str:
    return read_or_create_secret(state_dir / secret_file, lambda: secrets.token_urlsafe(32).encode()).decode().strip()


def portal_client(settings: PortalUiSettings, secret: str, created_at: int | None = None, *, scopes: str = SCOPES,
                  registered_by: str = "portal") -> Client:
    return Client(
        client_id=settings.oauth_client_id, client_name=settings.client_name, token_endpoint_auth_method=SECRET_BASIC,
        redirect_uris=[settings.redirect_uri], grant_types=["authorization_code", "refresh_token"],
        scope=scopes, secret_hash=hash_secret(secret), created_at=created_at or int(time.time()),
        registered_by=registered_by, first_party=True,
    )


async def ensure_registered(registry: ClientRegistry, settings: PortalUiSettings, *, scopes: str = SCOPES,
                            secret_file: str = SECRET_FILE, registered_by: str = "portal") -> str:
    """Register (or bring up to date) the portal's client (or the staff area's: its own scopes, secret
    file and name); returns its secret."""
    secret = client_secret(settings.state_dir, secret_file)
    existing = await registry.get(settings.oauth_client_id)
    wanted = portal_client(settings, secret, existing.created_at if existing else None, scopes=scopes,
                           registered_by=registered_by)
    if existing != wanted:
        await registry.save(wanted)
    return secret
