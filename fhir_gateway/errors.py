"""FHIR errors: every failure under /fhir leaves as an OperationOutcome, never a bare 500."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

FHIR_JSON = "application/fhir+json"


def operation_outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


class FHIRError(Exception):
    """Raise anywhere under /fhir; the exception handler renders it as an OperationOutcome."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        *,
        headers: dict[str, str] | None = None,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.headers = headers or {}
        self.outcome = outcome

    def response(self) -> JSONResponse:
        body = self.outcome or operation_outcome("error", self.code, self.diagnostics)
        return JSONResponse(body, status_code=self.status, headers=self.headers, media_type=FHIR_JSON)


class PolicyRefusal(FHIRError):
    """The access policy refuses this kind of request for this caller (its scopes, the type, the
    interaction): a refusal about the caller's own grant, never about anyone else's record."""


def not_found(resource_type: str, resource_id: str) -> FHIRError:
    # The same words whether the resource is missing or outside the caller's compartment.
    return FHIRError(404, "not-found", f"Resource {resource_type}/{resource_id} is not known")


def forbidden(diagnostics: str) -> FHIRError:
    return FHIRError(403, "forbidden", diagnostics)


def unauthorized(diagnostics: str, error: str = "invalid_token") -> FHIRError:
    return FHIRError(
        401,
        "login",
        diagnostics,
        headers={"WWW-Authenticate": f'Bearer realm="fhir", error="{error}"'},
    )


def invalid(diagnostics: str) -> FHIRError:
    return FHIRError(400, "invalid", diagnostics)


def not_supported(diagnostics: str) -> FHIRError:
    return FHIRError(400, "not-supported", diagnostics)
