"""Who a notice goes to, looked up when it is sent (so the queue holds no addresses of account holders, and
a person who switches a kind off before it goes out does not get it)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from mappers.notices import KINDS

EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
PHONE = re.compile(r"\+?[0-9 ()\-]{7,20}")


@dataclass(frozen=True)
class Recipient:
    contact: str  # an e-mail address or a phone number
    off: frozenset[str] = field(default_factory=frozenset)  # kinds the person switched off


@dataclass(frozen=True)
class Route:
    channel: str
    address: str


class AccountLookup(Protocol):
    """What the account store offers (smart_auth's AccountStore)."""

    async def get_record(self, account_id: str) -> Any: ...

    async def account_for_patient(self, patient_id: str) -> str | None: ...


class AccountRecipients:
    def __init__(self, accounts: AccountLookup) -> None:
        self.accounts = accounts

    async def resolve(self, to: str) -> Recipient | None:
        if to.startswith("mailto:"):
            return Recipient(to.removeprefix("mailto:"))
        if to.startswith("Patient/"):
            account_id = await self.accounts.account_for_patient(to.removeprefix("Patient/"))
        else:
            account_id = to.removeprefix("account:")
        record = await self.accounts.get_record(account_id) if account_id else None
        address = notice_address(record) if record is not None else None
        if not address:
            return None
        return Recipient(address, frozenset(record.notices_off or ()))


def notice_address(record: Any) -> str | None:
    """The address the person chose on their profile; before they chose, their sign-in contact. An address
    they emptied means no e-mail (a phone number as sign-in contact still gets text messages)."""
    if record.notice_email:
        return str(record.notice_email)
    contact = str(record.contact or "")
    if "@" in contact:
        return contact if record.notice_email is None else None
    return contact or None


def route(recipient: Recipient | None, kind: str) -> Route | None:
    """Where the notice goes, or None (no address, or the person switched this kind off)."""
    if recipient is None:
        return None
    if kind in recipient.off and KINDS[kind].choosable:
        return None
    contact = recipient.contact.strip()
    if EMAIL.fullmatch(contact):
        return Route("email", contact)
    if PHONE.fullmatch(contact):
        return Route("sms", contact)
    return None
