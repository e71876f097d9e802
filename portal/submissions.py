"""One-off submission ids: every form that writes carries one, and it becomes the write's Idempotency-Key
(and, where the resource has one, its identifier), so a form sent twice (a double click, a retry after a
lost answer) writes once."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

from .core import FormExpired

SUBMISSION = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_submission() -> str:
    return secrets.token_urlsafe(18)


def submission_of(fields: Mapping[str, str]) -> str:
    """The form's submission id; a form without a well-formed one has expired (reload and try again)."""
    value = fields.get("submission", "")
    if not SUBMISSION.fullmatch(value):
        raise FormExpired()
    return value
