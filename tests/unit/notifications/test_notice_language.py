"""A notice goes out in the person's language: the one they chose with the switch, else the one their own
health record prefers, else English; the e-mail and the text message both, with nothing of the English left."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from locales.pending import NOT_YET_TRANSLATED_MODULES
from mappers.notices import KINDS, compose, short_text
from notifications.recipients import AccountRecipients
from smart_auth.accounts.models import AccountRecord
from smart_auth.accounts.preferences import DisplayPreferences
from tests.plain_language import MAX_GRADE, grade_units

SPANISH_RECORD = {"resourceType": "Patient", "id": "pt-es", "communication": [
    {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}]}, "preferred": True}]}
ENGLISH_RECORD = {"resourceType": "Patient", "id": "pt-en", "communication": [
    {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]}, "preferred": True}]}


def _record(account_id: str, kind: str = "patient", patient_id: str | None = None) -> AccountRecord:
    return AccountRecord(id=account_id, username=account_id, kind=kind, fhir_user=f"Patient/{patient_id}",  # type: ignore[arg-type]
                         patient_id=patient_id, password_hash="", mfa_method="totp",
                         contact=f"{account_id}@example.org")


@dataclass
class Accounts:
    records: dict[str, AccountRecord]
    chosen: dict[str, str] = field(default_factory=dict)

    async def get_record(self, account_id: str) -> AccountRecord | None:
        return self.records.get(account_id)

    async def account_for_patient(self, patient_id: str) -> str | None:
        return next((r.id for r in self.records.values() if r.patient_id == patient_id), None)

    async def display_preferences(self, account_id: str) -> DisplayPreferences:
        return DisplayPreferences(language=self.chosen.get(account_id, ""))


@dataclass
class Ehr:
    patients: dict[str, dict[str, Any]]
    down: bool = False
    reads: list[str] = field(default_factory=list)

    async def read(self, resource_type: str, resource_id: str) -> dict | None:
        self.reads.append(f"{resource_type}/{resource_id}")
        if self.down:
            raise ConnectionError("EHR down")
        return self.patients.get(resource_id)


@pytest.fixture
def ehr() -> Ehr:
    return Ehr({"pt-es": SPANISH_RECORD, "pt-en": ENGLISH_RECORD})


@pytest.fixture
def accounts() -> Accounts:
    return Accounts({"a-es": _record("a-es", patient_id="pt-es"), "a-en": _record("a-en", patient_id="pt-en"),
                     "a-care": _record("a-care", kind="caregiver")})


async def test_the_record_language_unless_the_person_chose_one(accounts: Accounts, ehr: Ehr) -> None:
    recipients = AccountRecipients(accounts, ehr)
    assert (await recipients.resolve("Patient/pt-es")).lang == "es"  # type: ignore[union-attr]
    assert (await recipients.resolve("account:a-en")).lang == "en"  # type: ignore[union-attr]
    accounts.chosen.update({"a-es": "en", "a-en": "es"})
    assert (await recipients.resolve("Patient/pt-es")).lang == "en"  # type: ignore[union-attr]
    assert (await recipients.resolve("account:a-en")).lang == "es"  # type: ignore[union-attr]
    assert ehr.reads == ["Patient/pt-es", "Patient/pt-en"]  # a choice made means no record read


async def test_a_caregiver_an_invitation_or_an_ehr_that_does_not_answer_means_english(accounts: Accounts,
                                                                                         ehr: Ehr) -> None:
    recipients = AccountRecipients(accounts, ehr)
    assert (await recipients.resolve("account:a-care")).lang == "en"  # type: ignore[union-attr]
    assert (await recipients.resolve("mailto:new@example.org")).lang == "en"  # type: ignore[union-attr]
    assert ehr.reads == []
    ehr.down = True
    assert (await recipients.resolve("Patient/pt-es")).lang == "en"  # type: ignore[union-attr]
    accounts.chosen["a-care"] = "es"
    assert (await recipients.resolve("account:a-care")).lang == "es"  # type: ignore[union-attr]


def test_every_notice_in_spanish_keeps_no_english_and_reads_at_grade_7() -> None:
    units = []
    for kind in KINDS:
        english = compose(kind, "/portal/results", "k", public_url="https://p.example")
        spanish = compose(kind, "/portal/results", "k", public_url="https://p.example", locale="es")
        assert spanish.subject != english.subject and spanish.key == english.key
        for sentence in (*english.text.split("\n\n"), english.subject):
            assert sentence.split(": ")[0].strip() not in spanish.text, (kind, sentence)
        assert "https://p.example/portal/results" in spanish.text
        assert short_text(spanish) == f"{spanish.text.split(chr(10))[0]} https://p.example/portal/results"
        units += [spanish.subject, *spanish.text.strip().split("\n\n")]
    message = compose("message", "/portal/messages", "k", public_url="https://p.example", locale="es")
    assert message.text.startswith("Tiene un mensaje nuevo en su portal del paciente.\n\nEntre para verlo: ")
    assert "Este mensaje se lo mandó su portal del paciente." in message.text
    grade = grade_units("Spanish notices", units, lang="es")
    assert grade.grade <= MAX_GRADE, grade.hardest()


def test_the_notice_modules_are_off_the_not_yet_translated_list() -> None:
    assert not {f"notifications/{m}.py" for m in ("notice", "reminders", "sms")} & NOT_YET_TRANSLATED_MODULES
