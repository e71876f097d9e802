"""The care team's side of portal access (`StaffInvitations`) over the real store, lockout, sessions and
enrolment pages with in-memory storage: who may invite, what the e-mail and the letter carry and where they
lead, the list of invited / enrolled / locked out, and the audited second-factor reset."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from smart_auth.accounts import AccountSettings, build_accounts
from smart_auth.accounts.mfa import new_recovery_codes, new_totp_secret
from smart_auth.accounts.models import AccountRecord
from smart_auth.accounts.router import build_accounts_router
from smart_auth.accounts.staff_invitations import (
    IdentityNotConfirmed,
    InvalidAddress,
    NoPortalAccount,
    NoticeMailer,
    PatientUnknown,
    StaffActionRefused,
    StaffInvitations,
    StaffMember,
)
from smart_auth.deps import AuthDeps
from smart_auth.keys import KeyStore
from tests.recording_audit import RecordingAudit

from .memory_redis import MemoryRedis
from .test_account_security import KeptGrants, Outbox

PUBLIC = "http://portal.test"
PATIENT = {"resourceType": "Patient", "id": "pt-7", "birthDate": "1980-04-23",
           "identifier": [{"system": "http://hospital.example.org/mrn", "value": "MRN-0007"}],
           "name": [{"given": ["Ada"], "family": "Okafor"}]}
FRONT_DESK = StaffMember("Practitioner/prac-desk", "front-desk", "acct-desk")
CLINICIAN = StaffMember("Practitioner/prac-doc", "clinician")


class Chart:
    async def read(self, resource_type: str, resource_id: str, request_id: str | None = None) -> dict | None:
        return PATIENT if (resource_type, resource_id) == ("Patient", "pt-7") else None

    async def search(self, resource_type: str, params: Any, request_id: str | None = None) -> dict:
        teams = {"Practitioner/prac-desk": ["pt-7", "pt-8"], "Practitioner/prac-doc": ["pt-8"]}
        return {"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "CareTeam", "subject": {"reference": f"Patient/{p}"}}}
            for p in teams.get(params.get("participant"), []) if resource_type == "CareTeam"]}


class Desk:
    def __init__(self, state: Path) -> None:
        self.audit, self.outbox, self.grants = RecordingAudit(), Outbox(), KeptGrants()
        self.deps = AuthDeps(redis=MemoryRedis(), keys=KeyStore.load_or_create(state / "k.pem"),
                             ehr=Chart(), audit=self.audit, public_url=PUBLIC,  # type: ignore[arg-type]
                             state_dir=state)
        self.accounts = build_accounts(self.deps, AccountSettings(public_url=PUBLIC, state_dir=state),
                                       sender=self.outbox)
        self.service: StaffInvitations = self.accounts.staff_invitations(self.grants)
        app = FastAPI()
        a = self.accounts
        app.include_router(build_accounts_router(self.deps, a.settings, a.sessions, a.store, a.sender, self.grants))
        self.browser = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)

    async def enrolled_patient(self) -> AccountRecord:
        store = self.accounts.store
        record = await store.create(AccountRecord(
            id="", username="ada.okafor", kind="patient", fhir_user="Patient/pt-7", patient_id="pt-7",
            password_hash="x", mfa_method="totp", totp_secret_sealed=store.box.seal(new_totp_secret())))
        await store.set_recovery_codes(record.id, new_recovery_codes())
        return record


@pytest.fixture
async def desk(tmp_path: Path) -> Any:
    d = Desk(tmp_path)
    yield d
    await d.browser.aclose()


async def test_an_emailed_invitation_carries_only_a_link_that_opens_enrolment(desk: Desk) -> None:
    issued = await desk.service.invite(None, FRONT_DESK, "pt-7", delivery="email", email="ada@example.org")
    mail = desk.outbox.sent[-1]
    assert mail["to"] == "ada@example.org" and mail["purpose"] == "invitation"
    assert "Okafor" not in mail["body"] and "1980" not in mail["body"]  # a link, no health information
    link = re.search(r"(http\S+/auth/enroll\?code=\S+)", mail["body"]).group(1)  # type: ignore[union-attr]
    assert link == issued.enroll_url
    page = await desk.browser.get(link.removeprefix(PUBLIC))
    assert page.status_code == 200 and "Confirm your identity" in page.text
    assert desk.audit.has("invitation", "success", fhir_user="Practitioner/prac-desk", patient_id="pt-7")


async def test_a_letter_code_is_typed_in_any_case_with_spaces_and_a_wrong_one_can_be_retyped(desk: Desk) -> None:
    issued = await desk.service.invite(None, CLINICIAN, "pt-7", delivery="letter")
    assert desk.outbox.sent == []  # nothing is e-mailed for a letter
    assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", issued.code)
    form = await desk.browser.get("/auth/enroll")
    assert form.status_code == 200 and 'name="code"' in form.text
    typed = " " + issued.code.upper().replace("-", " ") + " "
    page = await desk.browser.get("/auth/enroll", params={"code": typed})
    assert page.status_code == 200 and "Confirm your identity" in page.text
    wrong = await desk.browser.get("/auth/enroll", params={"code": "abcd-efgh-jkmn-pqrs"})
    assert wrong.status_code == 400 and "That code does not work" in wrong.text and 'name="code"' in wrong.text


@pytest.mark.parametrize("role", ["nurse", "billing"])
async def test_nurses_and_billing_staff_cannot_invite_or_reset(desk: Desk, role: str) -> None:
    staff = StaffMember("Practitioner/prac-x", role)
    with pytest.raises(StaffActionRefused):
        await desk.service.invite(None, staff, "pt-7", delivery="letter")
    await desk.enrolled_patient()
    with pytest.raises(StaffActionRefused):
        await desk.service.reset_second_factor(None, staff, "pt-7", birth_date="1980-04-23", mrn="MRN-0007",
                                               email="ada@example.org")
    assert desk.audit.events == [] and (await desk.service.overview()).invitations == []


async def test_bad_address_and_unknown_patient_create_nothing(desk: Desk) -> None:
    with pytest.raises(InvalidAddress):
        await desk.service.invite(None, FRONT_DESK, "pt-7", delivery="email", email="not-an-address")
    with pytest.raises(PatientUnknown):
        await desk.service.invite(None, FRONT_DESK, "pt-404", delivery="letter")
    assert (await desk.service.overview()).invitations == [] and desk.outbox.sent == []


async def test_the_list_shows_waiting_enrolled_and_locked_out(desk: Desk) -> None:
    store = desk.accounts.store
    first = await desk.service.invite(None, FRONT_DESK, "pt-7", delivery="letter")
    second = await desk.service.invite(None, FRONT_DESK, "pt-7", delivery="email", email="ada@example.org")
    third = await desk.service.invite(None, FRONT_DESK, "pt-7", delivery="letter")
    assert await store.consume_invitation(first.invitation)
    for _ in range(desk.accounts.settings.invitation_max_attempts):
        await store.invitation_failed_attempt(third.invitation, desk.accounts.settings.invitation_max_attempts)
    record = await desk.enrolled_patient()
    ctx = desk.service.ctx
    for _ in range(ctx.settings.login_max_failures):
        await ctx.lockout.record_failure(record.username)

    overview = await desk.service.overview("pt-7")
    status = {row.id: row.status for row in overview.invitations}
    assert status == {first.invitation.id: "enrolled", second.invitation.id: "waiting",
                      third.invitation.id: "locked"}
    assert overview.invitations[0].id == third.invitation.id  # newest first
    assert [a.username for a in overview.accounts] == ["ada.okafor"] and overview.accounts[0].locked_out
    assert {row.patient_name for row in overview.invitations} == {"Ada Okafor"}  # for the care team's list
    assert len(overview.locked_out) == 2 and [w.id for w in overview.waiting] == [second.invitation.id]
    assert (await desk.service.overview("pt-other")).invitations == []
    # The list without a patient shows a staff member's care-team patients only.
    mine = await desk.service.overview(among=await desk.service.care_team_patients(FRONT_DESK))
    assert len(mine.invitations) == 3 and len(mine.accounts) == 1
    theirs = await desk.service.overview(among=await desk.service.care_team_patients(CLINICIAN))
    assert theirs.invitations == [] and theirs.accounts == []


async def test_reset_needs_the_identity_check_and_is_audited(desk: Desk) -> None:
    record = await desk.enrolled_patient()
    ctx = desk.service.ctx
    for _ in range(ctx.settings.login_max_failures):
        await ctx.lockout.record_failure(record.username)
    with pytest.raises(IdentityNotConfirmed):
        await desk.service.reset_second_factor(None, FRONT_DESK, "pt-7", birth_date="1980-04-24", mrn="MRN-0007",
                                               email="ada@example.org")
    unchanged = await desk.accounts.store.get_record(record.id)
    assert unchanged is not None and unchanged.mfa_method == "totp" and unchanged.totp_secret_sealed
    assert desk.audit.has("mfa-reset", "failure", fhir_user="Practitioner/prac-desk", patient_id="pt-7")
    assert desk.grants.calls == [] and await ctx.lockout.locked(record.username)

    await desk.service.reset_second_factor(None, FRONT_DESK, "pt-7", birth_date="04/23/1980", mrn="mrn-0007",
                                           email="ada@example.org")
    after = await desk.accounts.store.get_record(record.id)
    assert after is not None and (after.mfa_method, after.contact, after.totp_secret_sealed) == (
        "email", "ada@example.org", None)
    assert await desk.accounts.store.recovery_codes_left(record.id) == 0
    assert not await ctx.lockout.locked(record.username)
    assert desk.grants.calls == [(record.id, None)]
    assert desk.audit.has("mfa-reset", "success", fhir_user="Practitioner/prac-desk", patient_id="pt-7",
                          account_id="acct-desk")
    assert desk.outbox.sent[-1]["to"] == "ada@example.org" and desk.outbox.sent[-1]["purpose"] == "mfa-reset"


async def test_reset_for_a_patient_without_an_account_says_so(desk: Desk) -> None:
    with pytest.raises(NoPortalAccount):
        await desk.service.reset_second_factor(None, CLINICIAN, "pt-7", birth_date="1980-04-23", mrn="MRN-0007",
                                               email="ada@example.org")


class Notices:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    async def notify(self, to: str, kind: str, link: str, *, key: str | None = None) -> bool:
        self.calls.append((to, kind, link))
        return True


async def test_through_the_notifications_outbox_the_notice_carries_a_path_on_our_site(desk: Desk) -> None:
    notices = Notices()
    service = desk.accounts.staff_invitations(desk.grants, NoticeMailer(notices))
    issued = await service.invite(None, FRONT_DESK, "pt-7", delivery="email", email="ada@example.org")
    assert notices.calls == [("mailto:ada@example.org", "invitation", f"/auth/enroll?code={issued.code}")]
    record = await desk.enrolled_patient()
    await service.reset_second_factor(None, FRONT_DESK, "pt-7", birth_date="1980-04-23", ssn_last4="",
                                      mrn="MRN-0007", email="ada@example.org")
    assert notices.calls[-1] == (f"account:{record.id}", "sign-in-settings", "/auth/login")
    assert desk.outbox.sent == []  # nothing went around the outbox


async def test_an_invitation_record_that_cannot_be_opened_is_left_out_not_a_broken_page(desk: Desk) -> None:
    kept = await desk.service.invite(None, FRONT_DESK, "pt-7", delivery="letter")
    other = await desk.service.invite(None, FRONT_DESK, "pt-7", delivery="letter")
    store, redis = desk.accounts.store, desk.deps.redis
    # One record sealed with a key this store does not hold (another deployment's, or a lost key).
    key = f"auth:invitation:{other.invitation.id}"
    raw = await redis.get(key)
    raw = raw.decode() if isinstance(raw, bytes) else raw
    await redis.set(key, raw[:-8] + ("A" if raw[-8] != "A" else "B") + raw[-7:])
    listed = await store.recent_invitations()
    assert [i.id for i in listed] == [kept.invitation.id]
    # The same for an account record: the list of enrolled patients leaves it out.
    patient = await desk.enrolled_patient()
    await redis.set("auth:account:moved", await redis.get(f"auth:account:{patient.id}"))
    assert [r.id for r in await store.patient_accounts()] == [patient.id]
