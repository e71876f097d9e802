"""The synthetic data set: deterministic, valid FHIR, realistic, and internally consistent."""

from __future__ import annotations

import base64
import json
import re
import types
from collections import Counter
from collections.abc import Iterator
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
    assert any(re.fullmatch(r"Slot/slot-\d\d-\d{8}-\d{4}", k) for k in keys)
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
    # Staff answer for the team a message was addressed to: billing and referrals staff hold their role in
    # that team; the care team's messages are answered by clinicians, nurses and its front desk.
    roles = {r["practitioner"]["reference"]: (r["code"][0]["coding"][0]["code"], r["organization"]["reference"])
             for r in of_type(resources, "PractitionerRole")}
    answers = {"org-team-care": {"clinician", "nurse", "front-desk"}, "org-team-billing": {"billing"},
               "org-team-referrals": {"front-desk"}}
    replies = [c for c in comms.values() if "inResponseTo" in c]
    assert replies
    for c in replies:
        previous = comms[c["inResponseTo"][0]["reference"].removeprefix("Communication/")]
        root = comms[c["partOf"][0]["reference"].removeprefix("Communication/")]
        assert previous["sent"] < c["sent"] and root["sent"] <= previous["sent"]
        addressed = previous["recipient"][0]["reference"]
        sender = c["sender"]["reference"]
        if addressed.startswith("Organization/"):
            team = addressed.removeprefix("Organization/")
            role, org = roles[sender]
            assert role in answers[team] and (team == "org-team-care" or org == addressed), (sender, addressed)
        else:
            assert sender == addressed
        assert c["category"] == root["category"] and c["topic"] == root["topic"]
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


# --- what the portal's workflows and the staff side act on ---------------------------------------------------

STAFF_ROLE = "http://hospital.example.org/fhir/CodeSystem/staff-role"
VISIT_TYPE = "http://hospital.example.org/fhir/CodeSystem/visit-type"


def by_ref(resources: list[Json]) -> dict[str, Json]:
    return {f"{r['resourceType']}/{r['id']}": r for r in resources}


def test_every_practitioner_has_a_staff_role_and_every_role_is_staffed(resources: list[Json]) -> None:
    roles = of_type(resources, "PractitionerRole")
    assert {r["practitioner"]["reference"] for r in roles} == {f"Practitioner/{p['id']}"
                                                               for p in of_type(resources, "Practitioner")}
    codes = [r["code"][0]["coding"][0] for r in roles]
    assert all(c["system"] == STAFF_ROLE for c in codes)
    assert {c["code"] for c in codes} == {"clinician", "nurse", "front-desk", "billing"}
    teams = {o["name"]: o for o in of_type(resources, "Organization")
             if o["type"][0]["coding"][0]["code"] == "team"}
    assert set(teams) == {"Care team", "Billing office", "Referrals"}
    billing = [r for r in roles if r["code"][0]["coding"][0]["code"] == "billing"]
    assert billing and all(r["organization"]["reference"] == f"Organization/{teams['Billing office']['id']}"
                           for r in billing)


def test_each_patient_has_a_care_team_with_their_clinician_each_role_and_the_message_teams(
        bundles: dict[str, Json], resources: list[Json]) -> None:
    index = by_ref(resources)
    role_of = {r["practitioner"]["reference"]: r["code"][0]["coding"][0]["code"]
               for r in of_type(resources, "PractitionerRole")}
    for name, items in patient_resources(bundles).items():
        (team,) = of_type(items, "CareTeam")
        (patient,) = of_type(items, "Patient")
        assert team["subject"]["reference"] == f"Patient/{patient['id']}"
        members = [p["member"]["reference"] for p in team["participant"]]
        assert patient["generalPractitioner"][0]["reference"] in members, name
        people = [p for p in team["participant"] if p["member"]["reference"].startswith("Practitioner/")]
        assert {p["role"][0]["coding"][0]["code"] for p in people} == {"clinician", "nurse", "front-desk", "billing"}
        assert all(role_of[p["member"]["reference"]] == p["role"][0]["coding"][0]["code"] for p in people)
        orgs = {index[m]["name"] for m in members if m.startswith("Organization/")}
        assert orgs == {"Care team", "Billing office", "Referrals"}


def test_slot_ids_name_clinician_day_and_time_so_a_later_load_keeps_them(dataset: Dataset) -> None:
    def slots(ds: Dataset) -> dict[str, Json]:
        return {e["resource"]["id"]: e["resource"] for e in ds.practice["entry"]
                if e["resource"]["resourceType"] == "Slot"}

    now, later = slots(dataset), slots(generate(42, 25, TODAY + timedelta(days=3)))
    shared = set(now) & set(later)
    assert len(shared) > len(now) // 2
    assert all(now[i]["start"] == later[i]["start"] for i in shared)
    assert max(s["start"] for s in later.values()) > max(s["start"] for s in now.values())
    for slot_id, slot in now.items():
        start = datetime.fromisoformat(slot["start"])
        assert slot_id.endswith(start.strftime("-%Y%m%d-%H%M"))


def test_slots_offer_visit_types_and_check_in_forms_belong_to_visit_types(resources: list[Json]) -> None:
    slots = {s["id"]: s for s in of_type(resources, "Slot")}
    offered: Counter[str] = Counter()
    for s in slots.values():
        types = [c["code"] for st in s["serviceType"] for c in st.get("coding", []) if c["system"] == VISIT_TYPE]
        assert types and s["appointmentType"]["coding"][0]["code"] in ("ROUTINE", "CHECKUP", "FOLLOWUP")
        offered.update(types)
    assert set(offered) == {"physical", "new-patient", "followup", "sick", "video"}
    # Every visit type bookable on many days by several clinicians: repeated test runs don't run out.
    assert min(offered.values()) > 100
    assert len({s["schedule"]["reference"] for s in slots.values()}) >= 5
    forms = {q["title"]: q for q in of_type(resources, "Questionnaire")}
    assert set(forms) == {"New patient intake", "Pre-visit check-in"}
    checkin_types = {c["valueCodeableConcept"]["coding"][0]["code"] for c in forms["Pre-visit check-in"]["useContext"]}
    assert checkin_types == {"physical", "new-patient", "followup"}
    for appt in of_type(resources, "Appointment"):
        if appt["status"] == "booked":
            slot = slots[appt["slot"][0]["reference"].removeprefix("Slot/")]
            booked_as = appt["serviceType"][0]["coding"][0]["code"]
            assert booked_as in [c["code"] for st in slot["serviceType"] for c in st.get("coding", [])]


def _walk_items(items: list[Json]) -> Iterator[Json]:
    for item in items:
        yield item
        yield from _walk_items(item.get("item", []))


def test_forms_use_required_items_several_types_and_enable_when(resources: list[Json]) -> None:
    for q in of_type(resources, "Questionnaire"):
        items = {i["linkId"]: i for i in _walk_items(q["item"])}
        assert any(i.get("required") for i in items.values())
        for i in items.values():
            for cond in i.get("enableWhen", []):
                assert cond["question"] in items and items[cond["question"]]["type"] == "boolean"
    types = {i["type"] for q in of_type(resources, "Questionnaire") for i in _walk_items(q["item"])}
    assert types >= {"choice", "date", "integer", "decimal", "text", "string", "boolean", "group"}


def test_forms_are_assigned_as_tasks_some_answered_some_open(resources: list[Json]) -> None:
    index = by_ref(resources)
    forms = {f"{q['url']}|{q['version']}": q for q in of_type(resources, "Questionnaire")}
    tasks = of_type(resources, "Task")
    assert {t["status"] for t in tasks} == {"requested", "in-progress", "completed"}
    for task in tasks:
        assert task["code"]["coding"][0]["code"] == "complete-questionnaire"
        form = forms[task["input"][0]["valueCanonical"]]
        if task["status"] == "requested":
            assert "output" not in task
            continue
        response = index[task["output"][0]["valueReference"]["reference"]]
        assert response["questionnaire"] == task["input"][0]["valueCanonical"]
        assert response["subject"] == task["for"]
        assert response["status"] == ("completed" if task["status"] == "completed" else "in-progress")
        asked = {i["linkId"]: i for i in _walk_items(form["item"])}
        answered = {i["linkId"]: i for i in _walk_items(response["item"])}
        assert set(answered) <= set(asked)
        if response["status"] == "completed":
            for link_id, item in asked.items():
                conditions = item.get("enableWhen", [])
                enabled = all(answered.get(c["question"], {}).get("answer", [{}])[0].get("valueBoolean")
                              == c["answerBoolean"] for c in conditions)
                if item.get("required") and enabled:
                    assert link_id in answered, (form["title"], link_id)
        if "focus" in task:
            assert task["focus"]["reference"] in index


def _amount(components: list[Json], kind: str) -> float:
    return sum(c["amount"]["value"] for c in components if c["type"] == kind)


def test_billing_every_patient_has_an_account_and_statements_that_add_up(bundles: dict[str, Json],
                                                                         resources: list[Json]) -> None:
    index = by_ref(resources)
    per_patient = patient_resources(bundles)
    assert all(len(of_type(items, "Account")) == 1 for items in per_patient.values())
    assert sum(bool(of_type(items, "Invoice")) for items in per_patient.values()) >= 0.9 * len(per_patient)
    assert sum(bool(of_type(items, "Coverage")) for items in per_patient.values()) >= 0.7 * len(per_patient)
    invoices = of_type(resources, "Invoice")
    assert {i["status"] for i in invoices} == {"issued", "balanced"}
    notices = {n["request"]["reference"]: n for n in of_type(resources, "PaymentNotice")}
    for inv in invoices:
        gross = net = 0.0
        for line in inv["lineItem"]:
            parts = line["priceComponent"]
            charge = index[line["chargeItemReference"]["reference"]]
            assert charge["code"]["coding"][0]["system"] == "http://www.ama-assn.org/go/cpt"
            assert parts[0]["type"] == "base" and parts[0]["code"]["coding"][0]["code"] == charge["code"]["coding"][0][
                "code"]
            assert charge["subject"] == inv["subject"] and charge["status"] == "billed"
            gross += _amount(parts, "base")
            net += _amount(parts, "base") - _amount(parts, "deduction") - _amount(parts, "discount")
        assert round(gross, 2) == inv["totalGross"]["value"] == round(_amount(inv["totalPriceComponent"], "base"), 2)
        assert round(net, 2) == inv["totalNet"]["value"] >= 0
        notice = notices.get(f"Invoice/{inv['id']}")
        if inv["status"] == "issued":
            assert inv["totalNet"]["value"] > 0 and notice is None
        elif inv["totalNet"]["value"] > 0:
            assert notice is not None and notice["amount"] == inv["totalNet"]
            payment = index[notice["payment"]["reference"]]
            assert payment["paymentAmount"] == inv["totalNet"]
            assert payment["detail"][0]["request"]["reference"] == f"Invoice/{inv['id']}"
            assert payment["paymentDate"] < TODAY.isoformat()
    kinds = {c["type"] for i in invoices for c in i["totalPriceComponent"]}
    assert kinds >= {"base", "deduction", "discount"}
    # A payment record keeps a processor reference and the card's last four, never a card number.
    text = json.dumps(of_type(resources, "PaymentReconciliation"))
    assert not re.search(r"\d{12,}", text) and "ending 4242" in text


def test_prescriptions_with_refills_without_and_running_out_soon(bundles: dict[str, Json]) -> None:
    from mappers.medications import medication_list, refill_due

    current = []
    for items in patient_resources(bundles).values():
        now, _ = medication_list(of_type(items, "MedicationRequest"), dispenses=of_type(items, "MedicationDispense"))
        current += now
    assert any(m.refills_left and m.refills_left > 0 for m in current)
    assert any(m.refills_left == 0 and m.refills_known for m in current)
    assert any(refill_due(m, TODAY) for m in current)


def test_referral_requests_give_the_care_team_a_queue(resources: list[Json]) -> None:
    requests = by_ref(of_type(resources, "ServiceRequest"))
    states = {(r["intent"], r["status"]) for r in requests.values()}
    assert {("proposal", "active"), ("order", "active")} <= states
    for r in requests.values():
        assert r["category"][0]["coding"][0]["code"] == "3457005"
        assert r["performerType"]["coding"][0]["system"] == "http://snomed.info/sct"
        if r["intent"] == "proposal":
            assert r["requester"]["reference"] == r["subject"]["reference"]
        if r["status"] == "revoked":
            assert len(r["note"]) == 2  # the request and the reason it was declined
        for basis in r.get("basedOn", []):
            assert requests[basis["reference"]]["status"] == "completed"


def test_messages_have_topics_read_state_open_items_and_attachments(resources: list[Json]) -> None:
    comms = of_type(resources, "Communication")
    topics = {c["category"][0]["coding"][0]["code"] for c in comms}
    assert topics >= {"care", "medication", "billing", "referral"}
    unread = [c for c in comms if "received" not in c]
    assert unread and len(unread) < len(comms)
    assert all(c["received"] >= c["sent"] for c in comms if "received" in c)
    to_teams = {c["recipient"][0]["reference"] for c in comms if c["recipient"][0]["reference"].startswith(
        "Organization/")}
    assert to_teams == {"Organization/org-team-care", "Organization/org-team-billing",
                        "Organization/org-team-referrals"}
    answered = {c["inResponseTo"][0]["reference"] for c in comms if "inResponseTo" in c}
    waiting = [c for c in comms if f"Communication/{c['id']}" not in answered
               and c["sender"]["reference"].startswith(("Patient/", "RelatedPerson/"))
               and c["sent"] >= (TODAY - timedelta(days=14)).isoformat()]
    assert waiting, "the staff inbox has open patient messages"
    files = [p["contentAttachment"] for c in comms for p in c["payload"] if "contentAttachment" in p]
    assert {f["contentType"] for f in files} == {"application/pdf", "image/png"}
    for f in files:
        data = base64.b64decode(f["data"])
        assert len(data) == f["size"] < 10 * 1024 * 1024
        assert data.startswith(b"%PDF-" if f["contentType"] == "application/pdf" else b"\x89PNG\r\n\x1a\n")
        assert data.rstrip().endswith(b"%%EOF") or f["contentType"] == "image/png"


def test_the_gateway_serves_each_patient_exactly_their_own_new_records(bundles: dict[str, Json]) -> None:
    from fhir_gateway.compartment import patients_of
    from fhir_gateway.policy import POLICIES, READS

    for name, items in patient_resources(bundles).items():
        patient = f"Patient/{of_type(items, 'Patient')[0]['id']}"
        for r in items:
            policy = POLICIES.get(r["resourceType"])
            if r["resourceType"] in ("PaymentNotice", "PaymentReconciliation"):
                # No patient compartment in R4: never read through the gateway (a patient may only create a
                # PaymentReconciliation, as a request to pay, which the gateway's rule writes itself).
                assert policy is None or not policy.interactions & READS
                continue
            assert policy is not None and not policy.shared, r["resourceType"]
            assert patients_of(r) == {patient}, (name, r["resourceType"], r["id"])
    for shared in ("Questionnaire", "PractitionerRole", "Organization", "Slot", "Schedule"):
        assert POLICIES[shared].shared
