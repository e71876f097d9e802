"""One CSRF helper for every HTML form (synchronizer token held in the server-side session).

The token lives in the session (sign-in session, pre-session or portal session); each form carries it
in a hidden field and each state-changing request must send it back, in that field or, for scripts, in
the `X-CSRF-Token` header. Comparison is constant-time.
"""

from __future__ import annotations

import hmac
import secrets

from markupsafe import Markup, escape
from starlette.requests import Request

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_input(token: str) -> Markup:
    """The hidden form field for templates: `{{ csrf_field }}`."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(token))


def tokens_match(submitted: str | None, expected: str | None) -> bool:
    # As bytes: compare_digest refuses non-ASCII str, and a form may carry anything.
    return bool(submitted) and bool(expected) and hmac.compare_digest(str(submitted).encode(), str(expected).encode())


async def submitted_csrf_token(request: Request) -> str | None:
    """The token a request sent back: the header, else the form field (a malformed form counts as none)."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in FORM_TYPES:
        return None
    try:
        form = await request.form()
    except Exception:  # a malformed body (e.g. multipart without a boundary) carries no token
        return None
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else None
