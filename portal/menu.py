"""Where things are in the portal: one list for the top navigation and the "All pages" page.

The top navigation keeps to the everyday tasks so it fits a phone screen in two short rows; everything
else is one tap away on /portal/menu, grouped and explained in a line each.
"""

from __future__ import annotations

from dataclasses import dataclass

MENU_PAGE = "/portal/menu"


@dataclass(frozen=True)
class Place:
    href: str
    label: str
    says: str  # one plain line under the link on the "All pages" page
    group: str
    on_top: bool = False  # also in the top navigation


GROUPS = ("Your health", "Visits and messages", "Bills", "You and your account")

PLACES: tuple[Place, ...] = (
    Place("/portal/", "Home", "What is new, and what to do next.", "Your health", on_top=True),
    Place("/portal/todo", "To do", "Medicines running out, visits, forms, and vaccines or check-ups due.",
          "Your health"),
    Place("/portal/record", "Health record", "Your visits, health problems, medicines, allergies and vaccines.",
          "Your health"),
    Place("/portal/results", "Test results", "Lab tests and scans, with what they mean.", "Your health", on_top=True),
    Place("/portal/medications", "Medicines", "Your prescriptions. Ask for a refill or a renewal.", "Your health",
          on_top=True),
    Place("/portal/referrals", "Referrals", "Ask to see a specialist, and see how it is going.", "Your health"),
    Place("/portal/notebook", "Health notebook", "Write down how you feel, side effects and questions for your next "
          "visit. Share them when you want.", "Your health"),
    Place("/portal/download", "Download", "Save or print a copy of your record.", "Your health"),
    Place("/portal/appointments", "Appointments", "Your visits. Book, move or cancel one, or add it to your calendar.",
          "Visits and messages", on_top=True),
    Place("/portal/messages", "Messages", "Write to your care team and read their answers.", "Visits and messages",
          on_top=True),
    Place("/portal/forms", "Forms", "Forms your clinic asked you to fill in, like a check-in before a visit.",
          "Visits and messages"),
    Place("/portal/billing", "Bills", "Your statements. Pay a bill or ask about it.", "Bills", on_top=True),
    Place("/portal/profile", "Profile", "Your phone, e-mail, address, emergency contacts, insurance and allergies.",
          "You and your account"),
    Place("/portal/caregivers", "Caregivers", "Who can help with your record, and whose record you help with.",
          "You and your account"),
    Place("/portal/account", "Your sign-ins", "Where and when you signed in. Sign out other devices.",
          "You and your account"),
    Place("/portal/access-log", "Who looked", "Every time someone opened or changed your record.",
          "You and your account"),
    Place("/portal/settings", "Display settings", "Larger text or stronger contrast, kept for each time you sign in.",
          "You and your account"),
    Place("/portal/help", "Help", "Answers to common questions, the guide to the portal, and a quick self-check.",
          "You and your account"),
)


def top_places() -> list[Place]:
    return [p for p in PLACES if p.on_top]


def grouped_places() -> list[tuple[str, list[Place]]]:
    return [(group, [p for p in PLACES if p.group == group]) for group in GROUPS]


def is_current(place_href: str, path: str) -> bool:
    return path == place_href or (place_href != "/portal/" and path.startswith(place_href))
