"""Account data: the public seam types (Account, PatientLink) and the records kept in Redis."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

AccountKind = Literal["patient", "caregiver", "staff"]
MfaMethod = Literal["totp", "email", "sms"]


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    kind: AccountKind
    fhir_user: str  # e.g. "Patient/pt-0001", "RelatedPerson/rp-1", "Practitioner/prac-01"
    patient_id: str | None  # own record (patients only)


@dataclass(frozen=True)
class PatientLink:
    patient_id: str
    display_name: str | None
    related_person_id: str | None  # set when the access is by proxy


@dataclass
class AccountRecord:
    """Everything stored for an account. Secrets are only ever hashes or sealed (encrypted) values."""

    id: str
    username: str
    kind: AccountKind
    fhir_user: str
    patient_id: str | None
    password_hash: str
    mfa_method: MfaMethod
    totp_secret_sealed: str | None = None
    contact: str | None = None  # email address or phone number for one-time codes
    display_name: str | None = None  # the patient's own name for their pages (never logged)
    created_at: float = 0.0
    password_changed_at: float = 0.0
    # Notice kinds the person switched off (mappers.notices); not clinical, so kept here, not in the EHR.
    notices_off: list[str] = field(default_factory=list)
    # Where notices go by e-mail (set on the profile page; first the invitation's address). Not `contact`:
    # that one receives sign-in codes and only changes with the sign-in settings.
    notice_email: str | None = None

    def public(self) -> Account:
        return Account(self.id, self.username, self.kind, self.fhir_user, self.patient_id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccountRecord:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


InvitationKind = Literal["patient", "caregiver"]


@dataclass
class Invitation:
    id: str
    kind: InvitationKind
    patient_id: str
    code_hash: str
    expires_at: float
    created_at: float
    created_by: str  # "cli", "admin-key" or the staff account / fhirUser
    email: str | None = None
    phone: str | None = None
    proxy_link_id: str | None = None  # caregiver invitations
    locked: bool = False
    used: bool = False
    delivery: str = "link"  # how the code reached the person: "link" (shown), "email", "sms" or "letter"
    patient_display: str | None = None  # the patient's name for the care team's list (sealed like the rest)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Invitation:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


ProxyStatus = Literal["invited", "active", "withdrawn"]


@dataclass
class ProxyLink:
    """A caregiver's access to one patient's record (backed by a RelatedPerson in the EHR)."""

    id: str
    patient_id: str
    related_person_id: str
    status: ProxyStatus
    caregiver_name: str
    relationship: str
    caregiver_email: str | None = None
    caregiver_account_id: str | None = None
    invitation_id: str | None = None
    patient_display: str | None = None
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProxyLink:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
