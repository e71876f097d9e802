"""Where things are in the portal: one list for the top navigation and the "All pages" page.

The top navigation keeps to the everyday tasks so it fits a phone screen in two short rows; everything
else is one tap away on /portal/menu, grouped and explained in a line each. The words are marked for the
catalogue and become the reader's language when a page shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web.i18n import lazy_gettext as _l

MENU_PAGE = "/portal/menu"


@dataclass(frozen=True)
class Place:
    href: str
    label: Any  # lazy words: in the language of the page showing them
    says: Any  # one plain line under the link on the "All pages" page
    group: str  # a key of GROUP_NAMES
    on_top: bool = False  # also in the top navigation


GROUP_NAMES: dict[str, Any] = {"health": _l("Your health"), "visits": _l("Visits and messages"),
                               "bills": _l("Bills"), "account": _l("You and your account")}
GROUPS = tuple(GROUP_NAMES)

PLACES: tuple[Place, ...] = (
    Place("/portal/", _l("Home"), _l("What is new, and what to do next."), "health", on_top=True),
    Place("/portal/todo", _l("To do"),
          _l("Medicines running out, visits, forms, and vaccines or check-ups due."), "health"),
    Place("/portal/record", _l("Health record"),
          _l("Your visits, health problems, medicines, allergies and vaccines."), "health"),
    Place("/portal/results", _l("Test results"), _l("Lab tests and scans, with what they mean."), "health",
          on_top=True),
    Place("/portal/medications", _l("Medicines"), _l("Your prescriptions. Ask for a refill or a renewal."),
          "health", on_top=True),
    Place("/portal/referrals", _l("Referrals"), _l("Ask to see a specialist, and see how it is going."), "health"),
    Place("/portal/notebook", _l("Health notebook"),
          _l("Write down how you feel, side effects and questions for your next visit. Share them when you want."),
          "health"),
    Place("/portal/download", _l("Download"), _l("Save or print a copy of your record."), "health"),
    Place("/portal/appointments", _l("Appointments"),
          _l("Your visits. Book, move or cancel one, or add it to your calendar."), "visits", on_top=True),
    Place("/portal/messages", _l("Messages"), _l("Write to your care team and read their answers."), "visits",
          on_top=True),
    Place("/portal/forms", _l("Forms"),
          _l("Forms your clinic asked you to fill in, like a check-in before a visit."), "visits"),
    Place("/portal/billing", _l("Bills"), _l("Your statements. Pay a bill or ask about it."), "bills", on_top=True),
    Place("/portal/profile", _l("Profile"),
          _l("Your phone, e-mail, address, emergency contacts, insurance and allergies."), "account"),
    Place("/portal/caregivers", _l("Caregivers"),
          _l("Who can help with your record, and whose record you help with."), "account"),
    Place("/portal/account", _l("Your sign-ins"), _l("Where and when you signed in. Sign out other devices."),
          "account"),
    Place("/portal/access-log", _l("Who looked"), _l("Every time someone opened or changed your record."),
          "account"),
    Place("/portal/settings", _l("Display settings"),
          _l("Larger text or stronger contrast, kept for each time you sign in."), "account"),
    Place("/portal/help", _l("Help"),
          _l("Answers to common questions, the guide to the portal, and a quick self-check."), "account"),
)


def top_places() -> list[Place]:
    return [p for p in PLACES if p.on_top]


def grouped_places() -> list[tuple[Any, list[Place]]]:
    """Each group's name (lazy words) with its places."""
    return [(GROUP_NAMES[group], [p for p in PLACES if p.group == group]) for group in GROUPS]


def is_current(place_href: str, path: str) -> bool:
    return path == place_href or (place_href != "/portal/" and path.startswith(place_href))
