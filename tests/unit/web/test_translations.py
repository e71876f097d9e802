"""The word catalogues against the code: every message the code marks is in the template (.pot) and in every
language's .po, translated and confirmed (a file on the "not yet translated" list may wait), with the same
placeholders; nothing stale is left; and a template off that list has no English left outside a message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import nodes

from locales import ENGLISH, EXTRACT_KEYWORDS, LOCALES, TEMPLATE, catalogue_path
from locales.pending import NOT_YET_TRANSLATED, NOT_YET_TRANSLATED_MODULES
from tests.plain_language import MAX_GRADE, grade_units, report
from web import make_environment

ROOT = Path(__file__).resolve().parents[3]
# Where each package keeps its templates, and the name a page loads one by.
TEMPLATE_FOLDERS = ("web/templates/", "portal/templates/", "smart_auth/templates/")
PATIENT_TEMPLATES = ("web/templates", "portal/templates/portal", "smart_auth/templates/accounts",
                     "smart_auth/templates/oauth")


def _template_name(path: str) -> str | None:
    for folder in TEMPLATE_FOLDERS:
        if path.startswith(folder):
            return path.removeprefix(folder)
    return None


def _pending(path: str) -> bool:
    return path in NOT_YET_TRANSLATED_MODULES or _template_name(path) in NOT_YET_TRANSLATED


@pytest.fixture(scope="module")
def marked() -> Catalog:
    """What the code marks today, extracted exactly as `./stack translations` does."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, **parse_keywords(list(EXTRACT_KEYWORDS))}
    catalogue = Catalog(locale=ENGLISH)
    for path, _line, message, _comments, context in extract_from_dir(str(ROOT), method_map, options_map,
                                                                      keywords=keywords):
        catalogue.add(message, None, [(path, 0)], context=context)
    return catalogue


def _ids(catalogue: Catalog) -> set[object]:
    """Each message as (context, id): one English word may be two messages in two contexts."""
    return {(m.context, m.id) for m in catalogue if m.id}


def test_the_stack_command_extracts_with_the_same_keywords() -> None:
    stack = (ROOT / "stack").read_text()
    assert all(f"-k {k}" in stack for k in EXTRACT_KEYWORDS)


def test_the_template_lists_exactly_what_the_code_marks(marked: Catalog) -> None:
    with TEMPLATE.open("rb") as pot:
        template = read_po(pot)
    missing, stale = _ids(marked) - _ids(template), _ids(template) - _ids(marked)
    assert not missing, f"marked in the code but not in {TEMPLATE.name} (run ./stack translations): {missing}"
    assert not stale, f"in {TEMPLATE.name} but no longer in the code (run ./stack translations): {stale}"


@pytest.mark.parametrize("locale", [code for code in LOCALES if code != ENGLISH])
def test_every_language_has_every_message_translated_with_its_placeholders(marked: Catalog, locale: str) -> None:
    with catalogue_path(locale).open("rb") as po:
        catalogue = read_po(po, locale=locale)
    assert not _ids(catalogue) - _ids(marked), "stale entries: run ./stack translations"
    waiting, untranslated = [], []
    for message in marked:
        if not message.id:
            continue
        entry = catalogue.get(message.id, context=message.context)
        strings = [] if entry is None else entry.string if isinstance(entry.string, tuple) else [entry.string]
        done = entry is not None and "fuzzy" not in entry.flags and strings and all(strings)
        if not done:
            files = {path for path, _ in message.locations}
            (waiting if all(_pending(f) for f in files) else untranslated).append((message.id, sorted(files)))
    assert not untranslated, f"{locale}: not translated (or fuzzy) outside the not-yet-translated list: " \
                             f"{untranslated}"
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalogue.check()]
    assert not problems, f"{locale}: translations whose placeholders differ from the English: {problems}"
    print(f"\n{locale}: {len(_ids(marked)) - len(waiting)} messages translated, {len(waiting)} waiting in files "
          f"not translated yet")


def test_the_spanish_words_read_at_grade_7_or_below() -> None:
    """Every Spanish translation, read as one text (each entry a unit of its own, as on a page), by Crawford's
    formula for Spanish under the same bar as the English."""
    with catalogue_path("es").open("rb") as po:
        catalogue = read_po(po, locale="es")
    texts = [re.sub(r"<[^>]+>|%\(\w+\)s", " ", s) for m in catalogue if m.id
             for s in (m.string if isinstance(m.string, tuple) else [m.string]) if s]
    grade = grade_units("es catalogue", texts, lang="es")
    print("\n" + "\n".join(report([grade], "Spanish words")))
    assert grade.grade <= MAX_GRADE, grade.hardest()


def test_the_not_yet_translated_list_names_real_files() -> None:
    for name in NOT_YET_TRANSLATED:
        assert any((ROOT / folder / name).is_file() for folder in TEMPLATE_FOLDERS), name
    for path in NOT_YET_TRANSLATED_MODULES:
        assert (ROOT / path).is_file(), path


def _translated_templates() -> Iterator[tuple[str, Path]]:
    for folder in PATIENT_TEMPLATES:
        for path in sorted((ROOT / folder).glob("*.html")):
            name = _template_name(str(path.relative_to(ROOT)))
            if name not in NOT_YET_TRANSLATED:
                yield str(name), path


LETTERS = re.compile(r"[^\W\d_]")
# Blocks of base.html that fill in a tag's attribute (class names, a URL): no words there.
ATTRIBUTE_BLOCKS = frozenset({"html_attrs", "body_class", "main_class", "home_url"})
SPOKEN_ATTRIBUTES = re.compile(r'\b(?:aria-label|alt|title|placeholder)="([^"]*)"')


def test_a_translated_template_has_no_english_outside_a_message() -> None:
    env = make_environment()
    translated = dict(_translated_templates())
    assert {"base.html", "portal/layout.html", "portal/dashboard.html", "accounts/login.html"} <= set(translated)
    for name, path in translated.items():
        tree = env.parse(path.read_text())
        # The template's own text with every expression and tag taken out: only punctuation may be left.
        in_attributes = {id(d) for block in tree.find_all(nodes.Block) if block.name in ATTRIBUTE_BLOCKS
                         for d in block.find_all(nodes.TemplateData)}
        skeleton = "\x00".join(node.data for node in tree.find_all(nodes.TemplateData)
                                if id(node) not in in_attributes)
        skeleton = re.sub(r"(?s)<!--.*?-->", "", skeleton)
        for value in SPOKEN_ATTRIBUTES.findall(skeleton):
            assert not LETTERS.search(value.replace("\x00", "")), f"{name}: attribute text not marked: {value!r}"
        words = re.sub(r"&#?\w+;", " ", re.sub(r"<[^>]*>", " ", skeleton))
        words = re.sub(r'[\w:-]+="[^"]*"', " ", words)  # attributes a block adds to a tag of its parent
        leftover = [w for w in words.split() if LETTERS.search(w)]
        assert not leftover, f"{name}: text not marked for translation: {leftover[:8]}"
        # A translated page includes no part that is not translated yet.
        for include in tree.find_all(nodes.Include):
            if isinstance(include.template, nodes.Const):
                assert include.template.value not in NOT_YET_TRANSLATED, (name, include.template.value)


def test_the_check_finds_english_left_in_a_template() -> None:
    env = make_environment()
    tree = env.parse('<p title="Close">{{ _("Home") }}</p><p>Sign out</p>')
    skeleton = "\x00".join(node.data for node in tree.find_all(nodes.TemplateData))
    assert SPOKEN_ATTRIBUTES.findall(skeleton) == ["Close"]
    assert [w for w in re.sub(r"<[^>]*>", " ", skeleton).split() if LETTERS.search(w)] == ["Sign", "out"]
