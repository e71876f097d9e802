"""What the OAuth side needs from the accounts side (smart_auth/accounts/), as protocols.

`smart_auth.accounts.{models,sessions,store}` implement them; typing against protocols keeps the OAuth
side importable and testable on its own.
"""

from __future__ import annotations

from typing import Any, Protocol


class AccountLike(Protocol):
    id: str
    username: str
    kind: str  # "patient" | "caregiver" | "staff"
    fhir_user: str  # "Patient/pt-0001" | "RelatedPerson/rp-x" | "Practitioner/prac-01"
    patient_id: str | None


class SessionLike(Protocol):
    id: str
    csrf_token: str

    @property
    def account(self) -> AccountLike: ...


class Sessions(Protocol):
    async def current(self, request: Any) -> Any: ...  # SessionLike | None

    async def is_alive(self, session_id: str) -> bool: ...


class PatientLinkLike(Protocol):
    patient_id: str
    display_name: str | None
    related_person_id: str | None


class PatientDirectory(Protocol):
    async def patients_for(self, account_id: str) -> list[Any]: ...  # list[PatientLinkLike]
