"""A host process that configures OpenTelemetry gets nothing of a request from the gateway: a span would
carry the request's URL (a patient id, search terms) out of the process."""

from __future__ import annotations

from typing import Any

import pytest
import respx
from opentelemetry import trace

from .conftest import Harness, bundle, obs

PT = "pt-0001"


class RecordingProvider(trace.TracerProvider):
    """A configured provider (not one of OpenTelemetry's own placeholders) that notes who asks it for a tracer."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> trace.Tracer:
        self.asked.append(instrumenting_module_name)
        return trace.NoOpTracer()


async def test_a_configured_tracer_provider_sees_no_request(harness: Harness, ehr: respx.MockRouter,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    provider = RecordingProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    ehr.get("/Observation").respond(200, json=bundle(obs("o1", PT)))
    token = harness.token("launch/patient openid fhirUser patient/*.rs", patient=PT)
    async with harness.client() as c:
        r = await c.get(f"/fhir/Observation?patient={PT}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert provider.asked == []
