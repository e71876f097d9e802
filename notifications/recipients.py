"""Who a notice goes to, looked up when it is sent (so the queue holds no addresses of account holders, and
a person who switches a kind off before it goes out does not get it)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from locales import ENGLISH, choose_locale
from mappers.languages import preferred_language
from mappers.notices import KINDS

log = logging.getLogger("notifications")

EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
PHONE = re.compile(r"\+?[0-9 ()\-]{7,20}")


@dataclass(frozen=True)
class Recipient:
    contact: str  # an e-mail address or a phone number
    off: frozenset[str] = field(default_factory=frozenset)  # kinds the person switched off
    lang: str = ENGLISH  # the language the notice is written in


@dataclass(frozen=True)
class Route:
    channel: str
    address: str


class AccountLookup(Protocol):
    """What the account store offers (smart_auth's AccountStore)."""

    async def get_record(self, account_id: str) -> Any: ...

    async def account_for_patient(self, patient_id: str) -> str | None: ...

    async def display_preferences(self, account_id: str) -> Any: ...  # `.language`: chosen with the switch


class PatientSource(Protocol):
    """The EHR, read by the server (as the visit reminders are): a patient's preferred language."""

    async def read(self, resource_type: str, resource_id: str) -> dict | None: ...


class AccountRecipients:
    def __init__(self, accounts: AccountLookup, ehr: PatientSource | None = None) -> None:
        self.accounts = accounts
        self.ehr = ehr

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
        return Recipient(address, frozenset(record.notices_off or ()), await self.language(record))

    async def language(self, record: Any) -> str:
        """The person's language, as their portal pages choose it: what they chose with the switch, else the
        preferred language in their own health record (patients); else English (a caregiver's record is not
        read, as at sign-in). An EHR that does not answer means English: a notice is not held up for it."""
        chosen = (await self.accounts.display_preferences(record.id)).language or None
        if chosen or record.kind != "patient" or not record.patient_id or self.ehr is None:
            return choose_locale(chosen, None)
        try:
            patient = await self.ehr.read("Patient", record.patient_id)
        except Exception as exc:
            log.info("a notice's language could not be read from the record: %s", type(exc).__name__)
            patient = None
        return choose_locale(None, preferred_language(patient))


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
