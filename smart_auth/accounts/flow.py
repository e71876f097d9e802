"""The base of every accounts flow class: the shared context and how its steps become routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from .context import CsrfCheck, Ctx

Handler = Callable[..., Awaitable[Response]]


class AccountsFlow:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def add_routes(self, router: APIRouter) -> None:
        raise NotImplementedError

    def page(self, router: APIRouter, path: str, handler: Handler, name: str | None = None) -> None:
        router.add_api_route(path, handler, methods=["GET"], name=name)

    def form(self, router: APIRouter, path: str, handler: Handler) -> None:
        """A form post: the CSRF dependency runs before the step."""
        router.add_api_route(path, handler, methods=["POST"], dependencies=[Depends(CsrfCheck(self.ctx.sessions))])
