"""What each staff role works on: its queues (the home page and the navigation) and the message teams
whose inbox it answers. The role itself comes from the person's PractitionerRole (mappers.staff)."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import PREFIX

CLINICAL = frozenset({"clinician", "nurse"})


@dataclass(frozen=True)
class Queue:
    key: str
    label: str
    href: str
    about: str


QUEUES: dict[str, Queue] = {q.key: q for q in (
    Queue("inbox", "Inbox", f"{PREFIX}/inbox", "Messages from patients, oldest first"),
    Queue("refills", "Refill requests", f"{PREFIX}/queues/refills", "Approve or deny prescription refills"),
    Queue("referrals", "Referral requests", f"{PREFIX}/queues/referrals", "Accept or decline referral requests"),
    Queue("changes", "Changes to confirm", f"{PREFIX}/queues/changes",
          "Insurance changes and allergies patients reported"),
    Queue("billing", "Billing questions", f"{PREFIX}/queues/billing", "Questions about statements and payments"),
    Queue("invitations", "Portal invitations", f"{PREFIX}/invitations",
          "Invite patients, see who enrolled, help someone locked out"),
    Queue("metrics", "Portal figures", f"{PREFIX}/metrics", "Adoption and how quickly the practice answers"),
)}

ROLE_QUEUES: dict[str, tuple[str, ...]] = {
    "clinician": ("inbox", "refills", "referrals", "changes", "invitations", "metrics"),
    "nurse": ("inbox", "refills", "changes", "metrics"),
    "front-desk": ("inbox", "referrals", "changes", "invitations", "metrics"),
    "billing": ("inbox", "billing", "changes", "metrics"),
}

# The message teams (Organization ids) whose messages each role answers.
ROLE_TEAMS: dict[str, tuple[str, ...]] = {
    "clinician": ("Organization/org-team-care",),
    "nurse": ("Organization/org-team-care",),
    "front-desk": ("Organization/org-team-care", "Organization/org-team-referrals"),
    "billing": ("Organization/org-team-billing",),
}


def queues_for(role: str) -> list[Queue]:
    return [QUEUES[k] for k in ROLE_QUEUES.get(role, ())]


def may_work(role: str, queue: str) -> bool:
    return queue in ROLE_QUEUES.get(role, ())


def teams_for(role: str) -> tuple[str, ...]:
    return ROLE_TEAMS.get(role, ())
