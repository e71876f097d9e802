"""Cleaning the EHR's OperationOutcomes before they reach a caller (no internal detail leaks)."""

from __future__ import annotations

import re
from typing import Any

_HAPI_CODE = re.compile(r"\bHAPI-\d+:\s*")
_INTERNAL = re.compile(r"(Exception|\bat [a-z]+\.[a-z]+\.|java\.|org\.hibernate|SQL|ca\.uhn)", re.IGNORECASE)
MAX_DIAGNOSTICS = 300


def clean_outcome(outcome: Any, fallback: str) -> dict[str, Any]:
    issues = []
    for issue in (outcome or {}).get("issue", []) if isinstance(outcome, dict) else []:
        text = _HAPI_CODE.sub("", str(issue.get("diagnostics", "")))
        if not text or _INTERNAL.search(text):
            text = fallback
        issues.append({
            "severity": issue.get("severity", "error"),
            "code": issue.get("code", "processing"),
            "diagnostics": text[:MAX_DIAGNOSTICS],
        })
    if not issues:
        issues = [{"severity": "error", "code": "processing", "diagnostics": fallback}]
    return {"resourceType": "OperationOutcome", "issue": issues}
