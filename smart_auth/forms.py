"""Reading OAuth request parameters (RFC 6749 §3.1: no parameter may appear twice)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request

from .errors import InvalidRequestError


def single_values(items: Iterable[tuple[str, object]], *, repeatable: frozenset[str] = frozenset()) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in items:
        if not isinstance(value, str):
            continue  # uploaded files have no place in OAuth requests
        if key in out and key not in repeatable:
            raise InvalidRequestError(description=f"Parameter {key} was given more than once")
        out[key] = value
    return out


async def oauth_form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise InvalidRequestError(description="Use application/x-www-form-urlencoded")
    form = await request.form()
    return single_values(form.multi_items())
