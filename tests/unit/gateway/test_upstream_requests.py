"""The EHR client builds a bodiless request itself (the hot path of every read and search): it must be the
request httpx's own `build_request` makes from the same arguments, byte for byte, whatever the params."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_gateway.upstream import Upstream, make_client

EHR = "http://ehr.test:8080/fhir"


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    return Upstream(make_client(EHR, connect_timeout=1.5, read_timeout=7, max_connections=3), EHR)


def as_httpx_builds(upstream: Upstream, method: str, path: str, params: Any, headers: dict[str, str]) -> httpx.Request:
    return upstream.client.build_request(method, path.lstrip("/"), params=params, headers=headers)


def same(ours: httpx.Request | None, theirs: httpx.Request) -> None:
    assert ours is not None
    assert (ours.method, str(ours.url)) == (theirs.method, str(theirs.url))
    assert ours.headers.multi_items() == theirs.headers.multi_items()
    assert ours.extensions == theirs.extensions


@pytest.mark.parametrize(("path", "params"), [
    ("Patient/pt-1", None),
    ("/Patient/pt-1", None),
    ("Observation", [("patient", "pt-1"), ("category", "laboratory"), ("_sort", "-date"), ("_count", "5")]),
    ("Observation", {"code": "http://loinc.org|4548-4,718-7", "date": "ge2024-01-01"}),
    ("", [("_getpages", "abc-123"), ("_getpagesoffset", "20")]),
    ("Patient/pt-1/$everything", [("_count", "50")]),
    ("Patient/pt-1/_history", []),
    ("Condition", "patient=pt-1&clinical-status=active"),
])
def test_reads_and_searches_are_built_exactly_as_httpx_builds_them(upstream: Upstream, path: str, params: Any) -> None:
    headers = {"X-Request-Id": "req-1", "Accept": "application/fhir+json;q=1"}
    same(upstream._build_plain("GET", path, params, headers), as_httpx_builds(upstream, "GET", path, params, headers))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=24)), max_size=6))
def test_any_search_params_encode_as_httpx_encodes_them(upstream: Upstream, params: list[tuple[str, str]]) -> None:
    ours = upstream._build_plain("GET", "Observation", params, {})
    same(ours, as_httpx_builds(upstream, "GET", "Observation", params, {}))


@pytest.mark.parametrize("path", ["Observation?patient=pt-1", "http://other.test/fhir/Patient"])
def test_a_query_in_the_path_or_an_absolute_address_is_left_to_httpx(upstream: Upstream, path: str) -> None:
    # httpx merges params into a query already in the path, and takes an absolute address as it is.
    assert upstream._build_plain("GET", path, [("_count", "5")], {}) is None
