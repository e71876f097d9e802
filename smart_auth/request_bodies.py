"""Reading request bodies: OAuth parameters, HTML forms (with the one CSRF check) and JSON objects.

Every malformed body (a multipart form without a boundary, a broken encoding, JSON nested a hundred
thousand deep) is the caller's error: `MalformedBody`, a 400, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from web import submitted_csrf_token, tokens_match

from .errors import InvalidRequestError, describable

JSON_BODY_LIMIT = 64 * 1024  # registration metadata and the small JSON APIs; a real client sends a few KB


class MalformedBody(InvalidRequestError):
    """The body could not be read as what the endpoint takes."""


class FormExpired(Exception):
    """A posted form without the CSRF token of the browser's (pre-)session."""


def single_values(items: Iterable[tuple[str, object]], *, repeatable: frozenset[str] = frozenset()) -> dict[str, str]:
    """RFC 6749 §3.1: no parameter may appear twice (except those listed); uploaded files are ignored."""
    out: dict[str, str] = {}
    for key, value in items:
        if not isinstance(value, str):
            continue
        if key in out and key not in repeatable:
            raise InvalidRequestError(description=f"Parameter {describable(key)} was given more than once")
        out[key] = value
    return out


async def read_form(request: Request) -> list[tuple[str, str]]:
    """Every text field of a posted form, in order. The one place a form body is parsed."""
    try:
        form = await request.form()
    except HTTPException as exc:  # Starlette's answer to a malformed multipart body
        raise MalformedBody(description=f"The form could not be read: {exc.detail}") from exc
    except (MultiPartException, ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(description="The form could not be read") from exc
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


async def oauth_form(request: Request, *, repeatable: frozenset[str] = frozenset()) -> dict[str, str]:
    """The parameters of an OAuth endpoint (form-encoded only, each given once)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise MalformedBody(description="Use application/x-www-form-urlencoded")
    return single_values(await read_form(request), repeatable=repeatable)


async def require_csrf(request: Request, *expected: str | None) -> None:
    """The one CSRF check of every HTML form (sign-in, enrolment, consent, ...): the token sent back in
    the form field or the X-CSRF-Token header must be one of the browser's own session tokens."""
    submitted = await submitted_csrf_token(request)
    if not any(tokens_match(submitted, token) for token in expected):
        raise FormExpired()


def parse_json_object(raw: bytes, *, limit: int = JSON_BODY_LIMIT) -> dict[str, Any]:
    """A JSON object from a request body; too large, too deeply nested or not an object is a 400."""
    if len(raw) > limit:
        raise MalformedBody(description=f"The body is larger than {limit} bytes")
    try:
        value = orjson.loads(raw)  # refuses nesting deeper than 1024 instead of recursing
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(description="The body must be a JSON object") from exc
    if not isinstance(value, dict):
        raise MalformedBody(description="The body must be a JSON object")
    return value


async def read_json_object(request: Request, *, limit: int = JSON_BODY_LIMIT) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise MalformedBody(description=f"The body is larger than {limit} bytes")
    return parse_json_object(await request.body(), limit=limit)
