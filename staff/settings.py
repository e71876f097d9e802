"""The staff area's settings (`PORTAL_STAFF_*`): the portal's, with its own OAuth client, cookie and name."""

from __future__ import annotations

import hashlib

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from portal.settings import PortalUiSettings

PREFIX = "/portal/staff"


class StaffUiSettings(PortalUiSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_STAFF_", extra="ignore")

    client_id: str | None = Field(
        default=None,
        description="the staff area's OAuth client id; unset: 'staff-portal-' plus a fingerprint of the public URL",
    )
    client_name: str = Field(default="the staff portal", description="how the access log names the staff area")
    cookie_name: str = "portal_staff"
    # Staff sessions are shorter than a patient's: a shared workstation must not stay signed in for hours.
    max_session_seconds: int = Field(default=10 * 3600, description="a staff session never outlives this")

    @property
    def oauth_client_id(self) -> str:
        if self.client_id:
            return self.client_id
        return "staff-portal-" + hashlib.sha256(self.public_url.rstrip("/").encode()).hexdigest()[:10]

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + PREFIX + "/callback"
