"""Password rules and hashing (argon2id).

The rules follow NIST SP 800-63B in spirit: length first, then refuse what attackers try first
(common and breached passwords and their obvious variations, the username, one repeated class).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from web.i18n import gettext as _

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 copes, but an unbounded form field is a denial-of-service lever
PASSPHRASE_LENGTH = 20  # long passphrases may be mostly letters

# Undo the substitutions people use to "strengthen" dictionary words.
_LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s", "7": "t",
                       "+": "t", "8": "b", "9": "g", "|": "l"})
_EDGE = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "abcdefghijklmnopqrstuvwxyz")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _classes(password: str) -> dict[str, int]:
    counts = {"lower": 0, "upper": 0, "digit": 0, "other": 0}
    for ch in password:
        if ch.islower():
            counts["lower"] += 1
        elif ch.isupper():
            counts["upper"] += 1
        elif ch.isdigit():
            counts["digit"] += 1
        else:
            counts["other"] += 1
    return counts


def _is_sequence(text: str) -> bool:
    """True for runs along a keyboard row or the alphabet/digits (either direction), e.g. 'qwertyuiop'."""
    if len(text) < 4:
        return False
    for row in _KEYBOARD_ROWS:
        if text in row or text in row[::-1]:
            return True
    return False


def _is_common(password: str) -> bool:
    words = common_passwords()
    lowered = password.lower()
    candidates = {lowered, lowered.translate(_LEET)}
    for value in list(candidates):
        stripped = _EDGE.sub("", value)
        candidates.add(stripped)
        candidates.add(stripped.translate(_LEET))
        # "Password123!" → "password"; "Summer2024!!" → "summer"; "p@ssw0rd" → "password"
        candidates.add(_EDGE.sub("", value.translate(_LEET)))
    candidates.discard("")
    if candidates & words:
        return True
    # A common word repeated or doubled up ("passwordpassword", "summersummer1")
    for cand in candidates:
        for size in range(3, len(cand) // 2 + 1):
            if len(cand) % size == 0 and cand[:size] * (len(cand) // size) == cand and cand[:size] in words:
                return True
    return any(_is_sequence(c) for c in candidates if len(c) >= 8)


@dataclass(frozen=True)
class PasswordProblem:
    code: str
    message: str


def password_problems(password: str, username: str | None = None) -> list[PasswordProblem]:
    """Every rule the password breaks, in the words shown next to the field (the request's language; English
    outside a request, e.g. the command line). Empty list = acceptable."""
    problems: list[PasswordProblem] = []
    if len(password) < MIN_LENGTH:
        problems.append(PasswordProblem("too_short", _("Use at least %(num)s characters.") % {"num": MIN_LENGTH}))
    if len(password) > MAX_LENGTH:
        problems.append(PasswordProblem("too_long", _("Use at most %(num)s characters.") % {"num": MAX_LENGTH}))
    counts = _classes(password)
    used = [c for c in counts.values() if c]
    if password and len(password) <= MAX_LENGTH:
        dominant = max(counts.values()) / len(password)
        if len(used) < 2 or (len(password) < PASSPHRASE_LENGTH and dominant > 0.75):
            problems.append(
                PasswordProblem(
                    "one_class",
                    _("Use a mix of capital and small letters, numbers and symbols. Or use a longer password "
                      "made of a few words."),
                )
            )
        if len(set(password)) < 6 or re.search(r"(.)\1{3,}", password):
            problems.append(PasswordProblem("repetitive", _("Do not use the same letter or number over and over.")))
    if username and len(username) >= 3 and username.lower() in password.lower():
        problems.append(PasswordProblem("contains_username", _("Do not include your username in your password.")))
    if password and _is_common(password):
        problems.append(
            PasswordProblem("common", _("This password is too common, or it is on a list of stolen passwords."))
        )
    return problems


class PasswordHashing:
    """argon2id hashing plus a dummy verify so unknown usernames cost the same time as known ones."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()  # argon2-cffi's defaults are argon2id, RFC 9106 low-memory
        self._dummy: str | None = None

    @property
    def dummy(self) -> str:
        # Made on first use: a hash costs as much as a sign-in, and most app instances (workers that only
        # serve FHIR, tests) never check a password.
        if self._dummy is None:
            self._dummy = self._hasher.hash("dummy password for timing equalisation")
        return self._dummy

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self.dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
