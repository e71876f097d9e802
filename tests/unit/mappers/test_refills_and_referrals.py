"""Pure parts of refills and referrals: the catalogue (pharmacies, specialist practices) and the
request shaping the gateway's rules rely on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fixtures import names
from mappers import inbound
from mappers.catalogue import SPECIALTIES, is_pharmacy, specialty_of
from mappers.validation import InboundError

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_every_specialist_practice_in_the_demo_data_is_in_the_catalogue() -> None:
    for _suffix, _name, code, display in names.SPECIALISTS:
        assert SPECIALTIES[code].display == display
        by_text = {"resourceType": "Organization", "id": "o", "type": [{"text": display}]}
        assert specialty_of(by_text) == SPECIALTIES[code]


@pytest.mark.parametrize(("org", "pharmacy"), [
    ({"type": [{"text": "Pharmacy"}]}, True),
    ({"type": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": "3336C0003X"}]}]}, True),
    ({"type": [{"text": "Pharmacy"}], "active": False}, False),  # closed
    ({"type": [{"text": "Laboratory"}]}, False),
    ({"type": [{"text": "Cardiology"}]}, False),
])
def test_what_counts_as_a_pharmacy(org: dict, pharmacy: bool) -> None:
    assert is_pharmacy({"resourceType": "Organization", "id": "o", **org}) is pharmacy


def _original(**extra: object) -> dict:
    return {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": {"text": "Amlodipine"},
            "dispenseRequest": {"numberOfRepeatsAllowed": 3}, **extra}


def _proposed(**extra: object) -> dict:
    return {"resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
            "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": {"text": "x"}, **extra}


def test_a_refill_with_no_refills_left_is_refused_and_an_unknown_count_is_not() -> None:
    with pytest.raises(InboundError, match="renew"):
        inbound.refill_request(_proposed(), _original(), patient_ref="Patient/p1", requester_ref="Patient/p1",
                               now=NOW, refills_left=0)
    shaped = inbound.refill_request(_proposed(note=[{"text": " soon "}]), _original(), patient_ref="Patient/p1",
                                    requester_ref="Patient/p1", now=NOW, refills_left=None)
    assert shaped["note"] == [{"authorReference": {"reference": "Patient/p1"}, "time": "2026-11-30T12:00:00+00:00",
                               "text": "soon"}]


def test_a_referral_keeps_only_what_the_patient_may_say() -> None:
    proposed = {"resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
                "subject": {"reference": "Patient/p1"}, "priority": "stat",
                "requester": {"reference": "Practitioner/x"},
                "performerType": {"coding": [{"system": "http://snomed.info/sct", "code": "394582007"}]},
                "reasonCode": [{"text": "A mole that changed"}], "basedOn": [{"reference": "ServiceRequest/other"}]}
    shaped = inbound.referral_request(proposed, patient_ref="Patient/p1", requester_ref="Patient/p1", now=NOW)
    assert shaped["priority"] == "routine" and shaped["requester"] == {"reference": "Patient/p1"}
    assert "basedOn" not in shaped and shaped["code"] == {"text": "Referral to dermatology"}
    assert shaped["performerType"]["text"] == "Skin (dermatology)"
