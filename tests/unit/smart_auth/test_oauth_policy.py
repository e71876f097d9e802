"""Pure parts of the OAuth side: scope policy, plain-words consent text, registration metadata, tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from authlib.oauth2.rfc6749.errors import OAuth2Error

from smart_auth.clients import Client
from smart_auth.consent import describe_scope
from smart_auth.errors import InvalidScopeError, UnsupportedGrantTypeError, error_parts
from smart_auth.keys import KeyStore
from smart_auth.registration import validate_metadata
from smart_auth.scope_policy import (
    allowed_for_account,
    allowed_for_client,
    narrow_for_person,
    parse_requested,
    system_only,
)
from smart_auth.scopes import Interaction
from smart_auth.style import portal_style, smart_style
from smart_auth.tokens import Subject, TokenIssuer
from web.static import STATIC_DIR


def test_parse_requested_dedupes_and_rejects_malformed_resource_scopes() -> None:
    assert parse_requested("openid patient/Observation.rs openid") == ["openid", "patient/Observation.rs"]
    with pytest.raises(InvalidScopeError):
        parse_requested("patient/Observation.write?category=x")
    with pytest.raises(InvalidScopeError):
        parse_requested("patient/Observation.srx")


def test_account_kind_limits_scope_contexts() -> None:
    asked = ["openid", "fhirUser", "patient/Observation.rs", "user/Observation.rs", "system/*.rs", "weird"]
    assert allowed_for_account("patient", asked, has_patient=True) == ["openid", "fhirUser", "patient/Observation.rs"]
    assert allowed_for_account("caregiver", asked, has_patient=True) == ["openid", "fhirUser",
                                                                         "patient/Observation.rs"]
    assert allowed_for_account("staff", asked, has_patient=False) == ["openid", "fhirUser", "user/Observation.rs"]
    assert "patient/Observation.rs" in allowed_for_account("staff", asked, has_patient=True)
    assert system_only(["system/Patient.rs"]) and not system_only(["system/Patient.rs", "patient/Patient.rs"])


def test_client_registration_scope_limits_with_wildcards() -> None:
    client = Client("c", "App", scope="openid patient/*.rs patient/Appointment.cruds")
    asked = ["openid", "patient/Observation.rs", "patient/Observation.cruds", "patient/Appointment.cu",
             "offline_access"]
    assert allowed_for_client(client, asked) == ["openid", "patient/Observation.rs", "patient/Appointment.cu"]
    assert allowed_for_client(Client("d", "Any"), asked) == asked


@pytest.mark.parametrize(
    ("scope", "text"),
    [
        ("patient/Observation.rs?category=laboratory", "Read your lab results"),
        ("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
         "Read your vital signs (like blood pressure and pulse)"),
        ("patient/Appointment.cruds", "See, book and change your appointments"),
        ("patient/MedicationRequest.read", "Read your prescriptions"),
        ("patient/Communication.c", "Send messages to your care team"),
        ("patient/Communication.cu", "Send messages to your care team and mark their messages to you as read"),
        ("patient/MedicationRequest.c", "Request refills of your prescriptions"),
        ("patient/ServiceRequest.c", "Ask for referrals"),
        ("patient/ServiceRequest.crs", "See your referrals and orders and ask for referrals"),
        ("patient/PaymentReconciliation.c", "Pay your bills"),
        ("patient/Invoice.rs", "Read your bills"),
        ("patient/QuestionnaireResponse.cu", "Fill in and send your clinic's forms"),
        ("offline_access", "Keep access after you close the app, until you withdraw it"),
        ("patient/*.rs", "Read all of your health record"),
    ],
)
def test_consent_text_is_plain_words(scope: str, text: str) -> None:
    assert describe_scope(scope) == text


def test_registration_metadata_rules() -> None:
    ok = validate_metadata({"client_name": "A", "redirect_uris": ["http://127.0.0.1/cb"],
                            "token_endpoint_auth_method": "none"}, allow_system=False)
    assert ok["grant_types"] == ["authorization_code", "refresh_token"]
    bad = [
        {"redirect_uris": ["http://127.0.0.1/cb#frag"], "token_endpoint_auth_method": "none"},
        {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "tls_client_auth"},
        {"redirect_uris": ["http://127.0.0.1/cb"], "response_types": ["token"]},
        {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "private_key_jwt"},
        {"redirect_uris": ["http://127.0.0.1/cb"], "scope": "system/*.rs"},
        {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"},
    ]
    for meta in bad:
        with pytest.raises(OAuth2Error):
            validate_metadata(meta, allow_system=False)


def test_tokens_sign_verify_and_reject_foreign(tmp_path: Path) -> None:
    keys = KeyStore.load_or_create(tmp_path / "k.pem")
    clock = [1_000_000.0]
    issuer = TokenIssuer(keys, public_url="http://portal.test", access_token_ttl=60, now=lambda: clock[0])
    subject = Subject(sub="acct", client_id="c", scope="openid fhirUser patient/*.rs", grant_id="g",
                      fhir_user="Patient/pt-1", patient="pt-1")
    body, claims = issuer.response(subject, nonce="n")
    assert body["expires_in"] == 60 and body["patient"] == "pt-1" and "id_token" in body
    assert claims["aud"] == "http://portal.test/fhir" and claims["exp"] == 1_000_060
    assert issuer.verify(body["access_token"])["patient"] == "pt-1"
    clock[0] += 61
    assert issuer.verify(body["access_token"]) is None  # expired
    assert issuer.verify(body["access_token"], check_exp=False)["jti"] == claims["jti"]
    other = TokenIssuer(KeyStore.load_or_create(tmp_path / "other.pem"), public_url="http://portal.test",
                        access_token_ttl=60)
    assert other.verify(body["access_token"], check_exp=False) is None


PATIENT_WRITES = {"Patient": frozenset({Interaction.UPDATE}), "Communication": frozenset({Interaction.CREATE}),
                  "Appointment": frozenset({Interaction.CREATE, Interaction.UPDATE}),
                  "MedicationRequest": frozenset({Interaction.CREATE})}


@pytest.mark.parametrize(("asked", "granted"), [
    ("patient/*.cruds", ["patient/*.rs", "patient/Appointment.cu", "patient/Communication.c",
                         "patient/MedicationRequest.c", "patient/Patient.u"]),
    ("patient/*.write", ["patient/Appointment.cu", "patient/Communication.c", "patient/MedicationRequest.c",
                         "patient/Patient.u"]),
    ("patient/*.read", ["patient/*.read"]),
    ("patient/Observation.cruds", ["patient/Observation.rs"]),
    ("patient/Observation.crus?category=laboratory", ["patient/Observation.rs?category=laboratory"]),
    ("patient/Appointment.cruds", ["patient/Appointment.crus"]),
    ("patient/Communication.write", ["patient/Communication.c"]),
    ("patient/Patient.d", []),
    ("openid fhirUser", ["openid", "fhirUser"]),
])
def test_patients_are_granted_only_what_their_role_can_use(asked: str, granted: list[str]) -> None:
    assert narrow_for_person(asked.split(), PATIENT_WRITES) == granted

    assert "patient/*.rs" in narrow_for_person(["patient/*.cruds"], {})  # nothing writable: reads only
    assert narrow_for_person(["patient/*.cruds"], {}) == ["patient/*.rs"]


def test_the_style_document_is_the_portals_own_look() -> None:
    css = (":root { --ink: #111; --paper: #fefefe; --brand: #0b4f6c; --bad: #a00; --ok: #070; --wash: #eee;"
           " --radius: .5rem; --gap: 1rem; }\n"
           "body { margin: 0; font-family: system-ui, sans-serif; font-size: 1.125rem; }")
    style = smart_style(css)
    assert style["color_highlight"] == "#0b4f6c" and style["color_text"] == "#111"
    assert style["dim_font_size"] == "18px" and style["dim_border_radius"] == "8px"
    assert style["font_family_body"] == "system-ui, sans-serif"
    assert portal_style()["color_highlight"] in (Path(STATIC_DIR) / "site.css").read_text()


# -- found by the fuzzing suite (tests/fuzz) ---------------------------------------------------------
@pytest.mark.parametrize("meta", [
    {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"k": 1}},
    {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "Çà\"\u00b4\x00"},
    {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "scope": "patient/Çà.r\"x"},
])
def test_odd_registration_metadata_is_invalid_client_metadata_not_a_crash(meta: dict) -> None:
    with pytest.raises(OAuth2Error) as refused:
        validate_metadata(meta, allow_system=False)
    status, body, _ = error_parts(refused.value)
    assert status == 400 and body["error"] in ("invalid_client_metadata", "invalid_scope")
    assert all(" " <= c <= "~" and c not in '"\\' for c in body["error_description"])


def test_an_unsupported_grant_type_is_named_in_allowed_characters_only() -> None:
    _, body, _ = error_parts(UnsupportedGrantTypeError('Çà"\\\n'))
    assert body == {"error": "unsupported_grant_type", "error_description": "grant_type=????? is not supported"}
