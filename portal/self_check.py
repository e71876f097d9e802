"""The portal self-check: a few yes-or-no questions about how a person uses their portal, each pointing
to the page (and its help) that helps with the answer. Nothing is stored; the answers only shape the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web.i18n import gettext as _
from web.i18n import lazy_gettext as _l

from .help_topics import BY_KEY, HelpTopic

ANSWERS = {"yes": _l("Yes"), "sometimes": _l("Sometimes"), "no": _l("Not yet")}


@dataclass(frozen=True)
class Question:
    key: str
    asks: Any  # lazy words (`_l`): shown in the language of the page
    topic: str  # the help topic of the page that helps
    tip: Any  # what to do there, for an answer other than yes

    @property
    def help(self) -> HelpTopic:
        return BY_KEY[self.topic]


QUESTIONS: tuple[Question, ...] = (
    Question("notes", _l("Do I review my visit notes soon after they are posted?"), "record",
             _l("Read your visit notes under Health record a day or two after each visit. Check that they match "
             "what you were told.")),
    Question("results", _l("Do I look at my test results and what they mean?"), "results",
             _l("Open Test results. Each result says if it is in the usual range and what the test is for.")),
    Question("questions", _l("Do I ask my care team when I have a question between visits?"), "messages",
             _l("Send a message. You do not have to wait for your next visit to ask.")),
    Question("medicines", _l("Do I check my list of medicines and ask for refills before I run out?"), "medications",
             _l("Look at Medicines. Ask for a refill a few days before you run out.")),
    Question("visits", _l("Do I book, move or cancel my visits here?"), "appointments",
             _l("Open Appointments to pick a time that suits you, or move a visit you cannot make.")),
    Question("forms", _l("Do I fill in the clinic's forms before a visit?"), "forms",
             _l("Open Forms. A form filled in at home saves time at the visit.")),
    Question("contact", _l("Are my phone, address and emergency contacts up to date?"), "profile",
             _l("Open Profile and check your contact details and who to call if something happens to you.")),
    Question("who", _l("Do I know who can see my record, and who has looked at it?"), "access-log",
             _l("Open Who looked to see each time your record was opened, and Caregivers to see who can help.")),
    Question("bills", _l("Do I check my bills here?"), "billing",
             _l("Open Bills to see what you owe, pay by card, or ask about a bill.")),
)


@dataclass(frozen=True)
class Outcome:
    question: Question
    answer: str  # "yes", "sometimes" or "no"

    @property
    def needs_help(self) -> bool:
        return self.answer != "yes"


def check_answers(form: dict[str, str]) -> tuple[list[Outcome], dict[str, list[str]]]:
    """The answered questions (in order) and, per field, what is wrong with the form."""
    outcomes: list[Outcome] = []
    errors: dict[str, list[str]] = {}
    for question in QUESTIONS:
        answer = form.get(question.key, "")
        if not answer:
            continue
        if answer not in ANSWERS:
            errors[question.key] = [_("Please pick Yes, Sometimes or Not yet for: %(question)s")
                                    % {"question": question.asks}]
            continue
        outcomes.append(Outcome(question, answer))
    if not outcomes and not errors:
        errors[QUESTIONS[0].key] = [_("Please answer at least one question.")]
    return outcomes, errors
