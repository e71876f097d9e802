"""A Questionnaire as a form a person fills in, and the answers checked against it (pure).

`questions` reads the form's items into `Question`s (groups hold their own). What a browser sends comes
back through `read_form` as FHIR answers plus, per question, what is wrong with what was typed; the same
`check_answers` then judges answers however they came (a browser form or a QuestionnaireResponse sent
to the gateway): unknown questions, answers of the wrong kind, choices not offered, numbers out of
range, answers to questions that do not apply (enableWhen), and, when the form is being sent, required
questions left empty. `response_items` builds the QuestionnaireResponse's items from the answers.

Our words (problems, hints, "Yes") are in the `locale` passed in, English by default (the gateway's
checks answer in English); the form's own words (questions, choices) are the clinic's, shown as written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from locales import ENGLISH, N_, gettext_in

from .concepts import coding_display
from .dates import long_date
from .instants import parse_date

MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
STRING_MAX_CHARS = 500
TEXT_MAX_CHARS = 5000
ANSWERABLE = frozenset({"boolean", "decimal", "integer", "date", "string", "text", "choice"})
# The answer element each kind of question takes (a choice takes whatever its options are).
VALUE_KEY = {"boolean": "valueBoolean", "decimal": "valueDecimal", "integer": "valueInteger",
             "date": "valueDate", "string": "valueString", "text": "valueString"}
REQUIRED = N_("Please answer this question.")
Answers = dict[str, list[dict[str, Any]]]
Problems = dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class Condition:
    """One `enableWhen`: the question it looks at, the operator and the answer it compares with."""

    question: str
    operator: str
    answer: Any  # the answer[x] value (a bool, a number, a string, a Coding dict)
    answer_key: str


@dataclass(frozen=True, slots=True)
class Choice:
    key: str  # what the browser sends back: the option's position
    label: str
    answer: dict[str, Any]  # {"valueCoding": {...}} or another value[x]


@dataclass(frozen=True, slots=True)
class Question:
    link_id: str
    text: str
    kind: str
    field_id: str  # a safe HTML id and form field name, from the item's position
    required: bool = False
    repeats: bool = False
    choices: tuple[Choice, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    conditions: tuple[Condition, ...] = ()
    enable_any: bool = False
    items: tuple[Question, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.kind in ANSWERABLE


@dataclass
class FormReading:
    """What a browser's form came to: the answers, what was typed (to show again), and the problems."""

    answers: Answers = field(default_factory=dict)
    typed: dict[str, list[str]] = field(default_factory=dict)
    problems: Problems = field(default_factory=dict)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _bound(item: Mapping[str, Any], url: str) -> float | None:
    for ext in item.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == url:
            for key in ("valueInteger", "valueDecimal"):
                value = ext.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return float(value)
    return None


def _answer_value(answer: Mapping[str, Any]) -> tuple[str, Any] | None:
    for key, value in answer.items():
        if key.startswith("value") and key != "valueAttachment":
            return key, value
    return None


def _conditions(item: Mapping[str, Any]) -> tuple[Condition, ...]:
    found = []
    for when in item.get("enableWhen") or []:
        if not isinstance(when, Mapping):
            continue
        answer = next(((k, v) for k, v in when.items() if k.startswith("answer")), None)
        if answer is None or not isinstance(when.get("question"), str):
            continue
        found.append(Condition(when["question"], _str(when.get("operator")) or "=", answer[1], answer[0]))
    return tuple(found)


def _choice_label(answer: Mapping[str, Any], locale: str = ENGLISH) -> str:
    pair = _answer_value(answer)
    if pair is None:
        return ""
    key, value = pair
    if key == "valueCoding":
        return coding_display(value) or _str((value or {}).get("code"))
    if key == "valueReference":
        return _str((value or {}).get("display")) or gettext_in(locale, "Another choice")
    if key == "valueDate":
        day = parse_date(value)
        return long_date(day, locale) if day else str(value)
    return str(value)


def _question(item: Mapping[str, Any], field_id: str, locale: str = ENGLISH) -> Question:
    options = [o for o in item.get("answerOption") or [] if isinstance(o, Mapping) and _answer_value(o)]
    choices = tuple(Choice(str(n), _choice_label(o, locale), dict([_answer_value(o)]))  # type: ignore[list-item]
                    for n, o in enumerate(options))
    children = [c for c in item.get("item") or [] if isinstance(c, Mapping)]
    return Question(
        link_id=_str(item.get("linkId")),
        text=_str(item.get("text")) or _str(item.get("linkId")),
        kind=_str(item.get("type")),
        field_id=field_id,
        required=item.get("required") is True,
        repeats=item.get("repeats") is True,
        choices=choices,
        min_value=_bound(item, MIN_VALUE),
        max_value=_bound(item, MAX_VALUE),
        conditions=_conditions(item),
        enable_any=item.get("enableBehavior") == "any",
        items=tuple(_question(c, f"{field_id}-{n}", locale) for n, c in enumerate(children, 1)),
    )


def questions(questionnaire: Mapping[str, Any], locale: str = ENGLISH) -> list[Question]:
    """The form's items as questions (and groups of questions), in order (a date choice worded in `locale`)."""
    items = [i for i in questionnaire.get("item") or [] if isinstance(i, Mapping)]
    return [_question(i, f"q-{n}", locale) for n, i in enumerate(items, 1)]


def every_question(qs: Iterable[Question]) -> Iterable[Question]:
    for q in qs:
        yield q
        yield from every_question(q.items)


def canonical(questionnaire: Mapping[str, Any]) -> str:
    """The versioned canonical a response cites (`url|version`), or the bare URL without a version."""
    url, version = _str(questionnaire.get("url")), _str(questionnaire.get("version"))
    return f"{url}|{version}" if url and version else url


def cites(canonical_ref: Any, questionnaire: Mapping[str, Any]) -> bool:
    """Whether a response's `questionnaire` names this form (with its version, or without one)."""
    if not isinstance(canonical_ref, str) or not questionnaire.get("url"):
        return False
    url, _, version = canonical_ref.partition("|")
    return url == questionnaire.get("url") and version in ("", _str(questionnaire.get("version")))


# -- enableWhen ------------------------------------------------------------------------------------------

def _same(answer: tuple[str, Any], wanted: Condition) -> bool:
    key, value = answer
    if wanted.answer_key == "answerCoding":
        if key != "valueCoding" or not isinstance(value, Mapping) or not isinstance(wanted.answer, Mapping):
            return False
        return value.get("code") == wanted.answer.get("code") and (
            not wanted.answer.get("system") or value.get("system") == wanted.answer.get("system"))
    return key == "value" + wanted.answer_key[len("answer"):] and value == wanted.answer


def _compare(answer: tuple[str, Any], wanted: Condition) -> bool:
    key, value = answer
    if key != "value" + wanted.answer_key[len("answer"):] or isinstance(value, bool | dict):
        return False
    try:
        ops = {">": value > wanted.answer, "<": value < wanted.answer,
               ">=": value >= wanted.answer, "<=": value <= wanted.answer}
    except TypeError:
        return False
    return ops.get(wanted.operator, False)


def _holds(condition: Condition, answers: Answers) -> bool:
    given = [pair for a in answers.get(condition.question, []) if (pair := _answer_value(a))]
    if condition.operator == "exists":
        return bool(given) == (condition.answer is True)
    if condition.operator == "=":
        return any(_same(a, condition) for a in given)
    if condition.operator == "!=":
        return bool(given) and not any(_same(a, condition) for a in given)
    return any(_compare(a, condition) for a in given)


def enabled(question: Question, answers: Answers) -> bool:
    """Whether a question applies, given the answers so far (no enableWhen: always)."""
    if not question.conditions:
        return True
    results = [_holds(c, answers) for c in question.conditions]
    return any(results) if question.enable_any else all(results)


# -- checking answers ------------------------------------------------------------------------------------

def _kind_problem(question: Question, answer: Mapping[str, Any], locale: str = ENGLISH) -> str | None:
    def _(message: str) -> str:
        return gettext_in(locale, message)

    pair = _answer_value(answer)
    if pair is None:
        return _("This answer is empty.")
    key, value = pair
    if question.kind == "choice":
        return None if _offered(question, key, value) else _("Please pick one of the choices shown.")
    expected = VALUE_KEY.get(question.kind)
    if key != expected:
        return _("This answer is not the right kind for the question.")
    if question.kind == "boolean" and not isinstance(value, bool):
        return _("Please answer yes or no.")
    if question.kind in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                question.kind == "integer" and not isinstance(value, int)) or not math.isfinite(value):
            return _("Please enter a whole number.") if question.kind == "integer" else _("Please enter a number.")
        return _range_problem(question, value, locale)
    if question.kind == "date" and (not isinstance(value, str) or parse_date(value) is None):
        return _("Please enter a date.")
    if question.kind in ("string", "text"):
        limit = STRING_MAX_CHARS if question.kind == "string" else TEXT_MAX_CHARS
        if not isinstance(value, str) or not value.strip():
            return _("This answer is empty.")
        if len(value) > limit:
            return _("Please keep this to %(max)s characters or fewer.") % {"max": limit}
    return None


def _offered(question: Question, key: str, value: Any) -> Choice | None:
    """The choice this answer picks (a Coding matches on system and code; its display may differ)."""
    for choice in question.choices:
        offered = choice.answer.get(key)
        if key == "valueCoding" and isinstance(offered, Mapping) and isinstance(value, Mapping):
            if offered.get("code") == value.get("code") and offered.get("system") == value.get("system"):
                return choice
        elif key == "valueReference" and isinstance(offered, Mapping) and isinstance(value, Mapping):
            if offered.get("reference") and offered.get("reference") == value.get("reference"):
                return choice
        elif key in choice.answer and offered == value:
            return choice
    return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_problem(question: Question, value: float, locale: str = ENGLISH) -> str | None:
    low, high = question.min_value, question.max_value
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            return gettext_in(locale, "Please enter a number from %(low)s to %(high)s.") % {
                "low": _number(low), "high": _number(high)}
        if low is not None:
            return gettext_in(locale, "Please enter a number of at least %(low)s.") % {"low": _number(low)}
        return gettext_in(locale, "Please enter a number no bigger than %(high)s.") % {"high": _number(high or 0)}
    return None


def check_answers(qs: Sequence[Question], answers: Answers, *, completing: bool,
                  locale: str = ENGLISH) -> Problems:
    """What is wrong with these answers for this form, by linkId ("" for problems not tied to a
    question). Required questions count only when the form is being sent (`completing`), never for a
    draft; a question that does not apply must have no answer."""
    problems: Problems = {}
    known = {q.link_id: q for q in every_question(qs)}
    for link_id in answers:
        if link_id not in known or not known[link_id].answerable:
            problems.setdefault("", []).append(gettext_in(locale, "The form has no question %(question)s to "
                                                                  "answer.") % {"question": repr(link_id)})

    def walk(items: Sequence[Question], applies: bool) -> None:
        for q in items:
            on = applies and enabled(q, answers)
            given = answers.get(q.link_id, [])
            if q.kind == "group":
                walk(q.items, on)
                continue
            if not q.answerable or q.link_id not in known:
                continue
            if given and not on:
                problems.setdefault(q.link_id, []).append(
                    gettext_in(locale, "This question does not apply to you; leave it empty."))
                continue
            if len(given) > 1 and not q.repeats:
                problems.setdefault(q.link_id, []).append(gettext_in(locale, "Please give one answer."))
            for answer in given:
                if (problem := _kind_problem(q, answer, locale)) is not None:
                    problems.setdefault(q.link_id, []).append(problem)
                    break
            if on and completing and q.required and not given:
                problems.setdefault(q.link_id, []).append(gettext_in(locale, REQUIRED))

    walk(qs, True)
    return problems


# -- a browser's form ------------------------------------------------------------------------------------

DATE_TYPED = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
US_DATE_TYPED = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _typed_date(text: str) -> str | None:
    """A date as `<input type=date>` sends it (2024-03-05), or as people type it where that input is
    plain text (3/5/2024)."""
    if m := DATE_TYPED.fullmatch(text):
        y, mo, d = (int(g) for g in m.groups())
    elif m := US_DATE_TYPED.fullmatch(text):
        mo, d, y = (int(g) for g in m.groups())
    else:
        return None
    try:
        return date(y, mo, d).isoformat()
    except ValueError:
        return None


def _parse(question: Question, text: str, locale: str = ENGLISH) -> tuple[dict[str, Any] | None, str | None]:
    """One typed value as an answer, or the problem with it (in `locale`)."""
    def _(message: str) -> str:
        return gettext_in(locale, message)

    kind = question.kind
    if kind in ("string", "text"):
        return {"valueString": text}, None
    if kind == "boolean":
        if text in ("yes", "no"):
            return {"valueBoolean": text == "yes"}, None
        return None, _("Please answer yes or no.")
    if kind == "integer":
        cleaned = text.replace(",", "")
        if re.fullmatch(r"[+-]?\d{1,9}", cleaned):
            return {"valueInteger": int(cleaned)}, None
        return None, _("Please enter a whole number, like 3.")
    if kind == "decimal":
        try:
            number = Decimal(text.replace(",", ""))
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or abs(number) >= Decimal(10) ** 9:
            return None, _("Please enter a number, like 150 or 150.5.")
        return {"valueDecimal": float(number)}, None
    if kind == "date":
        day = _typed_date(text)
        return ({"valueDate": day}, None) if day else (None, _("Please enter a date, like 2024-03-15."))
    if kind == "choice":
        chosen = next((c for c in question.choices if c.key == text), None)
        return (dict(chosen.answer), None) if chosen else (None, _("Please pick one of the choices shown."))
    return None, None


def read_form(qs: Sequence[Question], form: Mapping[str, Sequence[str]], *, completing: bool,
              locale: str = ENGLISH) -> FormReading:
    """The answers a browser sent (each question's field named by its `field_id`), checked: what cannot
    be read says so in plain words, then `check_answers` judges the rest. Answers to questions that do not
    apply are dropped (the person may have typed them before changing their mind)."""
    reading = FormReading()
    for q in every_question(qs):
        if not q.answerable:
            continue
        typed = [t.strip() for t in form.get(q.field_id, []) if isinstance(t, str) and t.strip()]
        if typed:
            reading.typed[q.link_id] = typed
        for text in typed if q.repeats else typed[:1]:
            answer, problem = _parse(q, text, locale)
            if problem:
                reading.problems.setdefault(q.link_id, []).append(problem)
            elif answer is not None:
                reading.answers.setdefault(q.link_id, []).append(answer)
    _drop_disabled(qs, reading.answers, True)
    for link_id, found in check_answers(qs, reading.answers, completing=completing, locale=locale).items():
        if link_id not in reading.problems:
            reading.problems[link_id] = found
    return reading


def _drop_disabled(qs: Sequence[Question], answers: Answers, applies: bool) -> None:
    for q in qs:
        on = applies and enabled(q, answers)
        if not on:
            answers.pop(q.link_id, None)
        _drop_disabled(q.items, answers, on)


def typed_values(qs: Sequence[Question], answers: Answers) -> dict[str, list[str]]:
    """Saved answers as the form's fields show them (the inverse of `read_form`), to fill a draft back in."""
    out: dict[str, list[str]] = {}
    for q in every_question(qs):
        for answer in answers.get(q.link_id, []):
            pair = _answer_value(answer)
            if pair is None:
                continue
            key, value = pair
            if q.kind == "choice":
                chosen = _offered(q, key, value)
                text = chosen.key if chosen else None
            elif key == "valueBoolean":
                text = "yes" if value else "no"
            elif key == "valueDecimal" and isinstance(value, float):
                text = _number(value)
            else:
                text = str(value)
            if text is not None:
                out.setdefault(q.link_id, []).append(text)
    return out


# -- the response ----------------------------------------------------------------------------------------

def answers_of(response: Mapping[str, Any]) -> Answers:
    """Every answer in a QuestionnaireResponse (nested items included), by linkId."""
    out: Answers = {}

    def walk(items: Any) -> None:
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, Mapping):
                continue
            link_id = _str(item.get("linkId"))
            for answer in item.get("answer") or []:
                if isinstance(answer, Mapping):
                    out.setdefault(link_id, []).append({k: v for k, v in answer.items() if k.startswith("value")})
                    walk(answer.get("item"))
            walk(item.get("item"))

    walk(response.get("item"))
    return out


def response_items(qs: Sequence[Question], answers: Answers) -> list[dict[str, Any]]:
    """The QuestionnaireResponse items for these answers, following the form's own order and groups, with
    each question's text (groups with nothing answered are left out)."""
    out: list[dict[str, Any]] = []
    for q in qs:
        if q.kind == "group":
            children = response_items(q.items, answers)
            if children:
                out.append({"linkId": q.link_id, "text": q.text, "item": children})
        elif q.answerable and answers.get(q.link_id):
            out.append({"linkId": q.link_id, "text": q.text, "answer": [dict(a) for a in answers[q.link_id]]})
    return out


@dataclass(frozen=True, slots=True)
class AnsweredLine:
    text: str
    answers: tuple[str, ...]
    is_group: bool = False
    depth: int = 0


def answer_text(answer: Mapping[str, Any], locale: str = ENGLISH) -> str:
    """One answer in words: `Yes`, a choice's label, a date in words."""
    pair = _answer_value(answer)
    if pair is None:
        return ""
    key, value = pair
    if key == "valueBoolean":
        return gettext_in(locale, "Yes") if value else gettext_in(locale, "No")
    if key == "valueDecimal" and isinstance(value, float):
        return _number(value)
    return _choice_label(answer, locale)


def answered(qs: Sequence[Question], answers: Answers, depth: int = 0, locale: str = ENGLISH) -> list[AnsweredLine]:
    """A sent form, to read back: each question with its answers in words, groups as headings."""
    lines: list[AnsweredLine] = []
    for q in qs:
        if q.kind == "group":
            inner = answered(q.items, answers, depth + 1, locale)
            if inner:
                lines.append(AnsweredLine(q.text, (), True, depth))
                lines.extend(inner)
        elif q.answerable and answers.get(q.link_id):
            lines.append(AnsweredLine(q.text, tuple(answer_text(a, locale) for a in answers[q.link_id]), False,
                                      depth))
    return lines


def condition_hints(qs: Sequence[Question], locale: str = ENGLISH) -> dict[str, str]:
    """For each question that applies only after some answer, that in words (shown as the question's hint:
    without JavaScript every question is on the page, and the person needs to know which to skip)."""
    texts = {q.link_id: q.text for q in every_question(qs)}
    hints: dict[str, str] = {}
    for q in every_question(qs):
        parts = []
        for c in q.conditions:
            asked = texts.get(c.question, c.question)
            value = {"value" + c.answer_key[len("answer"):]: c.answer}
            words = {"question": asked, "answer": answer_text(value, locale)}
            if c.operator == "exists":
                parts.append(gettext_in(locale, "you answered “%(question)s”") % words if c.answer is True
                             else gettext_in(locale, "you left “%(question)s” empty") % words)
            elif c.operator == "=":
                parts.append(gettext_in(locale, "your answer to “%(question)s” was “%(answer)s”") % words)
            elif c.operator == "!=":
                parts.append(gettext_in(locale, "your answer to “%(question)s” was not “%(answer)s”") % words)
        if parts:
            joiner = " %s " % (gettext_in(locale, "or") if q.enable_any else gettext_in(locale, "and"))
            hints[q.link_id] = gettext_in(locale, "Answer this only if %(conditions)s.") % {
                "conditions": joiner.join(parts)}
    return hints
