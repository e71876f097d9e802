"""The typed state of the multi-step flows (sign-in, enrolment, password reset, a new authenticator), kept in
the pre-session.

Each flow owns one `FlowSlot`; what a step knows is a field of its state class, not a key in a dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Generic, TypeVar

from .sessions import PreSession, SessionManager

T = TypeVar("T")


@dataclass
class SignInState:
    """Password accepted; waiting for the second factor."""

    account_id: str
    username: str
    next_url: str


@dataclass
class EnrolmentState:
    invitation_id: str
    identity_checked: bool = False
    display_name: str | None = None  # the patient's name from the chart, for their own pages
    username: str | None = None
    password_hash: str | None = None  # set once username and password passed the rules
    totp_sealed: str | None = None  # the authenticator secret offered (sealed with the accounts key)
    otp_channel: str | None = None  # "email" | "sms" when a code was sent instead
    otp_address: str | None = None

    @property
    def has_credentials(self) -> bool:
        return self.identity_checked and bool(self.username and self.password_hash)


@dataclass
class ResetState:
    username: str
    account_id: str | None  # None for an unknown username: the steps look the same and never succeed
    factor: str | None = None  # the second factor that passed; None until then


@dataclass
class AuthenticatorState:
    """A signed-in person setting up a new authenticator app: the key offered, kept until a code from it works."""

    account_id: str
    totp_sealed: str


class FlowSlot(Generic[T]):
    """Where one flow's state lives in the pre-session."""

    def __init__(self, name: str, kind: type[T]) -> None:
        self.name = name
        self.kind = kind
        self._fields = {f.name for f in fields(kind)}  # type: ignore[arg-type]

    def get(self, pre: PreSession) -> T | None:
        raw = pre.flows.get(self.name)
        if not isinstance(raw, dict):
            return None
        try:
            return self.kind(**{k: v for k, v in raw.items() if k in self._fields})
        except TypeError:  # state written by an older release: start the flow again
            return None

    async def save(self, sessions: SessionManager, pre: PreSession, state: T) -> None:
        pre.flows[self.name] = asdict(state)  # type: ignore[call-overload]
        await sessions.save_presession(pre)

    async def clear(self, sessions: SessionManager, pre: PreSession) -> None:
        pre.flows.pop(self.name, None)
        await sessions.save_presession(pre)


SIGN_IN = FlowSlot("login", SignInState)
ENROLMENT = FlowSlot("enroll", EnrolmentState)
RESET = FlowSlot("reset", ResetState)
NEW_AUTHENTICATOR = FlowSlot("new-authenticator", AuthenticatorState)
