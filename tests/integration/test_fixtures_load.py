"""Loading fixtures into the real HAPI FHIR server.

Uses its own id namespace ("zt-fixtures-"), tag and MRN range, so it never touches the default
seed-42 data set other tests rely on, and deletes what it loaded at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from fixtures.context import fixture_tag
from fixtures.generate import Dataset, generate, normalize_namespace
from fixtures.loader import expected_counts, load_dataset, prune_dataset, server_counts
from fixtures.validate import FixtureError

pytestmark = pytest.mark.integration

BASE_URL = os.environ.get("PORTAL_FHIR_BASE_URL", "http://127.0.0.1:8080/fhir").rstrip("/")
NAMESPACE = "zt-fixtures"
SEED = 4242
PATIENTS = 3
Json = dict[str, Any]


@pytest.fixture(scope="module")
def fhir_base() -> str:
    try:
        response = httpx.get(f"{BASE_URL}/metadata", timeout=10)
    except httpx.TransportError as exc:
        pytest.skip(f"HAPI FHIR server not reachable at {BASE_URL} ({exc}); start it or set PORTAL_FHIR_BASE_URL")
    if response.status_code != 200:
        pytest.skip(f"HAPI FHIR server at {BASE_URL} answered /metadata with HTTP {response.status_code}")
    return BASE_URL


def _delete_all(base: str, dataset: Dataset) -> None:
    """Remove the namespace's resources: one transaction, referencing resources first."""
    entries = [e for _, b in dataset.bundles() for e in b["entry"]]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": e["request"]["url"]}} for e in reversed(entries)]}
    httpx.post(base, json=bundle, timeout=300).raise_for_status()


@pytest.fixture(scope="module")
def dataset(fhir_base: str) -> Iterator[Dataset]:
    data = generate(SEED, PATIENTS, date.today(), namespace=NAMESPACE)
    yield data
    _delete_all(fhir_base, data)


def _versions(base: str, namespace: str, types: list[str]) -> dict[str, str]:
    """'Type/id' -> versionId of every resource carrying the namespace's fixture tag."""
    tag = fixture_tag(normalize_namespace(namespace))
    out: dict[str, str] = {}
    with httpx.Client(timeout=60, headers={"Cache-Control": "no-cache"}) as client:
        for resource_type in types:
            url: str | None = f"{base}/{resource_type}"
            params: dict[str, str] | None = {"_tag": f"{tag['system']}|{tag['code']}", "_count": "500"}
            while url:
                page = client.get(url, params=params).raise_for_status().json()
                for entry in page.get("entry", []):
                    r = entry["resource"]
                    out[f"{r['resourceType']}/{r['id']}"] = r["meta"]["versionId"]
                url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
                params = None
    return out


async def test_load_matches_expected_counts_and_reload_changes_nothing(fhir_base: str, dataset: Dataset) -> None:
    expected = expected_counts(SEED, PATIENTS, dataset.today, namespace=NAMESPACE)
    first = await load_dataset(fhir_base, dataset, concurrency=3, progress=False)
    assert first.resources == sum(expected.values())
    counts = await server_counts(fhir_base, namespace=NAMESPACE, types=list(expected))
    assert counts == expected
    before = _versions(fhir_base, NAMESPACE, list(expected))
    assert len(before) == sum(expected.values())

    second = await load_dataset(fhir_base, dataset, concurrency=3, progress=False)
    assert second.created == 0
    assert await server_counts(fhir_base, namespace=NAMESPACE, types=list(expected)) == expected
    assert _versions(fhir_base, NAMESPACE, list(expected)) == before


def _search(base: str, resource_type: str, params: dict[str, str]) -> list[Json]:
    """Every match of a search (all pages), straight from the server."""
    found: list[Json] = []
    url: str | None = f"{base}/{resource_type}"
    query: dict[str, str] | None = {**params, "_count": "500"}
    with httpx.Client(timeout=60, headers={"Cache-Control": "no-cache"}) as client:
        while url:
            page = client.get(url, params=query).raise_for_status().json()
            found += [e["resource"] for e in page.get("entry", [])]
            url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
            query = None
    return found


def _of(dataset: Dataset, resource_type: str) -> list[Json]:
    return [e["resource"] for _, b in dataset.bundles() for e in b["entry"]
            if e["resource"]["resourceType"] == resource_type]


async def test_the_workflows_find_what_they_need_with_plain_fhir_searches(fhir_base: str, dataset: Dataset) -> None:
    """The searches the portal and the staff side rely on, answered by the real server as the data says."""
    await load_dataset(fhir_base, dataset, concurrency=2, progress=False)
    tag = f"{dataset.tag['system']}|{dataset.tag['code']}"
    visit_type = "http://hospital.example.org/fhir/CodeSystem/visit-type"

    def ids(rows: Iterable[Json]) -> set[str]:
        return {r["id"] for r in rows}

    # A visit type's check-in form, and free slots to book for it.
    (checkin,) = _search(fhir_base, "Questionnaire", {"context": f"{visit_type}|physical", "_tag": tag,
                                                      "title": "Pre-visit check-in"})
    assert checkin["url"].endswith(f"{NAMESPACE}-previsit-checkin")
    video = [s for s in _of(dataset, "Slot") if s["status"] == "free"
             and any(c.get("code") == "video" for st in s["serviceType"] for c in st.get("coding", []))]
    assert ids(_search(fhir_base, "Slot", {"service-type": f"{visit_type}|video", "status": "free", "_tag": tag})) \
        == ids(video) != set()
    # Staff by role, a patient's care team, forms still to do, the referral queue.
    billing = ids(r for r in _of(dataset, "PractitionerRole") if r["code"][0]["coding"][0]["code"] == "billing")
    role = "http://hospital.example.org/fhir/CodeSystem/staff-role|billing"
    assert ids(_search(fhir_base, "PractitionerRole", {"role": role, "_tag": tag})) == billing != set()
    patient = dataset.profiles[0].id
    assert len(_search(fhir_base, "CareTeam", {"patient": f"Patient/{patient}"})) == 1
    open_forms = ids(t for t in _of(dataset, "Task") if t["status"] == "requested")
    assert ids(_search(fhir_base, "Task", {"status": "requested", "_tag": tag})) == open_forms
    queue = ids(r for r in _of(dataset, "ServiceRequest") if (r["intent"], r["status"]) == ("proposal", "active"))
    assert ids(_search(fhir_base, "ServiceRequest", {"intent": "proposal", "status": "active", "_tag": tag})) == queue
    # Unread messages, and the payment recorded against a paid statement.
    unread = ids(c for c in _of(dataset, "Communication") if "received" not in c)
    assert ids(_search(fhir_base, "Communication", {"received:missing": "true", "_tag": tag})) == unread
    paid = [i for i in _of(dataset, "Invoice") if i["status"] == "balanced" and i["totalNet"]["value"] > 0]
    assert paid, "the data set has paid statements"
    (notice,) = _search(fhir_base, "PaymentNotice", {"request": f"Invoice/{paid[0]['id']}"})
    assert notice["amount"]["value"] == paid[0]["totalNet"]["value"]


async def test_a_slot_booked_on_the_server_stays_busy_when_the_fixtures_are_loaded_again(
        fhir_base: str, dataset: Dataset) -> None:
    await load_dataset(fhir_base, dataset, concurrency=2, progress=False)
    slot = next(s for s in _of(dataset, "Slot") if s["status"] == "free")
    booking = {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": f"Slot/{slot['id']}"}],
               "start": slot["start"], "end": slot["end"],
               "participant": [{"actor": {"reference": f"Patient/{dataset.profiles[1].id}"}, "status": "accepted"}]}
    with httpx.Client(timeout=60, headers={"Cache-Control": "no-cache"}) as client:
        created = client.post(f"{fhir_base}/Appointment", json=booking).raise_for_status().json()
        try:
            client.put(f"{fhir_base}/Slot/{slot['id']}", json={**slot, "status": "busy"}).raise_for_status()
            report = await load_dataset(fhir_base, dataset, concurrency=2, progress=False)
            assert report.held_slots == 1
            assert client.get(f"{fhir_base}/Slot/{slot['id']}").json()["status"] == "busy"
        finally:
            client.delete(f"{fhir_base}/Appointment/{created['id']}").raise_for_status()
    # With the booking gone, the next load frees the slot again.
    await load_dataset(fhir_base, dataset, concurrency=2, progress=False)
    assert _search(fhir_base, "Slot", {"_id": slot["id"]})[0]["status"] == "free"


def _status(base: str, reference: str) -> int:
    return httpx.get(f"{base}/{reference}", timeout=30, headers={"Cache-Control": "no-cache"}).status_code


def _bad_patient_bundle(dataset: Dataset, last: Json) -> Json:
    """Patient 1's bundle re-keyed to fresh ids (so none of it is on the server) plus `last`."""
    old, new = dataset.profiles[0].id, f"{dataset.namespace}bad-pt"
    text = json.dumps(dataset.patient_bundle(1)).replace(f'"{old}"', f'"{new}"').replace(
        f"Patient/{old}", f"Patient/{new}").replace("-0001-", "-bad-")
    bundle: Json = json.loads(text)
    last = {"resourceType": "Observation", "id": f"{dataset.namespace}bad-obs", "status": "final",
            "code": {"text": "Test entry"}, "subject": {"reference": f"Patient/{new}"}, **last}
    bundle["entry"].append({"resource": last, "request": {"method": "PUT", "url": f"Observation/{last['id']}"}})
    return bundle


async def test_malformed_bundle_writes_nothing(fhir_base: str, dataset: Dataset) -> None:
    bundle = _bad_patient_bundle(dataset, {"effectiveDateTime": "yesterday"})
    entries = bundle["entry"]
    index = len(entries) - 1
    with pytest.raises(FixtureError, match=rf"invalid bundle bad-bundle: entry {index} "
                                           rf"\(Observation/{NAMESPACE}-bad-obs\): effectiveDateTime"):
        await load_dataset(fhir_base, [("bad-bundle", bundle)], progress=False)
    for entry in entries[:3]:
        assert _status(fhir_base, entry["request"]["url"]) in (404, 410)


async def test_server_rejection_rolls_back_the_whole_transaction(fhir_base: str, dataset: Dataset) -> None:
    # Valid for fhir.resources, but the last entry refers to a resource type that doesn't exist
    # (a missing target would just become a placeholder on this server): the server refuses the
    # transaction, and none of the earlier entries may remain.
    bundle = _bad_patient_bundle(dataset, {"performer": [{"reference": "Nonexistenttype/x"}]})
    entries = bundle["entry"]
    with pytest.raises(FixtureError, match="bundle bad-bundle rejected by the server: HTTP 4"):
        await load_dataset(fhir_base, [("bad-bundle", bundle)], progress=False)
    for entry in (entries[0], entries[1], entries[len(entries) // 2]):
        assert _status(fhir_base, entry["request"]["url"]) in (404, 410)


async def test_prune_leaves_exactly_the_data_set_of_another_day(fhir_base: str, dataset: Dataset) -> None:
    # Loaded on another day, the same seed gives partly different resources; prune removes the rest.
    other = generate(SEED, PATIENTS, dataset.today + timedelta(days=45), namespace=NAMESPACE)
    for current in (other, dataset):  # end where we started, so the module clean-up finds everything
        await load_dataset(fhir_base, current, concurrency=2, progress=False)
        await prune_dataset(fhir_base, current)
        expected = current.counts()
        assert await server_counts(fhir_base, namespace=NAMESPACE, types=list(expected)) == expected
