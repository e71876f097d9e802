"""How hard a patient-facing page is to read: its text split the way a reader meets it, with the record's own
data set aside, scored as a Flesch-Kincaid grade (textstat's word, sentence and syllable counts).

Used by the unit tests (pages rendered from the demo data) and by the browser tests (`check_page`), so both
hold a page to the same number.

- Units: every heading, paragraph, label, button, list item, table cell, legend, summary and option is a unit
  of its own (a reader meets it on its own), never run together with its neighbour into one long sentence.
  Inside a unit, sentences are split at `.`, `!` and `?` as textstat does.
- Sentences: textstat's sentence count leaves out fragments of one or two words (to skip "e.g." and the like)
  while still counting their words, which over a page of headings and buttons would charge each heading's
  words to the next sentence. So the count is made per unit (each unit is at least one sentence) and added up;
  for a single paragraph the grade is exactly textstat's `flesch_kincaid_grade`.
- The grade held to MAX_GRADE is the higher of the whole text's and the running sentences' alone (units of
  PROSE_WORDS words or more), so many short labels cannot hide one hard paragraph. A page under MIN_WORDS
  words is a few labels and buttons, over which the formula's averages mean nothing: its sentences alone count.
- Not measured: what the reader does not read as our wording: scripts, styles, SVG drawings (a chart's
  numbers are in the table beside it), elements marked aria-hidden, and what people wrote (DATA_CLASSES: the
  clinic's documents, the messages of a conversation). Everything else counts, hard or not.
- Data: names of people, medicines, tests and places, the clinic's own texts (notes, questionnaire questions)
  and dates, times, e-mail addresses and identifiers come from the record, not from us. Each such run of
  words counts as one one-syllable word (so a sentence keeps its length, but a long medicine name does not
  make the sentence around it "hard"); a unit that is nothing but data is left out. Which strings are the
  record's: `record_strings` (by FHIR element, minus any our own source also uses).
- Spanish: a page in Spanish is scored with Crawford's formula (years of schooling, made for Spanish; syllables
  counted with Spanish hyphenation), under the same bar and the same units; its dates are data as well.
- `sentences_in` finds the sentences our Python source words for people (refusals, field messages, e-mail
  bodies), so they can be measured without a page to show them on.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import textstat
from textstat.backend.counts import count_syllables

MAX_GRADE = 7.0
DATA = "X"  # stands for one piece of record data: one word, one syllable
PROSE_WORDS = 5
# Below this many words of ours, a page is a few labels and buttons ("Username", "Continue"): the formula's
# averages mean nothing over so little, so only its sentences are held to the bar.
MIN_WORDS = 30

# Elements that start and end a unit of reading (inline ones such as a, strong, span do not).
BLOCKS = frozenset("""address article aside blockquote br button caption dd details dialog div dl dt fieldset
figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr label legend li main nav ol optgroup option output p
pre section select summary table tbody td textarea tfoot th thead tr ul""".split())
SKIPPED = frozenset({"script", "style", "svg", "template", "head", "title"})
# What people wrote, shown as they wrote it: the clinic's documents (visit notes, imaging reports) and the
# messages of a conversation. Their words are theirs, not ours.
DATA_CLASSES = frozenset({"report-text", "message__text"})
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                  "track", "wbr"})

# The record's own words, by the FHIR element that holds them: names, display texts, the clinic's texts. A
# person's name is always data; any other string is data unless our own wording uses it too ("Care team",
# "Refill", a test name from our explanation table): then it is scored like the rest of our words.
PEOPLE_FIELDS = frozenset({"given", "family"})  # titles (Dr., RN, DO) are left to TITLE: "DO" is also "do"
RECORD_FIELDS = PEOPLE_FIELDS | {"display", "text", "name", "title", "description", "valueString", "contentString",
                                 "conclusion", "comment", "disposition", "line", "city", "patientInstruction",
                                 "paymentTerms", "publisher", "alias"}
ROOT = Path(__file__).resolve().parent.parent
OUR_WORDING = ("portal/**/*.py", "portal/templates/**/*.html", "mappers/**/*.py", "mappers/data/*.toml",
               "smart_auth/**/*.py", "smart_auth/templates/**/*.html", "notifications/*.py", "web/templates/*.html")
WEEKDAY = r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day"
MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
WEEKDAY_ES = r"(?:lunes|martes|miércoles|jueves|viernes|sábado|domingo)"
MONTH_ES = r"(?:enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre)"
PATTERNS = [
    rf"(?:{WEEKDAY_ES},? )?\d{{1,2}} de {MONTH_ES}(?: de \d{{4}})?",  # martes, 3 de marzo de 2026
    rf"\b{MONTH_ES} de \d{{4}}",
    rf"\b{WEEKDAY_ES}\b",
    rf"(?:{WEEKDAY},? )?(?:\d{{1,2}} {MONTH}|{MONTH} \d{{1,2}})(?:,? \d{{4}})?",  # Thursday 2 May 2024
    rf"{MONTH} \d{{4}}",
    rf"\b{WEEKDAY}\b",
    r"\b\d{4}-\d{2}-\d{2}(?:T[\d:.+-]+Z?)?\b",
    r"\b\d{1,2}:\d{2}(?:\s?[ap]\.?m\b)?",  # 9:30 am
    r"\b\d{1,2}\s?[ap]\.?m\b",
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail addresses
    r"\bhttps?://\S+",
    r"\b(?=[\w-]*\d{3})[A-Za-z0-9][\w-]{3,}\b",  # identifiers, numbers with 3+ digits, phone numbers
    r"\b\d{3}-\d{4}\b",
]
TITLE = re.compile(rf"\b(?:Dr|Mr|Mrs|Ms|Mx)\.\s+{DATA}\b")
RUNS = re.compile(rf"\b{DATA}(?:[\s/&+-]+{DATA}\b)+")  # "X X" (a given and a family name): one name
WORD = re.compile(r"[A-Za-z]{2,}")


@dataclass(frozen=True)
class Grade:
    name: str
    grade: float  # the bar: max(overall, prose), or prose alone under MIN_WORDS words
    overall: float  # every unit
    prose: float  # the units that are sentences (PROSE_WORDS words or more)
    words: int
    sentences: int
    units: list[str]
    lang: str = "en"  # "es": Crawford's grade for Spanish

    def hardest(self, n: int = 3) -> list[tuple[float, str]]:
        """The units that pull the grade up most (for the report, not the bar)."""
        scored = [(_fk([u], self.lang)[0], u) for u in self.units if textstat.lexicon_count(u) >= 4]
        return sorted(scored, reverse=True)[:n]


def _is_button(tag: str, attributes: dict[str, str | None]) -> bool:
    """A link drawn as a button stands on its own, as a button does."""
    return tag == "a" and "button" in (attributes.get("class") or "").split()


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.units: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.in_button_link = False

    def flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self.current)).strip()
        if text:
            self.units.append(text)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_depth:
            if tag not in VOID:
                self.skip_depth += 1
            return
        attributes = dict(attrs)
        if (tag in SKIPPED or attributes.get("aria-hidden") == "true"
                or DATA_CLASSES & set((attributes.get("class") or "").split())):
            if tag not in VOID:
                self.skip_depth = 1
            return
        if tag in BLOCKS or _is_button(tag, attributes):
            self.flush()
            self.in_button_link = tag == "a"
        elif tag == "a":
            self.current.append(" ")
        if tag == "input" and attributes.get("type") in ("submit", "button") and attributes.get("value"):
            self.flush()
            self.current.append(attributes["value"] or "")
            self.flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:  # <div/>: opened and closed at once
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip_depth:
            self.skip_depth -= 1
            return
        if tag in BLOCKS or (tag == "a" and self.in_button_link):
            self.flush()
            self.in_button_link = False
        elif tag == "a":
            self.current.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.current.append(data)

    def close(self) -> None:
        super().close()
        self.flush()


def main_of(html: str) -> str:
    """The page's <main> (the whole document when it has none, as in an e-mail)."""
    found = re.search(r"(?s)<main\b.*?</main>", html)
    return found.group(0) if found else html


def reading_units(html: str) -> list[str]:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.units


@cache
def our_wording() -> str:
    """Every word of the product's own source a patient could read (lower case, one string)."""
    files = [p for pattern in OUR_WORDING for p in sorted(ROOT.glob(pattern))]
    return "\n".join(p.read_text(encoding="utf-8").lower() for p in files)


def record_strings(resources: Iterable[dict[str, Any]]) -> set[str]:
    """The human-readable strings a record holds that are its data, not our wording (see RECORD_FIELDS)."""
    # Each distinct value is worded once: a data set repeats the same display texts thousands of times.
    held: dict[bool, set[str]] = {True: set(), False: set()}  # by "is a person's name"

    def walk(value: Any, key: str | None) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in RECORD_FIELDS:
            held[key in PEOPLE_FIELDS].add(value)

    seen: set[tuple[Any, Any]] = set()
    for resource in resources:
        key = (resource.get("resourceType"), resource.get("id"))
        if key[1] is not None and key in seen:
            continue  # the same resource in several patients' lists (the practice's): its strings are in already
        seen.add(key)
        walk(resource, None)
    people = _as_shown(held[True])
    others = {s for s in _as_shown(held[False]) if len(s) >= 3}
    ours = _occurring({s.lower() for s in others}, our_wording())
    return people | {s for s in others if s.lower() not in ours}


def _as_shown(values: Iterable[str]) -> set[str]:
    """As a page shows each value: white space run together, and each line of a longer text on its own too."""
    found: set[str] = set()
    for value in values:
        if WORD.search(value):
            for text in (value, *value.splitlines()):
                if text.strip():
                    found.add(re.sub(r"\s+", " ", text).strip())
    return found


def _occurring(strings: set[str], text: str) -> set[str]:
    """The `strings` that occur anywhere in `text`, as `s in text` finds them, in one scan of the text instead
    of one per string. The trie's match at a position is the longest string there; any shorter one found at
    the same position is one of its prefixes."""
    if not strings:
        return set()
    longest = {m.group(1) for m in re.finditer(f"(?=({_trie(strings)}))", text)}
    return {s[:end] for s in longest for end in range(1, len(s) + 1)} & strings


def _trie(strings: Iterable[str]) -> str:
    """One regular expression matching any of `strings` (a trie, so a page is scanned once, not once per
    string: the demo record holds over a thousand)."""
    root: dict[str, Any] = {}
    for s in strings:
        node = root
        for ch in s:
            node = node.setdefault(ch, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + pattern(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            return f"(?:{body})?"
        return body

    return pattern(root)


class DataMask:
    """Replaces the record's data in a text by one placeholder word per run of data."""

    def __init__(self, strings: Iterable[str] = ()) -> None:
        literal = {s.lower() for s in strings if s}
        parts = ([rf"(?<!\w){_trie(literal)}(?!\w)"] if literal else []) + PATTERNS
        self.pattern = re.compile("|".join(parts), re.IGNORECASE)

    def __call__(self, text: str) -> str:
        masked = self.pattern.sub(DATA, text)
        masked = TITLE.sub(DATA, masked)
        return RUNS.sub(DATA, masked)


def sentence(unit: str) -> str:
    return unit if unit[-1] in ".!?" else unit + "."


def _fk(units: list[str], lang: str = "en") -> tuple[float, int, int]:
    words = sum(textstat.lexicon_count(u) for u in units)
    if not words:
        return 0.0, 0, 0
    sentences = sum(textstat.sentence_count(u) for u in units)
    if lang == "es":  # Crawford: years of schooling, per 100 words (syllables counted the Spanish way)
        syllables = sum(count_syllables(u, "es") for u in units)
        return round(-20.5 * sentences / words + 4.9 * syllables / words - 3.407, 1), words, sentences
    syllables = sum(textstat.syllable_count(u) for u in units)
    return round(0.39 * words / sentences + 11.8 * syllables / words - 15.59, 1), words, sentences


def grade_units(name: str, units: Iterable[str], mask: DataMask | None = None, lang: str = "en") -> Grade:
    """The page's grade: the higher of its whole text's grade and its running text's (the units of
    PROSE_WORDS words or more) alone, so a page of short labels and buttons cannot hide one hard paragraph;
    for a page under MIN_WORDS words, its running text's alone. `lang` "es": Crawford's grade for Spanish."""
    mask = mask or DataMask()
    kept: list[str] = []
    for unit in units:
        text = mask(unit)
        if WORD.search(re.sub(rf"\b{DATA}\b", "", text)):  # something of ours left to read
            kept.append(sentence(text))
    overall, words, sentences = _fk(kept, lang)
    prose, _, _ = _fk([u for u in kept if textstat.lexicon_count(u) >= PROSE_WORDS], lang)
    bar = max(overall, prose) if words >= MIN_WORDS else prose
    return Grade(name, bar, overall, prose, words, sentences, kept, lang)


def grade_page(name: str, html: str, mask: DataMask | None = None, lang: str = "en") -> Grade:
    """The grade of a page's <main> (in `lang`: "en", or "es" for a page in Spanish)."""
    return grade_units(name, reading_units(main_of(html)), mask, lang)


def grade_text(name: str, text: str, mask: DataMask | None = None) -> Grade:
    """The grade of plain text (an e-mail): each line or paragraph is a unit."""
    return grade_units(name, [line for line in text.splitlines() if line.strip()], mask)


def report(grades: Iterable[Grade], title: str, n: int = 10) -> Iterator[str]:
    """The hardest pages first, with the units that weigh most on each of the worst three."""
    ranked = sorted(grades, key=lambda g: g.grade, reverse=True)
    yield f"{title} (Flesch-Kincaid grade; Crawford for Spanish; bar {MAX_GRADE:g}):"
    for g in ranked[:n]:
        yield (f"  {g.grade:4.1f}  {g.name}  (all text {g.overall:.1f}, sentences alone {g.prose:.1f}; "
               f"{g.words} words)")
    shown: set[str] = set()
    for g in ranked[:3]:
        for value, unit in g.hardest():
            if value > MAX_GRADE and unit not in shown:
                shown.add(unit)
                yield f"    {g.name}: {value:4.1f}  {unit[:110]}"


def too_hard(grades: Iterable[Grade]) -> list[tuple[float, str]]:
    return sorted(((g.grade, g.name) for g in grades if g.grade > MAX_GRADE), reverse=True)


# A string in our Python source that a person reads as a sentence: starts with a capital (or a quote) and
# ends with a full stop, question or exclamation mark, at least three words. Docstrings and log lines are
# for developers and are left out; an f-string's {fields} count as data.
SENTENCE = re.compile(r"^[A-Z“\"(][^\n]*\s[^\n]*\s[^\n]*[.?!”)]$")
LOG_CALLS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})


def sentences_in(path: Path) -> list[str]:
    """Every sentence-like string literal of a module (see SENTENCE): its messages to people."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    left_out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                left_out.add(id(first.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_CALLS:
            left_out.update(id(sub) for sub in ast.walk(node))
        elif isinstance(node, ast.JoinedStr):
            left_out.update(id(v) for v in node.values)
    found = []
    for node in ast.walk(tree):
        if id(node) in left_out:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else DATA for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        text = re.sub(r"\s+", " ", text).strip()
        if SENTENCE.match(text) and text.endswith((".", "?", "!", ".”", ".)")):
            found.append(text)
    return found
