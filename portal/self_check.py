"""The portal self-check: a few yes-or-no questions about how a person uses their portal, each pointing
to the page (and its help) that helps with the answer. Nothing is stored; the answers only shape the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from .help_topics import BY_KEY, HelpTopic

ANSWERS = {"yes": "Yes", "sometimes": "Sometimes", "no": "Not yet"}


@dataclass(frozen=True)
class Question:
    key: str
    asks: str
    topic: str  # the help topic of the page that helps
    tip: str  # what to do there, for an answer other than yes

    @property
    def help(self) -> HelpTopic:
        return BY_KEY[self.topic]


QUESTIONS: tuple[Question, ...] = (
    Question("notes", "Do I review my visit notes soon after they are posted?", "record",
             "Read your visit notes under Health record a day or two after each visit. Check that they match "
             "what you were told."),
    Question("results", "Do I look at my test results and what they mean?", "results",
             "Open Test results. Each result says if it is in the usual range and what the test is for."),
    Question("questions", "Do I ask my care team when I have a question between visits?", "messages",
             "Send a message. You do not have to wait for your next visit to ask."),
    Question("medicines", "Do I check my list of medicines and ask for refills before I run out?", "medications",
             "Look at Medicines. Ask for a refill a few days before you run out."),
    Question("visits", "Do I book, move or cancel my visits here?", "appointments",
             "Open Appointments to pick a time that suits you, or move a visit you cannot make."),
    Question("forms", "Do I fill in the clinic's forms before a visit?", "forms",
             "Open Forms. A form filled in at home saves time at the visit."),
    Question("contact", "Are my phone, address and emergency contacts up to date?", "profile",
             "Open Profile and check your contact details and who to call if something happens to you."),
    Question("who", "Do I know who can see my record, and who has looked at it?", "access-log",
             "Open Who looked to see each time your record was opened, and Caregivers to see who can help."),
    Question("bills", "Do I check my bills here?", "billing",
             "Open Bills to see what you owe, pay by card, or ask about a bill."),
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
            errors[question.key] = [f"Please pick Yes, Sometimes or Not yet for: {question.asks}"]
            continue
        outcomes.append(Outcome(question, answer))
    if not outcomes and not errors:
        errors[QUESTIONS[0].key] = ["Please answer at least one question."]
    return outcomes, errors
