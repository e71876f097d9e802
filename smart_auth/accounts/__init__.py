"""Patient, caregiver and staff accounts: invitations, enrolment with identity proofing, passwords,
MFA, lockout, server-side sessions with CSRF, password reset, a signed-in person's own sign-in settings
(password, authenticator app, recovery codes) and caregiver (proxy) access.

The composition root builds `Accounts` with `build_accounts(deps, settings, on_session_end=...)` and mounts
`accounts.router(grants)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter

from ..deps import AuthDeps
from .context import GrantRevoker
from .messaging import MessageSender, NoticeSink, OutboxSender
from .models import Account, PatientLink
from .secrets_box import SecretBox
from .sessions import Session, SessionManager
from .settings import AccountSettings
from .store import AccountStore

if TYPE_CHECKING:
    from .staff_invitations import InvitationMailer, StaffInvitations

__all__ = [
    "Account",
    "AccountSettings",
    "AccountStore",
    "Accounts",
    "GrantRevoker",
    "MessageSender",
    "NoticeSink",
    "OutboxSender",
    "PatientLink",
    "Session",
    "SessionManager",
    "build_accounts",
]


@dataclass
class Accounts:
    deps: AuthDeps
    settings: AccountSettings
    store: AccountStore
    sessions: SessionManager
    sender: MessageSender
    notices: NoticeSink | None = None

    def router(self, grants: GrantRevoker) -> APIRouter:
        from .router import build_accounts_router  # deferred: keeps `import smart_auth.accounts` light

        return build_accounts_router(self.deps, self.settings, self.sessions, self.store, self.sender, grants,
                                     notices=self.notices)

    def staff_invitations(self, grants: GrantRevoker, mailer: InvitationMailer | None = None) -> StaffInvitations:
        """The care team's side of patients' portal access (invite, list, reset a second factor)."""
        from .router import build_ctx
        from .staff_invitations import StaffInvitations

        ctx = build_ctx(self.deps, self.settings, self.sessions, self.store, self.sender, grants)
        return StaffInvitations(ctx, mailer)


def build_accounts(
    deps: AuthDeps,
    settings: AccountSettings | None = None,
    *,
    sender: MessageSender | None = None,
    on_session_end: Callable[[str], Awaitable[object]] | None = None,
    notices: NoticeSink | None = None,
) -> Accounts:
    settings = settings or AccountSettings()
    secret = settings.accounts_secret_key.get_secret_value() if settings.accounts_secret_key else None
    box = SecretBox.load_or_create(deps.state_dir, secret)
    store = AccountStore(deps.redis, box, deps.now)
    sessions = SessionManager(
        deps.redis, store, settings, secure_cookies=deps.public_url.startswith("https://"), now=deps.now,
        on_end=on_session_end,
    )
    sender = sender or OutboxSender(deps.state_dir / "outbox.jsonl")
    return Accounts(deps, settings, store, sessions, sender, notices)
