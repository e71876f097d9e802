"""The HTML shell every page of the product shares: one template environment and base layout, one
stylesheet, one CSRF helper and the security headers of every response.

`smart_auth` (sign-in, enrolment, consent, caregiver pages) and `portal` (the patient and staff web app)
both render through it, so the product has one look and one set of protections. `tls.py` holds the one
TLS trust context every outgoing HTTP client shares; `i18n.py` the language of the request being answered
(English and Spanish, see `locales`). It imports nothing of ours but `locales`, the word catalogues.
"""

from .csrf import CSRF_FIELD, csrf_input, new_csrf_token, submitted_csrf_token, tokens_match
from .security import SecurityHeadersMiddleware
from .static import STATIC_PREFIX, mount_static
from .templates import PageRenderer, make_environment
from .tls import client_tls

__all__ = [
    "CSRF_FIELD",
    "STATIC_PREFIX",
    "PageRenderer",
    "SecurityHeadersMiddleware",
    "client_tls",
    "csrf_input",
    "make_environment",
    "mount_static",
    "new_csrf_token",
    "submitted_csrf_token",
    "tokens_match",
]
