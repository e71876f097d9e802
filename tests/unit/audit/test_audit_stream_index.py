"""The store's index written beside each event in the stream: the feeder's rows from it are exactly the rows
it makes by parsing the event, and an entry whose index cannot be read is set aside as before."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from audit.events import EventContext, auth_event, rest_event
from audit.feeder import StoreFeeder
from audit.recorder import stream_fields
from audit.store import StoredEvent

CTX = EventContext(base_url="https://portal.example.org")


def _rest(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "interaction": "search-type", "outcome": "0", "action": "E",
        "entity_refs": ["Observation/o-1", "Observation/o-2", "Patient/pt-2"], "patient_refs": ["Patient/pt-1"],
        "account_ref": "Patient/pt-1", "account_id": "acct-1", "client_id": "portal-web", "on_behalf_of": None,
        "source_ip": "203.0.113.9", "request_id": "req-1", "query": "patient=Patient/pt-1&_count=10",
        "context": CTX,
    }
    return rest_event(**{**args, **overrides})


EVENTS = {
    "search over two patients": _rest(),
    "a caregiver acting for a patient": _rest(account_ref="RelatedPerson/rp-1", on_behalf_of="Patient/pt-1"),
    "a failed read (logical references)": _rest(interaction="read", outcome="4", action="R",
                                                entity_refs=["Observation/gone"], patient_refs=[]),
    "a backend service": _rest(account_ref="Device/etl", patient_refs=["Patient/pt-3"], entity_refs=[]),
    "a sign-in": auth_event("login", "success", account_id="acct-1", fhir_user="Patient/pt-1", context=CTX),
    "a sign-in that names no patient": auth_event("login", "failure", account_id="acct-1", context=CTX),
}


@pytest.fixture
def feeder() -> StoreFeeder:
    return StoreFeeder(Redis(), store=None, export=True, consumer="c1")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", EVENTS)
def test_the_row_from_the_index_is_the_row_from_parsing_the_event(feeder: StoreFeeder, name: str) -> None:
    event = EVENTS[name]
    payload = orjson.dumps(event).decode()
    fields = stream_fields(event["id"], payload, event)
    assert {"at", "patients"} <= fields.keys()

    entry = feeder.read_entry(fields)
    assert entry.event is None  # not parsed
    assert feeder._row(entry) == StoredEvent.from_payload(event["id"], payload)


def test_an_entry_without_the_index_is_parsed_as_before(feeder: StoreFeeder) -> None:
    event = EVENTS["search over two patients"]
    payload = orjson.dumps(event).decode()
    entry = feeder.read_entry({"id": event["id"], "event": payload})
    assert entry.event == event
    assert feeder._row(entry) == StoredEvent.from_payload(event["id"], payload)


def test_an_event_the_store_cannot_index_carries_no_index() -> None:
    event = {"resourceType": "AuditEvent", "id": "e-1"}  # no recorded time: the feeder sets it aside
    assert stream_fields("e-1", orjson.dumps(event).decode(), event) == {
        "id": "e-1", "event": orjson.dumps(event).decode()}


@pytest.mark.parametrize("broken", [
    {"at": "soon"},
    {"patients": "Patient/pt-1"},
    {"patients": '{"a": 1}'},
    {"patients": "[1, 2]"},
    {"event": None},
])
def test_an_entry_whose_index_cannot_be_read_is_refused(feeder: StoreFeeder, broken: dict[str, Any]) -> None:
    event = EVENTS["search over two patients"]
    fields = {**stream_fields(event["id"], orjson.dumps(event).decode(), event), **broken}
    fields = {k: v for k, v in fields.items() if v is not None}
    with pytest.raises((KeyError, ValueError, TypeError)):
        feeder.read_entry(fields)
