"""The first-use guide: one short line per part of the portal, a version for patients and one for
caregivers (how their access works and whose record is open). Shown once per account, after the first
sign-in (`AccountStore.first_guide`); anyone can open it again from the help page.
"""

from __future__ import annotations

from dataclasses import dataclass

GUIDE_PAGE = "/portal/guide"


@dataclass(frozen=True)
class Stop:
    title: str
    says: str
    href: str


PATIENT_STOPS: tuple[Stop, ...] = (
    Stop("Home", "Here you can see what is new and what to do next.", "/portal/"),
    Stop("Test results", "Here you can see your test results, like lab tests and scans, with what each one means.",
         "/portal/results"),
    Stop("Messages", "Here you can ask your care team a question and read their answers.", "/portal/messages"),
    Stop("Appointments", "Here you can book, move or cancel a visit.", "/portal/appointments"),
    Stop("Medicines", "Here you can see your medicines and ask for a refill.", "/portal/medications"),
    Stop("Health record", "Here you can read your visit notes, health problems, allergies and shots.",
         "/portal/record"),
    Stop("Bills", "Here you can see and pay your bills.", "/portal/billing"),
    Stop("All pages", "Here you can find everything else: forms, referrals, your profile and more.", "/portal/menu"),
    Stop("Help", "Here you can find answers to common questions about each page, and a quick self-check.",
         "/portal/help"),
)

CAREGIVER_STOPS: tuple[Stop, ...] = (
    Stop("Whose record is open", "The bar at the top of each page names the person whose record you see. "
         "Check it before you send a message or book a visit.", "/portal/"),
    Stop("Your own sign-in", "You use your own account, never theirs. They chose to let you help, and they "
         "can stop it at any time.", "/portal/help/caregivers"),
    Stop("What you can do", "Read their record and help with what they allow, like messages and visits. "
         "Each time you open or change their record, it shows in their Who looked list.", "/portal/access-log"),
    Stop("More than one person", "If you help more than one person, choose Switch record in the top bar to "
         "open someone else's record.", "/portal/caregivers"),
    Stop("Help", "Answers to common questions about each page.", "/portal/help"),
)


def stops_for(is_caregiver: bool) -> tuple[Stop, ...]:
    return CAREGIVER_STOPS if is_caregiver else PATIENT_STOPS
