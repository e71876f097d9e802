"""The patient web portal (/portal/): server-rendered pages over our own gateway, as a SMART client.

Design map:
- `settings.py`      PortalUiSettings (`PORTAL_UI_*`), a section of the app's PortalSettings
- `client_registration.py`  the portal's confidential client, registered at start-up (secret in the state dir)
- `oauth.py`         authorization code + PKCE, refresh, revoke (backend-for-frontend: tokens stay here)
- `sessions.py`      portal sessions in Redis, sealed by `token_box.py` (AES-GCM); sign-ins in progress
- `gateway_client.py`  one httpx client: in-process ASGI transport to the gateway, or a remote base URL
- `fhir.py`          the per-request FHIR client (access token, signed browser address, stale answers)
- `core.py`          Portal (the long-lived parts) and Visit (one signed-in request); the error pages
- `pages/*.py`       one module per part of the portal; `router.py` puts them together
- `templates/portal/*.html`  the pages, extending the product's one `base.html`
Patient-facing wording of FHIR lives in `mappers/`, never here.
"""

from .core import AccountDirectory, Portal, PortalDeps, SignInSessions
from .router import build_portal_router
from .settings import PortalUiSettings

__all__ = ["AccountDirectory", "Portal", "PortalDeps", "PortalUiSettings", "SignInSessions", "build_portal_router"]
