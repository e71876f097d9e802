"""The synthetic data set: deterministic, valid FHIR, realistic, and internally consistent."""

from __future__ import annotations

import base64
import json
import re
import types
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from fixtures.generate import Dataset, generate
from fixtures.loader import expected_counts
from fixtures.validate import FixtureError, bundle_problems, check_bundle

TODAY = date(2025, 11, 24)  # a Monday; fixed so the test data never depends on the calendar
Json = dict[str, Any]


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(42, 25, TODAY)


@pytest.fixture(scope="module")
def bundles(dataset: Dataset) -> dict[str, Json]:
    return dict(dataset.bundles())


@pytest.fixture(scope="module")
def resources(bundles: dict[str, Json]) -> list[Json]:
    return [e["resource"] for b in bundles.values() for e in b["entry"]]


def of_type(resources: list[Json], resource_type: str) -> list[Json]:
    return [r for r in resources if r["resourceType"] == resource_type]


def patient_resources(bundles: dict[str, Json]) -> dict[str, list[Json]]:
    return {name: [e["resource"] for e in b["entry"]] for name, b in bundles.items() if name != "practice"}


def walk_references(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            found.append(node["reference"])
        for value in node.values():
            found += walk_references(value)
    elif isinstance(node, list):
        for value in node:
            found += walk_references(value)
    return found


def test_same_seed_gives_identical_json(bundles: dict[str, Json]) -> None:
    again = dict(generate(42, 25, TODAY).bundles())
    assert json.dumps(again, sort_keys=False) == json.dumps(bundles, sort_keys=False)


def test_other_seed_gives_other_data(dataset: Dataset) -> None:
    other = generate(7, 25, TODAY)
    assert [p.name for p in other.profiles] != [p.name for p in dataset.profiles]


def test_every_resource_validates(bundles: dict[str, Json]) -> None:
    problems = {name: bundle_problems(b) for name, b in bundles.items()}
    assert {name: p for name, p in problems.items() if p} == {}


def test_bundles_are_transactions_of_idempotent_puts(bundles: dict[str, Json]) -> None:
    for bundle in bundles.values():
        assert bundle["type"] == "transaction"
        for entry in bundle["entry"]:
            r = entry["resource"]
            assert entry["request"] == {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}


def test_ids_are_deterministic_client_ids_and_unique(resources: list[Json]) -> None:
    keys = [f"{r['resourceType']}/{r['id']}" for r in resources]
    assert len(keys) == len(set(keys))
    assert "Patient/pt-0001" in keys and "Patient/pt-0025" in keys
    assert "Organization/org-clinic" in keys and "Practitioner/prac-01" in keys and "Schedule/sched-01" in keys
    assert any(re.fullmatch(r"Slot/slot-\d\d-\d{4}", k) for k in keys)
    for r in resources:
        if r["resourceType"] == "Observation":
            assert re.fullmatch(r"obs-\d{4}-\d{4}", r["id"])


def test_all_references_resolve_within_the_data_set(resources: list[Json]) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in resources}
    dangling = {ref for r in resources for ref in walk_references(r) if ref not in known}
    assert dangling == set()


def test_patient_bundles_only_reference_earlier_entries_or_the_practice(bundles: dict[str, Json]) -> None:
    practice = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundles["practice"]["entry"]}
    for name, bundle in bundles.items():
        if name == "practice":
            continue
        seen = set(practice)
        for entry in bundle["entry"]:
            r = entry["resource"]
            assert set(walk_references(r)) <= seen | {f"{r['resourceType']}/{r['id']}"}, (name, r["id"])
            seen.add(f"{r['resourceType']}/{r['id']}")


def test_twenty_five_patients_with_two_years_of_history(bundles: dict[str, Json]) -> None:
    per_patient = patient_resources(bundles)
    assert len(per_patient) == 25
    for name, items in per_patient.items():
        assert sum(r["resourceType"] == "Patient" for r in items) == 1
        dates = [date.fromisoformat(e["period"]["start"][:10]) for e in of_type(items, "Encounter")]
        assert min(dates) <= TODAY - timedelta(days=730), name
        assert len(of_type(items, "Observation")) >= 10, name
        assert of_type(items, "DocumentReference"), name


def test_patient_identifiers_and_ssn_share(resources: list[Json]) -> None:
    patients = of_type(resources, "Patient")
    with_ssn = 0
    for p in patients:
        mrn = [i for i in p["identifier"] if i["system"] == "http://hospital.example.org/mrn"]
        assert len(mrn) == 1 and mrn[0]["type"]["coding"][0] == {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR",
            "display": "Medical record number"}
        ssn = [i for i in p["identifier"] if i["system"] == "http://hl7.org/fhir/sid/us-ssn"]
        if ssn:
            with_ssn += 1
            assert ssn[0]["type"]["coding"][0]["code"] == "SS"
            assert re.fullmatch(r"9\d{8}", ssn[0]["value"])  # never-issued area numbers
        assert p["name"][0]["family"] and p["birthDate"] and p["gender"] in ("male", "female")
        assert p["address"][0]["city"] and p["communication"][0]["language"]["coding"][0]["code"]
        assert {t["system"] for t in p["telecom"]} >= {"phone"}
        assert p["generalPractitioner"][0]["reference"].startswith("Practitioner/prac-")
    assert 0.75 <= with_ssn / len(patients) <= 0.95
    assert len({i["value"] for p in patients for i in p["identifier"]}) == sum(len(p["identifier"])
                                                                               for p in patients)


def test_at_least_three_patients_have_a_related_person(resources: list[Json]) -> None:
    related = of_type(resources, "RelatedPerson")
    assert len({r["patient"]["reference"] for r in related}) >= 3
    for r in related:
        assert r["relationship"][0]["coding"][0]["code"] and r["name"][0]["family"] and r["telecom"]


def test_future_appointments_hold_busy_slots_and_free_slots_remain(resources: list[Json]) -> None:
    slots = {s["id"]: s for s in of_type(resources, "Slot")}
    now = datetime.combine(TODAY, datetime.min.time()).astimezone()
    horizon = now + timedelta(days=31)
    for s in slots.values():
        assert now < datetime.fromisoformat(s["start"]) < horizon
    future = [a for a in of_type(resources, "Appointment") if a["status"] == "booked"]
    assert future, "some patients have upcoming appointments"
    booked: Counter[str] = Counter()
    for a in future:
        slot = slots[a["slot"][0]["reference"].removeprefix("Slot/")]
        assert slot["status"] == "busy"
        assert (a["start"], a["end"]) == (slot["start"], slot["end"])
        assert datetime.fromisoformat(a["start"]) > now
        booked[slot["id"]] += 1
    busy = {sid for sid, s in slots.items() if s["status"] == "busy"}
    assert busy == set(booked) and max(booked.values()) == 1
    assert sum(s["status"] == "free" for s in slots.values()) > len(busy)
    past = [a for a in of_type(resources, "Appointment") if a["status"] != "booked"]
    assert {a["status"] for a in past} >= {"fulfilled"}
    assert all(datetime.fromisoformat(a["start"]) < now for a in past)


def test_clinical_content_looks_like_a_real_clinic(resources: list[Json]) -> None:
    obs = of_type(resources, "Observation")
    labs = [o for o in obs if o["category"][0]["coding"][0]["code"] == "laboratory"]
    vitals = [o for o in obs if o["category"][0]["coding"][0]["code"] == "vital-signs"]
    codes = {o["code"]["coding"][0]["code"] for o in obs}
    assert codes >= {"85354-9", "8867-4", "29463-7", "39156-5", "8310-5", "4548-4", "2345-7", "13457-7",
                     "2085-9", "2093-3", "2160-0", "718-7"}
    for o in labs:
        q = o["valueQuantity"]
        assert q["system"] == "http://unitsofmeasure.org" and q["code"]
        flag = o["interpretation"][0]["coding"][0]
        assert flag["system"] == "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
        rng = o["referenceRange"][0]
        if "high" in rng and q["value"] > rng["high"]["value"]:
            assert flag["code"] == "H"
        elif "low" in rng and q["value"] < rng["low"]["value"]:
            assert flag["code"] == "L"
        else:
            assert flag["code"] == "N"
    assert {o["interpretation"][0]["coding"][0]["code"] for o in labs} == {"H", "L", "N"}
    assert any("note" in o for o in labs)
    a1c = [o["valueQuantity"]["value"] for o in labs if o["code"]["coding"][0]["code"] == "4548-4"]
    assert 4.0 < min(a1c) and max(a1c) < 13.0
    for o in vitals:
        if o["code"]["coding"][0]["code"] == "85354-9":
            sbp, dbp = (c["valueQuantity"]["value"] for c in o["component"])
            assert 40 <= dbp < sbp <= 200 and sbp - dbp >= 20
        if o["code"]["coding"][0]["code"] == "8310-5":
            assert 35.5 <= o["valueQuantity"]["value"] <= 40.5

    reports = of_type(resources, "DiagnosticReport")
    lab_reports = [r for r in reports if r["category"][0]["coding"][0]["code"] == "LAB"]
    rad = [r for r in reports if r["category"][0]["coding"][0]["code"] == "RAD"]
    assert lab_reports and rad
    assert all(r["result"] and r["conclusion"] for r in lab_reports)
    assert all(base64.b64decode(r["presentedForm"][0]["data"]).decode().strip() for r in rad)

    meds = of_type(resources, "MedicationRequest")
    assert {m["status"] for m in meds} == {"active", "completed", "stopped"}
    for m in meds:
        assert m["medicationCodeableConcept"]["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
        assert m["requester"]["reference"].startswith("Practitioner/")
        assert m["dosageInstruction"][0]["text"]
        assert "numberOfRepeatsAllowed" in m["dispenseRequest"]

    assert all(i["vaccineCode"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/cvx"
               for i in of_type(resources, "Immunization"))
    for c in of_type(resources, "Condition"):
        systems = [x["system"] for x in c["code"]["coding"]]
        assert systems == ["http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"]
    assert of_type(resources, "AllergyIntolerance") and of_type(resources, "Coverage")
    assert {e["class"]["code"] for e in of_type(resources, "Encounter")} >= {"AMB"}
    for d in of_type(resources, "DocumentReference"):
        attachment = d["content"][0]["attachment"]
        assert attachment["contentType"] == "text/plain"
        assert "VISIT SUMMARY" in base64.b64decode(attachment["data"]).decode("utf-8")


def test_children_and_adults_have_age_appropriate_values(dataset: Dataset, bundles: dict[str, Json]) -> None:
    for profile in dataset.profiles:
        items = [e["resource"] for e in bundles[f"patient-{profile.number:04d}"]["entry"]]
        heights = [o["valueQuantity"]["value"] for o in of_type(items, "Observation")
                   if o["code"]["coding"][0]["code"] == "8302-2"]
        a1c = [o for o in of_type(items, "Observation") if o["code"]["coding"][0]["code"] == "4548-4"]
        if profile.age_on(TODAY) < 18:
            assert all(80 < h < 190 for h in heights)
            assert not a1c
        else:
            assert all(140 < h < 205 for h in heights)


def test_message_threads_reply_in_order(resources: list[Json]) -> None:
    comms = {c["id"]: c for c in of_type(resources, "Communication")}
    replies = [c for c in comms.values() if "inResponseTo" in c]
    assert replies
    for c in replies:
        previous = comms[c["inResponseTo"][0]["reference"].removeprefix("Communication/")]
        root = comms[c["partOf"][0]["reference"].removeprefix("Communication/")]
        assert previous["sent"] < c["sent"] and root["sent"] <= previous["sent"]
        assert c["sender"] == previous["recipient"][0]
    assert all(c["sent"] < TODAY.isoformat() for c in comms.values())


def test_namespace_keeps_test_data_apart(dataset: Dataset) -> None:
    other = generate(42, 2, TODAY, namespace="zt")
    ids = [e["resource"]["id"] for _, b in other.bundles() for e in b["entry"]]
    assert all(i.startswith("zt-") for i in ids)
    assert {p.mrn for p in other.profiles}.isdisjoint(p.mrn for p in dataset.profiles)
    assert other.tag["code"] != dataset.tag["code"]


def test_identity_facts_do_not_move_with_today(dataset: Dataset) -> None:
    later = generate(42, 25, TODAY + timedelta(days=400))
    identity = [(p.name, p.birth, p.mrn, p.ssn) for p in dataset.profiles]
    assert [(p.name, p.birth, p.mrn, p.ssn) for p in later.profiles] == identity


def test_generation_streams_and_scales() -> None:
    big = generate(42, 10_000, TODAY)
    assert isinstance(big.patient_bundles(), types.GeneratorType)
    last = big.patient_bundle(10_000)
    assert last["entry"][0]["resource"]["id"] == "pt-10000"
    assert len({p.ssn for p in big.profiles if p.ssn}) == sum(1 for p in big.profiles if p.ssn)
    assert len({p.mrn for p in big.profiles}) == 10_000
    slots = [e["resource"] for e in big.practice["entry"] if e["resource"]["resourceType"] == "Slot"]
    assert any(s["status"] == "free" for s in slots)


def test_default_today_puts_slots_in_the_real_future() -> None:
    ds = generate(42, 2)
    first = min(e["resource"]["start"] for e in ds.practice["entry"] if e["resource"]["resourceType"] == "Slot")
    assert datetime.fromisoformat(first) > datetime.now().astimezone()


def test_expected_counts_match_the_bundles(bundles: dict[str, Json]) -> None:
    counted = Counter(e["resource"]["resourceType"] for b in bundles.values() for e in b["entry"])
    assert expected_counts(42, 25, TODAY) == dict(sorted(counted.items()))


def test_an_invalid_entry_is_named(bundles: dict[str, Json]) -> None:
    bundle = json.loads(json.dumps(bundles["patient-0003"]))
    bad = bundle["entry"][5]["resource"]
    bad["effectiveDateTime" if "effectiveDateTime" in bad else "birthDate"] = "not-a-date"
    bad.setdefault("status", "final")
    bundle["entry"][5]["resource"]["bogusField"] = 1
    with pytest.raises(FixtureError) as err:
        check_bundle(bundle, "patient-0003.json")
    message = str(err.value)
    assert "patient-0003.json" in message and "entry 5" in message
    assert f"{bad['resourceType']}/{bad['id']}" in message
