"""The first-use guide: one short line per part of the portal, a version for patients and one for
caregivers (how their access works and whose record is open). Shown once per account, after the first
sign-in (`AccountStore.first_guide`); anyone can open it again from the help page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web.i18n import lazy_gettext as _l

GUIDE_PAGE = "/portal/guide"


@dataclass(frozen=True)
class Stop:
    title: Any  # lazy words: shown in the language of the page
    says: Any
    href: str


PATIENT_STOPS: tuple[Stop, ...] = (
    Stop(_l("Home"), _l("Here you can see what is new and what to do next."), "/portal/"),
    Stop(_l("Test results"),
         _l("Here you can see your test results, like lab tests and scans, with what each one means."),
         "/portal/results"),
    Stop(_l("Messages"), _l("Here you can ask your care team a question and read their answers."), "/portal/messages"),
    Stop(_l("Appointments"), _l("Here you can book, move or cancel a visit."), "/portal/appointments"),
    Stop(_l("Medicines"), _l("Here you can see your medicines and ask for a refill."), "/portal/medications"),
    Stop(_l("Health record"), _l("Here you can read your visit notes, health problems, allergies and shots."),
         "/portal/record"),
    Stop(_l("Bills"), _l("Here you can see and pay your bills."), "/portal/billing"),
    Stop(_l("All pages"), _l("Here you can find everything else: forms, referrals, your profile and more."),
         "/portal/menu"),
    Stop(_l("Help"), _l("Here you can find answers to common questions about each page, and a quick self-check."),
         "/portal/help"),
)

CAREGIVER_STOPS: tuple[Stop, ...] = (
    Stop(_l("Whose record is open"), _l("The bar at the top of each page names the person whose record you see. "
         "Check it before you send a message or book a visit."), "/portal/"),
    Stop(_l("Your own sign-in"), _l("You use your own account, never theirs. They chose to let you help, and they "
         "can stop it at any time."), "/portal/help/caregivers"),
    Stop(_l("What you can do"), _l("Read their record and help with what they allow, like messages and visits. "
         "Each time you open or change their record, it shows in their Who looked list."), "/portal/access-log"),
    Stop(_l("More than one person"), _l("If you help more than one person, choose Switch record in the top bar to "
         "open someone else's record."), "/portal/caregivers"),
    Stop(_l("Help"), _l("Answers to common questions about each page."), "/portal/help"),
)


def stops_for(is_caregiver: bool) -> tuple[Stop, ...]:
    return CAREGIVER_STOPS if is_caregiver else PATIENT_STOPS
