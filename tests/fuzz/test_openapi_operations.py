"""schemathesis over every operation of our own /openapi.json (the document of the app `create_app` builds):
valid and invalid requests generated from the document, sent with a real patient token. Every answer must be
one the document allows, never a 5xx, an OperationOutcome on /fhir errors, an RFC 6749 error on the OAuth
endpoints, and leave exactly one audit record where the pipeline audits."""

from __future__ import annotations

from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    status_code_conformance,
)

from .conftest import FUZZ, OPERATION_EXAMPLES, PUBLIC, FuzzApp, openapi_document
from .invariants import OAUTH, check

CONFORMANCE = [status_code_conformance, content_type_conformance, response_headers_conformance]
REQUEST_ARGS = ("method", "url", "headers", "files", "data", "params", "auth", "cookies", "json")


DOCUMENT = openapi_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.update(base_url=PUBLIC)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=OPERATION_EXAMPLES)


def test_the_document_fuzzed_is_the_one_served(fuzz_app: FuzzApp) -> None:
    response, _ = fuzz_app.send(httpx.Request("GET", PUBLIC + "/openapi.json"))
    assert response.json() == DOCUMENT
    assert len([op for ops in DOCUMENT["paths"].values() for op in ops]) >= 50


def to_httpx(kwargs: dict[str, Any]) -> httpx.Request:
    """The request schemathesis built (requests-style arguments), byte for byte, as an httpx request."""
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in REQUEST_ARGS}).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else (prepared.body or b"")
    # Header values as the bytes requests would send (latin-1), whatever characters were generated.
    headers = [(k, v.encode("latin-1", "replace") if isinstance(v, str) else v) for k, v in prepared.headers.items()]
    return httpx.Request(prepared.method or "GET", prepared.url or PUBLIC, headers=headers, content=body)


@schema.parametrize()
@settings(FUZZ, max_examples=OPERATION_EXAMPLES)
def test_every_operation_answers_as_documented(case: Any, fuzz_app: FuzzApp) -> None:
    headers = {} if "Authorization" in (case.headers or {}) else {"Authorization": f"Bearer {fuzz_app.token()}"}
    request = to_httpx(case.as_transport_kwargs(base_url=PUBLIC, headers=headers))
    response, records = fuzz_app.send(request)
    check(request.method, request.url.path, response, records)
    # The FHIR operations and the OAuth token/introspect/revoke/register endpoints document every answer they
    # give; the HTML pages (authorize, sign-in, enrolment), discovery and ops routes document only their
    # success, so for them "no 5xx" and the checks above are the rule.
    documented = "fhir" in case.operation.definition.raw.get("tags", []) or request.url.path in OAUTH
    case.validate_response(response, checks=[not_a_server_error, *(CONFORMANCE if documented else [])])
