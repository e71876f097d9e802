"""Password rules, identity matching, lockout arithmetic, TOTP/recovery codes, CSRF and redirects."""

from __future__ import annotations

import time

import pyotp
import pytest
from argon2 import PasswordHasher
from starlette.requests import Request

from smart_auth.accounts.identity import MRN_SYSTEM, SSN_SYSTEM, identity_matches
from smart_auth.accounts.lockout import LockoutPolicy
from smart_auth.accounts.mfa import (
    looks_like_recovery_code,
    new_recovery_codes,
    new_totp_secret,
    provisioning_uri,
    qr_data_uri,
    totp_step,
)
from smart_auth.accounts.passwords import PasswordHashing, password_problems
from smart_auth.accounts.redirects import safe_next
from smart_auth.accounts.secrets_box import SecretBox
from smart_auth.accounts.sessions import PreSession, SessionManager
from smart_auth.accounts.settings import AccountSettings
from smart_auth.errors import InvalidRequestError
from smart_auth.request_bodies import FormExpired, MalformedBody, oauth_form, read_form, require_csrf


def codes(password: str, username: str | None = None) -> set[str]:
    return {p.code for p in password_problems(password, username)}


# ---- passwords -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "password",
    ["Password123!", "P@ssw0rd2024!", "Summer2024!!", "qwertyuiop12", "Welcome1!!!!", "Iloveyou1234!",
     "passwordpassword", "1234567890ab"],
)
def test_common_passwords_and_their_variations_are_refused(password: str) -> None:
    assert "common" in codes(password) or "one_class" in codes(password)


def test_common_pattern_is_reported_as_common() -> None:
    assert "common" in codes("Password123!")
    assert "common" in codes("P@ssw0rd2024!")


def test_short_password_refused() -> None:
    assert "too_short" in codes("Ab1!xyz")


def test_mostly_one_class_refused() -> None:
    assert "one_class" in codes("abcdefghijkm")  # all lower case
    assert "one_class" in codes("mrfbtzqwkepx7")  # 12 lower + 1 digit: > 75 % one class


def test_repetition_refused() -> None:
    assert "repetitive" in codes("Aaaaaaaa1111!")


def test_username_in_password_refused() -> None:
    assert "contains_username" in codes("Xx-JaneDoe-42-blue", "janedoe")


@pytest.mark.parametrize("password", ["Tr4vel-Lantern-Oak", "correct horse battery staple", "K9#mVq2!pLz8"])
def test_strong_passwords_pass(password: str) -> None:
    assert password_problems(password, "jane") == []


# The strength the app hashes with: argon2id as argon2-cffi's defaults make it (RFC 9106, low memory).
PRODUCTION_HASH = "$argon2id$v=19$m=65536,t=3,p=4$Tn8udlbWaz5pmf6hkgkqEA$BRZCHXwqdScizSgn3WKY8g1ql073Pjqpa0xfO4VT01U"
# The same algorithm made cheap, so the tests below hash in milliseconds, not a tenth of a second each.
CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def test_the_app_hashes_with_strong_argon2id_parameters() -> None:
    hashing = PasswordHashing()  # what the accounts router uses unless told otherwise
    assert not hashing.needs_rehash(PRODUCTION_HASH)  # exactly these parameters, no weaker...
    assert hashing.needs_rehash(CHEAP.hash("Tr4vel-Lantern-Oak"))  # ...and a cheap hash would be redone


def test_argon2id_hash_verifies_and_dummy_never_matches() -> None:
    hashing = PasswordHashing(CHEAP)
    h = hashing.hash("Tr4vel-Lantern-Oak")
    assert h.startswith("$argon2id$")
    assert hashing.verify(h, "Tr4vel-Lantern-Oak")
    assert not hashing.verify(h, "Tr4vel-Lantern-0ak")
    assert not hashing.verify(None, "dummy password for timing equalisation")


def test_unknown_user_check_costs_about_as_much_as_a_real_one() -> None:
    hashing = PasswordHashing(CHEAP)
    h = hashing.hash("Tr4vel-Lantern-Oak")
    # CPU time, not wall time: what the checks cost, whatever else the machine does meanwhile (cheap hashes
    # take milliseconds, less than a busy machine may make a test wait).
    t0 = time.process_time()
    for _ in range(3):
        hashing.verify(h, "wrong-Password-9")
    real = time.process_time() - t0
    t0 = time.process_time()
    for _ in range(3):
        hashing.verify(None, "wrong-Password-9")
    dummy = time.process_time() - t0
    assert 0.5 < dummy / real < 2.0


# ---- identity --------------------------------------------------------------------------------------
PATIENT = {
    "resourceType": "Patient",
    "id": "pt-0001",
    "birthDate": "1980-04-23",
    "identifier": [
        {"system": MRN_SYSTEM, "value": "MRN-100001"},
        {"system": SSN_SYSTEM, "value": "123-45-6789"},
    ],
}


def test_dob_plus_mrn_matches() -> None:
    assert identity_matches(PATIENT, birth_date="1980-04-23", mrn="mrn-100001")
    assert identity_matches(PATIENT, birth_date="04/23/1980", mrn=" MRN 100001 ")


def test_dob_plus_ssn_last_four_matches() -> None:
    assert identity_matches(PATIENT, birth_date="1980-04-23", ssn_last4="6789")


def test_wrong_dob_fails_even_with_right_mrn_and_ssn() -> None:
    assert not identity_matches(PATIENT, birth_date="1980-04-24", mrn="MRN-100001", ssn_last4="6789")


def test_dob_alone_or_wrong_second_item_fails() -> None:
    assert not identity_matches(PATIENT, birth_date="1980-04-23")
    assert not identity_matches(PATIENT, birth_date="1980-04-23", mrn="MRN-100002")
    assert not identity_matches(PATIENT, birth_date="1980-04-23", ssn_last4="6788")
    assert not identity_matches(PATIENT, birth_date="1980-04-23", ssn_last4="45-6789"[:3])


def test_ssn_system_value_is_not_accepted_as_mrn() -> None:
    assert not identity_matches(PATIENT, birth_date="1980-04-23", mrn="123-45-6789")


def test_inactive_or_missing_patient_never_matches() -> None:
    assert not identity_matches(None, birth_date="1980-04-23", mrn="MRN-100001")
    assert not identity_matches({**PATIENT, "active": False}, birth_date="1980-04-23", mrn="MRN-100001")


# ---- lockout ---------------------------------------------------------------------------------------
def test_five_failures_within_window_lock_for_fifteen_minutes() -> None:
    policy = LockoutPolicy(5, 900, 900)
    fails = [1000.0, 1100.0, 1200.0, 1300.0]
    assert policy.locked_until(fails, 1300.0) is None
    fails.append(1400.0)
    assert policy.locked_until(fails, 1400.0) == 2300.0
    assert policy.locked_until(fails, 2299.0) == 2300.0
    assert policy.locked_until(fails, 2300.0) is None


def test_failures_spread_beyond_the_window_do_not_lock() -> None:
    policy = LockoutPolicy(5, 900, 900)
    fails = [0.0, 300.0, 600.0, 950.0, 1250.0]  # the first has aged out by t=1250
    assert policy.locked_until(fails, 1250.0) is None


# ---- TOTP and recovery codes -----------------------------------------------------------------------
def test_totp_accepts_current_and_adjacent_step_only() -> None:
    secret = new_totp_secret()
    now = 1_700_000_000.0
    totp = pyotp.TOTP(secret)
    assert totp_step(secret, totp.at(now), now) == int(now // 30)
    assert totp_step(secret, totp.at(now - 30), now) == int(now // 30) - 1
    assert totp_step(secret, totp.at(now - 120), now) is None
    assert totp_step(secret, "12345", now) is None


def test_provisioning_uri_and_qr() -> None:
    uri = provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DP", "jane", "Patient Portal")
    assert uri.startswith("otpauth://totp/Patient%20Portal:jane?secret=JBSWY3DPEHPK3PXPJBSWY3DP")
    assert qr_data_uri(uri).startswith("data:image/svg+xml;base64,")


def test_recovery_codes_are_ten_distinct_and_recognisable() -> None:
    rc = new_recovery_codes(10)
    assert len(set(rc)) == 10
    assert all(looks_like_recovery_code(c) for c in rc)
    assert not looks_like_recovery_code("123456")


def test_secret_box_hashes_and_seals(tmp_path) -> None:
    box = SecretBox.load_or_create(tmp_path)
    assert (tmp_path / "accounts-secret.key").stat().st_mode & 0o777 == 0o600
    again = SecretBox.load_or_create(tmp_path)
    assert box.digest("x", "code") == again.digest("x", "code") != box.digest("y", "code")
    sealed = box.seal("JBSWY3DPEHPK3PXPJBSWY3DP")
    assert "JBSWY3DPEHPK3PXPJBSWY3DP" not in sealed and again.unseal(sealed) == "JBSWY3DPEHPK3PXPJBSWY3DP"


# ---- CSRF and redirects ----------------------------------------------------------------------------
def _request(headers: dict[str, str] | None = None, body: bytes = b"") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw, "query_string": b""}, receive)


def _form(token: str) -> Request:
    return _request({"Content-Type": "application/x-www-form-urlencoded"}, f"csrf_token={token}&x=1".encode())


async def test_csrf_token_must_match_one_of_the_browsers_sessions() -> None:
    await require_csrf(_form("token-abc"), "other", "token-abc")
    await require_csrf(_request({"X-CSRF-Token": "token-abc"}), "token-abc")
    for request in (_form("token-abd"), _form(""), _request()):
        with pytest.raises(FormExpired):
            await require_csrf(request, "token-abc")
    with pytest.raises(FormExpired):
        await require_csrf(_form("token-abc"))  # a browser without any session has no valid token
    manager = SessionManager(None, None, AccountSettings(), secure_cookies=False)  # type: ignore[arg-type]
    assert 'name="csrf_token" value="token-abc"' in str(manager.csrf_field(PreSession("id", "token-abc")))


async def test_a_multipart_form_without_boundary_is_a_malformed_body() -> None:
    request = _request({"Content-Type": "multipart/form-data"}, b"csrf_token=x")
    with pytest.raises(MalformedBody):
        await read_form(request)


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
     "/\t/evil.example", "http:/evil.example", "", None, "portal"],
)
def test_no_open_redirect(target: str | None) -> None:
    assert safe_next(target, "/portal/") == "/portal/"


def test_local_paths_are_kept() -> None:
    assert safe_next("/auth/authorize?client_id=a&state=b", "/portal/") == "/auth/authorize?client_id=a&state=b"
    assert safe_next("/portal/records", "/portal/") == "/portal/records"


async def test_a_repeated_parameter_with_any_name_is_invalid_request_not_a_crash() -> None:
    request = _request({"Content-Type": "application/x-www-form-urlencoded"}, "Çà\u00b4=1&Çà\u00b4=2".encode())
    with pytest.raises(InvalidRequestError) as refused:
        await oauth_form(request)
    assert refused.value.description == "Parameter ?????? was given more than once"
