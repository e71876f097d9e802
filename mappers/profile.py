"""A patient's contact details as a form they can read and change (pure functions).

`profile_form` turns the Patient into the form's plain values; `profile_errors` checks what was typed,
field by field, in words; `patient_with_profile` applies the form to the Patient, changing only what a
patient may change (telecom, address, communication, contact) and keeping everything the form does not
show (a second phone number, a work address, a contact who is not an emergency contact) as it was.

How the patient likes to be reached is kept where FHIR keeps it: `telecom.rank` (1 = use first); a
preference for text messages is an `sms` entry with the same number.

Words for people come in the `locale` the caller names (the catalogue's, `locales`): the tables below are
marked for it and put in a language with `in_words`; what goes into the record is the same in every
language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from locales import N_, gettext_in

BCP47 = "urn:ietf:bcp:47"
CONTACT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0131"
EMERGENCY = "C"
EMERGENCY_SLOTS = 2
# code -> what the patient reads (in the reader's language, and in the language itself so a reader finds their
# own).
LANGUAGES: dict[str, str] = {
    "en-US": N_("English"),
    "es": N_("Spanish (Español)"),
    "zh": N_("Chinese (中文)"),
    "vi": N_("Vietnamese (Tiếng Việt)"),
    "ko": N_("Korean (한국어)"),
    "ar": N_("Arabic (العربية)"),
    "gu": N_("Gujarati (ગુજરાતી)"),
    "pl": N_("Polish (Polski)"),
    "ru": N_("Russian (Русский)"),
    "tl": N_("Tagalog"),
    "fr": N_("French (Français)"),
    "ht": N_("Haitian Creole (Kreyòl ayisyen)"),
}
CONTACT_WAYS: dict[str, str] = {"phone": N_("A phone call"), "sms": N_("A text message"), "email": N_("An e-mail")}
# "Home phone", not "Home": one message id is one meaning, and "Home" is the home page.
PHONE_KINDS: dict[str, str] = {"mobile": N_("Mobile phone"), "home": N_("Home phone"), "work": N_("Work phone")}
US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH "
    "OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP".split())
EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}"
                   r"[A-Za-z0-9])?)+")
ZIP = re.compile(r"\d{5}(?:-\d{4})?")
PHONE_SEPARATORS = re.compile(r"[\s().\-]")
TEXT_MAX = 80

PHONE_HELP = N_("Enter a phone number with its area code, for example 217-555-0123.")
NOT_GIVEN = N_("Not given")


def in_words(words: Mapping[str, str], locale: str = "en") -> dict[str, str]:
    """One of the tables above (LANGUAGES, CONTACT_WAYS, PHONE_KINDS, FORM_LABELS) in `locale`."""
    return {key: gettext_in(locale, text) for key, text in words.items()}


@dataclass(frozen=True)
class Field:
    name: str
    label: str


def _items(resource: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = resource.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _main(entries: list[dict[str, Any]], system: str) -> dict[str, Any] | None:
    """The entry of a system the form edits: the one ranked first, else the first listed."""
    found = [e for e in entries if e.get("system") == system]
    return min(found, key=lambda e: e.get("rank", 10_000)) if found else None


def _main_address(patient: Mapping[str, Any]) -> dict[str, Any] | None:
    addresses = [a for a in _items(patient, "address") if a.get("use") != "old"]
    return next((a for a in addresses if a.get("use") == "home"), addresses[0] if addresses else None)


def _is_emergency(contact: Mapping[str, Any]) -> bool:
    return any(c.get("system") == CONTACT_ROLE_SYSTEM and c.get("code") == EMERGENCY
               for r in _items(contact, "relationship") for c in _items(r, "coding"))


def _contact_name(contact: Mapping[str, Any]) -> str:
    name = contact.get("name") if isinstance(contact.get("name"), dict) else {}
    if name.get("text"):
        return str(name["text"])
    return " ".join([*(name.get("given") or []), name.get("family") or ""]).strip()


def _contact_relation(contact: Mapping[str, Any]) -> str:
    for r in _items(contact, "relationship"):
        if not any(c.get("code") == EMERGENCY for c in _items(r, "coding")) and r.get("text"):
            return str(r["text"])
    return ""


def _language_code(patient: Mapping[str, Any]) -> str:
    entries = _items(patient, "communication")
    chosen = next((e for e in entries if e.get("preferred")), entries[0] if entries else None)
    for coding in _items((chosen or {}).get("language") or {}, "coding"):
        code = str(coding.get("code") or "")
        if code in LANGUAGES:
            return code
        if code.split("-")[0] in LANGUAGES:
            return code.split("-")[0]
        if code.startswith("en"):
            return "en-US"
    return ""


def profile_form(patient: Mapping[str, Any]) -> dict[str, str]:
    """The form's values for what is on file now."""
    telecom = _items(patient, "telecom")
    phone = _main(telecom, "phone") or {}
    email = _main(telecom, "email") or {}
    ranked = min((e for e in telecom if e.get("system") in CONTACT_WAYS and "rank" in e),
                 key=lambda e: e["rank"], default=None)
    address = _main_address(patient) or {}
    lines = [str(x) for x in address.get("line") or []]
    form = {
        "phone": str(phone.get("value") or ""),
        "phone_kind": str(phone.get("use") or "mobile") if phone.get("use") in PHONE_KINDS else "mobile",
        "email": str(email.get("value") or ""),
        "line1": lines[0] if lines else "",
        "line2": " ".join(lines[1:]),
        "city": str(address.get("city") or ""),
        "state": str(address.get("state") or ""),
        "postal": str(address.get("postalCode") or ""),
        "language": _language_code(patient),
        "contact_by": str(ranked["system"]) if ranked else ("phone" if phone else "email" if email else ""),
    }
    emergency = [c for c in _items(patient, "contact") if _is_emergency(c)]
    for n in range(EMERGENCY_SLOTS):
        c = emergency[n] if n < len(emergency) else {}
        form[f"ec{n}_name"] = _contact_name(c)
        form[f"ec{n}_relation"] = _contact_relation(c)
        form[f"ec{n}_phone"] = str((_main(_items(c, "telecom"), "phone") or {}).get("value") or "")
    return form


def normal_phone(raw: str) -> str | None:
    """A phone number as the clinic keeps it (217-555-0123, or +<country><number> from abroad), or None
    when it cannot be a phone number."""
    value = PHONE_SEPARATORS.sub("", raw.strip())
    if value.startswith("+1"):
        value = value[2:]
    elif value.startswith("+"):
        digits = value[1:]
        return f"+{digits}" if digits.isdigit() and 8 <= len(digits) <= 15 else None
    if len(value) == 11 and value.startswith("1"):
        value = value[1:]
    if not (value.isdigit() and len(value) == 10) or value[0] in "01":
        return None
    return f"{value[:3]}-{value[3:6]}-{value[6:]}"


def _text(fields: Mapping[str, str], name: str) -> str:
    return " ".join(str(fields.get(name) or "").split())


def profile_errors(fields: Mapping[str, str], locale: str = "en") -> dict[str, list[str]]:
    """Field-level problems with what was typed, in words (in `locale`); empty when it can be saved."""
    errors: dict[str, list[str]] = {}

    def problem(name: str, words: str) -> None:
        errors.setdefault(name, []).append(gettext_in(locale, words))

    def too_long() -> str:
        return gettext_in(locale, N_("This can be at most %(most)s characters.")) % {"most": TEXT_MAX}

    phone, email = _text(fields, "phone"), _text(fields, "email")
    if phone and normal_phone(phone) is None:
        problem("phone", PHONE_HELP)
    if fields.get("phone_kind", "mobile") not in PHONE_KINDS:
        problem("phone_kind", N_("Choose mobile, home or work."))
    if email and (len(email) > 254 or not EMAIL.fullmatch(email)):
        problem("email", N_("Enter an e-mail address like name@example.com."))
    if not phone and not email:
        problem("phone", N_("Give us at least a phone number or an e-mail address, so we can reach you."))
    address = {k: _text(fields, k) for k in ("line1", "line2", "city", "state", "postal")}
    if any(address.values()):
        if not address["line1"]:
            problem("line1", N_("Enter the street address."))
        if not address["city"]:
            problem("city", N_("Enter the town or city."))
        if address["state"].upper() not in US_STATES:
            problem("state", N_("Choose the state."))
        if not ZIP.fullmatch(address["postal"]):
            problem("postal", N_("Enter a ZIP code of 5 digits, for example 62704 (or 62704-1234)."))
    for name in ("line1", "line2", "city"):
        if len(address[name]) > TEXT_MAX:
            errors.setdefault(name, []).append(too_long())
    if fields.get("language", "") not in LANGUAGES:
        problem("language", N_("Choose the language you would like us to use."))
    way = fields.get("contact_by", "")
    if way not in CONTACT_WAYS:
        problem("contact_by", N_("Choose how you would like us to reach you."))
    elif way in ("phone", "sms") and not phone:
        problem("contact_by", N_("Add a phone number above, or choose e-mail."))
    elif way == "email" and not email:
        problem("contact_by", N_("Add an e-mail address above, or choose a phone call or text."))
    for n in range(EMERGENCY_SLOTS):
        name, relation, ec_phone = (_text(fields, f"ec{n}_{k}") for k in ("name", "relation", "phone"))
        if not (name or relation or ec_phone):
            continue
        if not name:
            problem(f"ec{n}_name", N_("Enter this person's name."))
        if not ec_phone:
            problem(f"ec{n}_phone", N_("Enter this person's phone number."))
        elif normal_phone(ec_phone) is None:
            problem(f"ec{n}_phone", PHONE_HELP)
        for key, value in (("name", name), ("relation", relation)):
            if len(value) > TEXT_MAX:
                errors.setdefault(f"ec{n}_{key}", []).append(too_long())
    return errors


def _emergency_contact(name: str, relation: str, phone: str) -> dict[str, Any]:
    relationship: list[dict[str, Any]] = [
        {"coding": [{"system": CONTACT_ROLE_SYSTEM, "code": EMERGENCY, "display": "Emergency Contact"}],
         "text": "Emergency contact"}]
    if relation:
        relationship.append({"text": relation})
    return {"relationship": relationship, "name": {"text": name},
            "telecom": [{"system": "phone", "value": phone}]}


def patient_with_profile(current: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """The Patient with the form applied (call only when `profile_errors` found nothing)."""
    updated = {k: v for k, v in current.items() if k not in ("meta", "text")}
    way = fields.get("contact_by", "")
    phone = normal_phone(_text(fields, "phone")) if _text(fields, "phone") else None
    email = _text(fields, "email")
    old = _items(current, "telecom")
    edited = [_main(old, "phone"), _main(old, "email")]
    # Other entries (a second number, a fax) stay; the form's own ones are rewritten, texts follow the phone.
    kept = [{k: v for k, v in e.items() if k != "rank"} for e in old
            if e.get("system") != "sms" and not any(e is x for x in edited)]
    telecom: list[dict[str, Any]] = []
    if phone:
        telecom.append({"system": "phone", "value": phone, "use": fields.get("phone_kind") or "mobile"})
        if way == "sms":
            telecom.append({"system": "sms", "value": phone, "use": "mobile"})
    if email:
        telecom.append({"system": "email", "value": email, "use": "home"})
    telecom.sort(key=lambda e: e["system"] != way)  # the chosen way first, and ranked first
    for rank, entry in enumerate(telecom, start=1):
        entry["rank"] = rank
    updated["telecom"] = telecom + kept

    main_address = _main_address(current)
    others = [a for a in _items(current, "address") if a is not main_address]
    line1, line2 = _text(fields, "line1"), _text(fields, "line2")
    if line1:
        address = {k: v for k, v in (main_address or {"use": "home"}).items()
                   if k not in ("line", "city", "state", "postalCode", "text", "district")}
        address |= {"line": [x for x in (line1, line2) if x], "city": _text(fields, "city"),
                    "state": _text(fields, "state").upper(), "postalCode": _text(fields, "postal")}
        updated["address"] = [address, *others]
    elif others:
        updated["address"] = others
    else:
        updated.pop("address", None)

    code = fields.get("language", "")
    languages = [e for e in _items(current, "communication")
                 if not any(c.get("code") == code for c in _items(e.get("language") or {}, "coding"))]
    updated["communication"] = [
        {"language": {"coding": [{"system": BCP47, "code": code, "display": LANGUAGES[code].split(" (")[0]}],
                      "text": LANGUAGES[code].split(" (")[0]}, "preferred": True},
        *({k: v for k, v in e.items() if k != "preferred"} | {"preferred": False} for e in languages)]

    contacts = [c for c in _items(current, "contact") if not _is_emergency(c)]
    for n in range(EMERGENCY_SLOTS):
        name, relation = _text(fields, f"ec{n}_name"), _text(fields, f"ec{n}_relation")
        ec_phone = normal_phone(_text(fields, f"ec{n}_phone"))
        if name and ec_phone:
            contacts.append(_emergency_contact(name, relation, ec_phone))
    if contacts:
        updated["contact"] = contacts
    else:
        updated.pop("contact", None)
    return updated


@dataclass(frozen=True)
class EmergencyContact:
    name: str
    relation: str
    phone: str


@dataclass(frozen=True)
class ContactDetails:
    """What the profile page shows, in words."""

    phone: str
    phone_kind: str
    email: str
    address_lines: list[str]
    language: str
    contact_by: str
    emergency: list[EmergencyContact]


def contact_details(patient: Mapping[str, Any], locale: str = "en") -> ContactDetails:
    """The contact details in words, in `locale`."""
    form = profile_form(patient)
    address = [x for x in (form["line1"], form["line2"]) if x]
    if form["city"] or form["postal"]:
        address.append(" ".join(x for x in (form["city"] + ",", form["state"], form["postal"]) if x.strip(",")))
    emergency = [EmergencyContact(form[f"ec{n}_name"], form[f"ec{n}_relation"], form[f"ec{n}_phone"])
                 for n in range(EMERGENCY_SLOTS) if form[f"ec{n}_name"]]
    return ContactDetails(
        phone=form["phone"], phone_kind=gettext_in(locale, PHONE_KINDS[form["phone_kind"]])
        if form["phone_kind"] in PHONE_KINDS else "", email=form["email"], address_lines=address,
        language=gettext_in(locale, LANGUAGES.get(form["language"], NOT_GIVEN)),
        contact_by=gettext_in(locale, CONTACT_WAYS.get(form["contact_by"], NOT_GIVEN)), emergency=emergency)


FORM_LABELS: dict[str, str] = {
    "phone": N_("Phone number"), "email": N_("E-mail address"), "line1": N_("Street address"),
    "line2": N_("Apartment or unit"),
    "city": N_("Town or city"), "state": N_("State"), "postal": N_("ZIP code"), "language": N_("Language"),
    "contact_by": N_("How we reach you"), "ec0_name": N_("First emergency contact's name"),
    "ec0_phone": N_("First emergency contact's phone"), "ec0_relation": N_("First emergency contact's relation"),
    "ec1_name": N_("Second emergency contact's name"), "ec1_phone": N_("Second emergency contact's phone"),
    "ec1_relation": N_("Second emergency contact's relation"), "phone_kind": N_("Kind of phone"),
}


def changed_meanwhile(typed: Mapping[str, str], on_file: Mapping[str, str],
                      locale: str = "en") -> dict[str, str]:
    """For a form saved over a record that changed since it was opened: each field where what is on file
    now differs from what was typed, with the value on file (so the person can see both and choose)."""
    out = {}
    for name in FORM_LABELS:
        now = on_file.get(name, "")
        if _text(typed, name) != " ".join(now.split()):
            chosen = LANGUAGES.get(now, CONTACT_WAYS.get(now)) if name in ("language", "contact_by") else None
            out[name] = gettext_in(locale, chosen) if chosen else now
    return out
