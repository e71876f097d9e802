"""Patients' portal access as the care team manages it: invite a patient (an e-mail with a one-time link, or
a printed letter with a code they type), see who was invited, who enrolled and who is locked out, and reset
a patient's second factor once the staff member has checked who they are.

An in-process service for the staff pages (`StaffInvitations`); every action is recorded as a security
event (the patient sees it in their access log by the staff member's name) before it takes effect. Which
staff roles may act is decided here, so a page that forgot to check still cannot let billing staff invite.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

from fastapi import Request

from .context import Ctx
from .factors import EMAIL_RE
from .identity import display_name, identity_matches
from .models import AccountRecord, Invitation

Delivery = Literal["email", "letter"]
InvitationStatus = Literal["waiting", "enrolled", "expired", "locked"]

# The people who see a patient face to face or on the phone with the chart open: they invite, and they
# check identity before resetting a second factor. Nurses and billing staff send patients to them.
INVITING_ROLES = frozenset({"clinician", "front-desk"})
RESETTING_ROLES = frozenset({"clinician", "front-desk"})


@dataclass(frozen=True)
class StaffMember:
    fhir_user: str  # "Practitioner/<id>"
    role: str  # clinician | nurse | front-desk | billing
    account_id: str | None = None


class StaffActionRefused(Exception):
    """This staff member's role may not do this."""


class PatientUnknown(LookupError):
    """No such patient in the EHR."""


class NoPortalAccount(LookupError):
    """The patient has not enrolled (nothing to reset)."""


class IdentityNotConfirmed(Exception):
    """The details checked do not match the chart."""


class InvalidAddress(ValueError):
    """An e-mail address that cannot be one."""


class InvitationMailer(Protocol):
    """How an invitation e-mail leaves: the notifications outbox once it is wired, else the account
    messages' sender. It carries a link and no health information."""

    async def send_invitation(self, to: str, link: str, *, days_valid: int) -> None: ...

    async def send_factor_reset(self, to: str, account_id: str, sign_in_link: str) -> None: ...


class Notify(Protocol):
    """The notifications outbox's one call (`notifications.Notifications.notify`)."""

    async def notify(self, to: str, kind: str, link: str, *, key: str | None = None) -> bool: ...


class NoticeMailer:
    """The notifications outbox as the invitation mailer: durable, retried, sent once, and the e-mail holds
    the fixed invitation text and the link only."""

    def __init__(self, notices: Notify) -> None:
        self.notices = notices

    async def send_invitation(self, to: str, link: str, *, days_valid: int) -> None:
        parts = urlsplit(link)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        await self.notices.notify(f"mailto:{to}", "invitation", path, key=f"invitation:{parts.query}")

    async def send_factor_reset(self, to: str, account_id: str, sign_in_link: str) -> None:
        await self.notices.notify(f"account:{account_id}", "sign-in-settings", urlsplit(sign_in_link).path)


class SenderMailer:
    """The account messages' sender (`MessageSender`) as the invitation mailer."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    async def send_invitation(self, to: str, link: str, *, days_valid: int) -> None:
        text = (f"You are invited to the {self.ctx.settings.totp_issuer}. Enrol at {link} "
                f"(valid for {days_valid} days).")
        await self.ctx.sender.send("email", to, "Your patient portal invitation", text, purpose="invitation")

    async def send_factor_reset(self, to: str, account_id: str, sign_in_link: str) -> None:
        text = (f"Your care team reset how you confirm your sign-in to the {self.ctx.settings.totp_issuer}. "
                f"From now on we e-mail you a code when you sign in at {sign_in_link}. If you did not ask "
                "for this, call the clinic.")
        await self.ctx.sender.send("email", to, "Your sign-in was changed", text, purpose="mfa-reset")


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    code: str
    enroll_url: str  # the one-time link, code included
    enroll_page: str  # where a letter's reader types the code


@dataclass(frozen=True)
class InvitationRow:
    id: str
    patient_id: str
    patient_name: str | None
    delivery: str
    status: InvitationStatus
    created_at: float
    expires_at: float
    created_by: str


@dataclass(frozen=True)
class AccountRow:
    patient_id: str
    patient_name: str | None
    username: str
    enrolled_at: float
    second_factor: str
    locked_out: bool


@dataclass(frozen=True)
class AccessOverview:
    invitations: list[InvitationRow]
    accounts: list[AccountRow]

    @property
    def waiting(self) -> list[InvitationRow]:
        return [i for i in self.invitations if i.status == "waiting"]

    @property
    def locked_out(self) -> list[InvitationRow | AccountRow]:
        """Accounts locked after failed sign-ins and invitations locked after failed identity checks."""
        return [*[a for a in self.accounts if a.locked_out], *[i for i in self.invitations if i.status == "locked"]]


def invitation_status(invitation: Invitation, now: float) -> InvitationStatus:
    if invitation.used:
        return "enrolled"
    if invitation.locked:
        return "locked"
    return "expired" if invitation.expires_at <= now else "waiting"


def _require(staff: StaffMember, roles: Iterable[str], what: str) -> None:
    if staff.role not in roles or not staff.fhir_user.startswith("Practitioner/"):
        raise StaffActionRefused(what)


class StaffInvitations:
    def __init__(self, ctx: Ctx, mailer: InvitationMailer | None = None) -> None:
        self.ctx = ctx
        self.mailer = mailer or SenderMailer(ctx)

    @property
    def base(self) -> str:
        return self.ctx.deps.public_url.rstrip("/")

    async def invite(self, request: Request | None, staff: StaffMember, patient_id: str, *, delivery: Delivery,
                     email: str | None = None) -> IssuedInvitation:
        """Issue an invitation; by e-mail it is sent at once, by letter the code is returned for printing."""
        ctx = self.ctx
        _require(staff, INVITING_ROLES, "invite patients")
        email = (email or "").strip() or None
        if delivery == "email" and (email is None or not EMAIL_RE.match(email) or len(email) > 254):
            raise InvalidAddress(email or "")
        patient = await ctx.ehr_read("Patient", patient_id)
        if patient is None or patient.get("resourceType") != "Patient":
            raise PatientUnknown(patient_id)
        await ctx.audit(request, "invitation", "success", fhir_user=staff.fhir_user, account_id=staff.account_id,
                        patient_id=patient_id, detail=f"delivery={delivery}")
        invitation, code = await ctx.store.create_invitation(
            kind="patient", patient_id=patient_id, ttl_seconds=ctx.settings.invitation_ttl_seconds,
            created_by=staff.fhir_user, email=email if delivery == "email" else None, delivery=delivery,
            patient_display=display_name(patient))
        issued = IssuedInvitation(invitation, code, f"{self.base}/auth/enroll?code={code}", f"{self.base}/auth/enroll")
        if delivery == "email" and email:
            await self.mailer.send_invitation(email, issued.enroll_url,
                                              days_valid=ctx.settings.invitation_ttl_seconds // 86400)
        return issued

    async def overview(self, patient_id: str | None = None, *, among: set[str] | None = None) -> AccessOverview:
        """Invitations (newest first) and patient accounts: one patient's, or those of the patients in
        `among` (a staff member's care-team patients), or everyone's."""
        ctx, now = self.ctx, self.ctx.now()

        def shown(pid: str | None) -> bool:
            return bool(pid) and patient_id in (None, pid) and (among is None or pid in among)

        invitations = [
            InvitationRow(i.id, i.patient_id, i.patient_display, i.delivery, invitation_status(i, now),
                          i.created_at, i.expires_at, i.created_by)
            for i in await ctx.store.recent_invitations() if i.kind == "patient" and shown(i.patient_id)
        ]
        accounts = [
            AccountRow(r.patient_id or "", r.display_name, r.username, r.created_at, r.mfa_method,
                       await ctx.lockout.locked(r.username))
            for r in await ctx.store.patient_accounts() if shown(r.patient_id)
        ]
        return AccessOverview(invitations, accounts)

    async def care_team_patients(self, staff: StaffMember, max_pages: int = 10) -> set[str]:
        """The patients whose CareTeam lists this staff member: the list page shows only theirs (the
        care-team rule, as for charts); anyone else's is one chart search away, through the gateway."""
        ehr, found = self.ctx.deps.ehr, set()
        bundle = await ehr.search("CareTeam", {"participant": staff.fhir_user, "_elements": "subject",
                                               "_count": "500"})
        for _ in range(max_pages):
            for entry in bundle.get("entry") or []:
                subject = ((entry.get("resource") or {}).get("subject") or {}).get("reference") or ""
                if subject.startswith("Patient/"):
                    found.add(subject.removeprefix("Patient/"))
            following = next((link.get("url") for link in bundle.get("link") or []
                              if link.get("relation") == "next"), None)
            if not following:
                break
            response = await ehr.request("GET", str(following))
            bundle = response.json() if response.status_code == 200 else {}
        return found

    async def reset_second_factor(self, request: Request | None, staff: StaffMember, patient_id: str, *,
                                  birth_date: str, mrn: str = "", ssn_last4: str = "", email: str) -> AccountRecord:
        """After the staff member checked the patient's date of birth and MRN (or SSN's last four digits)
        against the chart: their authenticator and recovery codes stop working, every sign-in and app grant
        ends, a sign-in lock is lifted, and from now on a code is e-mailed to `email` at sign-in (they can
        add a new authenticator app from their security page)."""
        ctx = self.ctx
        _require(staff, RESETTING_ROLES, "reset a patient's second factor")
        email = email.strip()
        if not EMAIL_RE.match(email) or len(email) > 254:
            raise InvalidAddress(email)
        record = await ctx.store.patient_account(patient_id)
        if record is None:
            raise NoPortalAccount(patient_id)
        patient = await ctx.ehr_read("Patient", patient_id)
        if not identity_matches(patient, birth_date=birth_date, mrn=mrn, ssn_last4=ssn_last4):
            await ctx.audit(request, "mfa-reset", "failure", fhir_user=staff.fhir_user, account_id=staff.account_id,
                            patient_id=patient_id, detail="identity-check")
            raise IdentityNotConfirmed(patient_id)
        # Recorded first: a reset that cannot be recorded does not happen.
        await ctx.audit(request, "mfa-reset", "success", fhir_user=staff.fhir_user, account_id=staff.account_id,
                        patient_id=patient_id, detail=f"account={record.id} method=email")
        record.mfa_method, record.contact, record.totp_secret_sealed = "email", email, None
        await ctx.store.save(record)
        await ctx.store.clear_recovery_codes(record.id)
        await ctx.lockout.clear(record.username)
        await ctx.lockout.unlock(record.username)
        await ctx.sessions.end_all_for(record.id)
        await ctx.grants.revoke_for(record.id)
        await self.mailer.send_factor_reset(email, record.id, f"{self.base}/auth/login")
        return record
