"""OAuth 2 error responses (RFC 6749 §5.2) built on authlib's error classes."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
    UnsupportedResponseTypeError,
)
from fastapi.responses import JSONResponse

__all__ = [
    "NO_STORE",
    "AccessDeniedError",
    "InvalidClientError",
    "InvalidGrantError",
    "InvalidRequestError",
    "InvalidScopeError",
    "OAuth2Error",
    "TemporarilyUnavailableError",
    "UnauthorizedClientError",
    "UnsupportedGrantTypeError",
    "UnsupportedResponseTypeError",
    "describable",
    "error_parts",
    "error_response",
]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def describable(text: object, limit: int = 80) -> str:
    """Caller-supplied text as it may appear in an `error_description`: RFC 6749 §5.2 allows printable ASCII
    except `"` and `\\` there (authlib refuses anything else with a ValueError, which would be a 500), so any
    other character is shown as `?`, and long text is cut."""
    shown = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in str(text)[:limit])
    return shown + ("..." if len(str(text)) > limit else "")


class TemporarilyUnavailableError(OAuth2Error):
    """The one audit-failure type of smart_auth (OAuth and accounts alike): the audit trail cannot record
    the event, so the request is refused (503) rather than carried out unaudited."""

    error = "temporarily_unavailable"
    status_code = 503


class InvalidClientMetadataError(OAuth2Error):
    error = "invalid_client_metadata"


class InvalidRedirectUriError(OAuth2Error):
    error = "invalid_redirect_uri"


def error_parts(exc: OAuth2Error) -> tuple[int, dict[str, str], dict[str, str]]:
    """Status, RFC 6749 §5.2 body and headers of an OAuth error."""
    body = {"error": exc.error}
    description = exc.get_error_description()
    if description:
        # Some of authlib's errors name the caller's own words (grant_type=...) only here.
        body["error_description"] = describable(description, limit=500)
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClientError) and exc.status_code == 401:
        headers["WWW-Authenticate"] = getattr(exc, "www_authenticate", 'Basic realm="auth"')
    return exc.status_code or 400, body, headers


def error_response(exc: OAuth2Error) -> JSONResponse:
    status, body, headers = error_parts(exc)
    return JSONResponse(body, status_code=status, headers=headers)
