"""Names and references read the way a patient expects, whatever shape the record is in."""

from __future__ import annotations

import pytest

from mappers.names import display_name, first_name, human_name
from mappers.references import (
    Ref,
    index_by_reference,
    local_reference,
    parse_reference,
    reference_display,
    reference_to,
)

DOCTOR = {"resourceType": "Practitioner", "id": "prac-01",
          "name": [{"use": "official", "family": "Ellison", "given": ["Margaret"], "prefix": ["Dr."],
                    "suffix": ["MD"]}]}
NURSE = {"resourceType": "Practitioner", "id": "prac-07",
         "name": [{"use": "official", "family": "Stone", "given": ["Rebecca"], "suffix": ["RN"]}]}
PATIENT = {"resourceType": "Patient", "id": "pt-1",
           "name": [{"use": "old", "family": "Smith", "given": ["Michelle"]},
                    {"use": "usual", "given": ["Shelly"], "family": "Gomez"},
                    {"use": "official", "family": "Gomez", "given": ["Michelle", "Martha"]}]}


def test_display_names_by_type() -> None:
    assert display_name(DOCTOR) == "Dr. Margaret Ellison"
    assert display_name(NURSE) == "Rebecca Stone, RN"
    assert display_name(PATIENT) == "Michelle Martha Gomez"
    assert display_name({"resourceType": "Organization", "name": " Prairie Family Health "}) == \
        "Prairie Family Health"
    assert display_name({"resourceType": "PractitionerRole", "practitioner": {"display": "Dr. A"}}) == "Dr. A"
    assert display_name({"resourceType": "Device", "deviceName": [{"name": "Glucose meter"}]}) == "Glucose meter"
    assert display_name({"resourceType": "RelatedPerson", "name": [{"text": "Raymond Gomez"}]}) == "Raymond Gomez"


@pytest.mark.parametrize("odd", [None, {}, {"name": None}, {"name": [None, 3]},
                                 {"name": [{"given": [None, ""], "family": ""}]}, [], "x"])
def test_odd_names_give_none(odd: object) -> None:
    assert human_name(odd) is None
    assert display_name(odd) is None


def test_a_plain_string_name_is_not_a_human_name() -> None:
    assert human_name({"resourceType": "Patient", "name": "Bob"}) is None
    assert display_name({"resourceType": "Location", "name": "Main clinic"}) == "Main clinic"


def test_human_name_order_and_parts() -> None:
    assert human_name(PATIENT) == "Shelly Gomez"  # the first current name, as recorded
    assert human_name(PATIENT, prefer_official=True) == "Michelle Martha Gomez"
    assert human_name(DOCTOR, with_prefix=True) == "Dr. Margaret Ellison"
    assert human_name({"name": [{"family": "Old", "use": "old"}]}) == "Old"  # nothing better: old will do
    assert human_name({"name": [{"given": ["Ann"]}, {"text": "Later"}]}) == "Ann"
    assert human_name({"name": [{}, {"text": "Second"}]}) == "Second"
    assert first_name(PATIENT) == "Michelle"
    assert first_name({"name": [{"text": "Cher"}]}) == "Cher"


@pytest.mark.parametrize(("raw", "local"), [
    ("Patient/1", "Patient/1"),
    ("http://ehr/fhir/Patient/1/_history/2", "Patient/1"),
    ("https://ehr.example.org/fhir/Observation/obs-1/", "Observation/obs-1"),
    ("Patient/1/_history", "Patient/1"),
    ("#contained", "#contained"),
    ("urn:uuid:1234", "urn:uuid:1234"),
    ("", ""),
])
def test_local_reference(raw: str, local: str) -> None:
    assert local_reference(raw) == local


def test_parse_reference_is_strict() -> None:
    assert parse_reference("Patient/pt-0001") == Ref("Patient", "pt-0001")
    assert parse_reference({"reference": "http://x/fhir/Patient/7/_history/1"}).text == "Patient/7"  # type: ignore[union-attr]
    assert parse_reference("Patient/7", "Patient") and parse_reference("Patient/7", "Group") is None
    for bad in ("patient/1", "Patient/", "Patient/a b", "Patient/" + "x" * 65, "#c", None, 5, {"display": "x"},
                "Patient/1?x=2", "urn:uuid:1"):
        assert parse_reference(bad) is None, bad


def test_reference_display_uses_display_then_lookup_never_the_id() -> None:
    lookup = index_by_reference([DOCTOR, NURSE, {"resourceType": "Patient"}, "junk"])
    assert set(lookup) == {"Practitioner/prac-01", "Practitioner/prac-07"}
    assert reference_display({"reference": "Practitioner/prac-07", "display": "Nurse Stone"}, lookup) == "Nurse Stone"
    assert reference_display({"reference": "Practitioner/prac-01"}, lookup) == "Dr. Margaret Ellison"
    assert reference_display({"reference": "Practitioner/prac-99"}, lookup) is None
    assert reference_display({"reference": "Practitioner/prac-01"}) is None
    assert reference_display("nonsense", lookup) is None
    assert reference_to(DOCTOR) == "Practitioner/prac-01" and reference_to({"id": "x"}) is None
