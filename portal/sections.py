"""A page made of parts that load at once and fail alone: one slow or broken FHIR search leaves the
rest of the page standing, with that part saying it cannot be shown right now."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .fhir import FhirProblem, NotFound, RecordUnavailable, Refused, SessionEnded

T = TypeVar("T")


@dataclass
class Section(Generic[T]):
    value: T | None
    unavailable: bool = False

    @property
    def ok(self) -> bool:
        return not self.unavailable


async def load_sections(**loads: Awaitable[Any]) -> dict[str, Section[Any]]:
    """Run every load concurrently. A part the record system cannot answer becomes unavailable; a
    session that ended ends the page (the person must sign in again)."""
    names = list(loads)
    results = await asyncio.gather(*loads.values(), return_exceptions=True)
    out: dict[str, Section[Any]] = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, SessionEnded):
            raise result
        if isinstance(result, NotFound | Refused):
            out[name] = Section(None, unavailable=True)
        elif isinstance(result, RecordUnavailable | FhirProblem):
            out[name] = Section(None, unavailable=True)
        elif isinstance(result, BaseException):
            raise result
        else:
            out[name] = Section(result)
    return out
