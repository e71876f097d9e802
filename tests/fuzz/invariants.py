"""What every answer must satisfy, whatever was asked: the suite's one definition of "handled well"."""

from __future__ import annotations

import httpx

from fhir_gateway.pipeline import AccessRecord

from .conftest import is_fhir_error, is_oauth_error

# The OAuth endpoints whose errors are RFC 6749 JSON.
OAUTH = ("/auth/token", "/auth/introspect", "/auth/revoke", "/auth/register")
# The /fhir reads that touch no patient data, so leave no audit record.
UNAUDITED_FHIR = {("GET", "/fhir/metadata"), ("GET", "/fhir/.well-known/smart-configuration")}


def audited(method: str, path: str) -> bool:
    """The pipeline records every /fhir request but the capability and discovery documents."""
    return (path == "/fhir" or path.startswith("/fhir/")) and (method, path) not in UNAUDITED_FHIR


def check(method: str, path: str, response: httpx.Response, records: list[AccessRecord]) -> None:
    where = f"{method} {path} -> {response.status_code} {response.text[:300]!r}"
    assert response.status_code < 500, f"server error: {where}"
    if path == "/fhir" or path.startswith("/fhir/"):
        if response.status_code >= 400 and method != "HEAD":  # a HEAD answer has no body
            assert is_fhir_error(response), f"not an OperationOutcome (application/fhir+json): {where}"
    if method == "POST" and path in OAUTH and response.status_code >= 400:
        assert is_oauth_error(response), f"not an RFC 6749 error: {where}"
    if path == "/portal/api/access-log" and method == "GET":
        # Not the pipeline: it records every answer and the refusals of a known caller (not of a bad token).
        assert len(records) == 1 or (response.status_code == 401 and not records), f"{len(records)}: {where}"
    elif audited(method, path):
        assert len(records) == 1, f"{len(records)} audit records, not 1: {where} {records}"
        assert records[0].outcome == ("0" if response.status_code < 400 else "4"), (where, records[0])
    else:
        assert records == [], f"audited a request that touches no patient data: {where}"
    assert "Traceback" not in response.text and "java." not in response.text, where
