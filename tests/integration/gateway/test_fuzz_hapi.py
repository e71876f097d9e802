"""A short fuzz against the real EHR (uvicorn in its own process, real HAPI, private Redis): generated ids and
search parameters, sent with a real patient token, get no 5xx (what the gateway forwards, HAPI can answer),
and each request leaves exactly one audit event in the stream. The long, wide fuzz is tests/fuzz (respx as
the EHR); this one checks that what passes the gateway's edge does not break the real server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import GatewayServer, RedisServer
from tests.fuzz.conftest import FUZZ
from tests.fuzz.test_edge_properties import TYPES, odd_text, search_params
from tests.integration.audit.conftest import request_id_of

from .helpers import auth, mint
from .test_robustness_hapi import OWNER, SCOPES, audited, state_redis  # noqa: F401 (module fixtures)

pytestmark = pytest.mark.integration

SETTINGS = settings(FUZZ, max_examples=min(FUZZ.max_examples, 25))


class Sender:
    def __init__(self, gw: GatewayServer, stream: str, redis_url: str) -> None:
        self.http = httpx.Client(base_url=gw.url, headers=auth(mint(gw, SCOPES, patient=OWNER)), timeout=60)
        self.stream = stream
        self.redis = redis.Redis.from_url(redis_url)

    def __call__(self, url: str) -> httpx.Response:
        request_id = f"fz-{uuid.uuid4().hex[:12]}"
        response = self.http.get(url, headers={"X-Request-Id": request_id})
        where = f"GET {url} -> {response.status_code} {response.text[:300]!r}"
        assert response.status_code < 500, where
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/fhir+json"), where
            assert response.json()["resourceType"] == "OperationOutcome", where
        # The event is in the stream before the answer leaves.
        events = [json.loads(fields[b"event"]) for _id, fields in self.redis.xrevrange(self.stream, count=50)]
        assert [request_id_of(e) for e in events].count(request_id) == 1, where
        return response


@pytest.fixture(scope="module")
def send(audited: tuple[GatewayServer, str], state_redis: RedisServer) -> Iterator[Sender]:  # noqa: F811
    sender = Sender(audited[0], audited[1], state_redis.url)
    yield sender
    sender.http.close()
    sender.redis.close()


def encoded(segment: str) -> str:
    return quote(segment.encode("utf-8", "surrogatepass"), safe="")


@SETTINGS
@given(rtype=st.sampled_from(TYPES), params=search_params)
def test_generated_searches_against_hapi(send: Sender, rtype: str, params: list[tuple[str, str]]) -> None:
    query = "&".join(f"{encoded(k)}={encoded(v)}" for k, v in params)
    send(f"/fhir/{rtype}" + (f"?{query}" if query else ""))


@SETTINGS
@given(rtype=st.sampled_from(TYPES), rid=odd_text, tail=st.sampled_from(["", "/_history", "/_history/1"]))
def test_generated_ids_against_hapi(send: Sender, rtype: str, rid: str, tail: str) -> None:
    send(f"/fhir/{rtype}/{encoded(rid)}{tail}")
