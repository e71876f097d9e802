"""Plain language, measured, outside the portal's own pages: the account pages a patient or caregiver sees
(enrolment, sign-in, password reset, sign-in settings, caregiver access, an app's consent page), the
notices we e-mail or text, and every message the system words in Python (refusals, field messages, e-mail
bodies), each at a reading grade of 7 or below. The rule is tests/plain_language.py; the portal's pages are
tests/unit/portal/test_plain_language.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mappers.care_due import load_rules
from mappers.notices import KINDS, compose, short_text
from smart_auth.accounts.enrolment import GENERIC_MISMATCH, LETTER_CODE_WRONG
from smart_auth.accounts.models import ProxyLink
from smart_auth.accounts.passwords import password_problems
from smart_auth.accounts.proxy_links import RELATIONSHIPS
from smart_auth.accounts.security import DONE, NEW_CODE_WRONG, WRONG_CURRENT
from smart_auth.accounts.signin import BAD_CODE, LOCKED
from smart_auth.consent import describe_scope
from smart_auth.pages import TEMPLATES_DIR, make_auth_templates
from tests.plain_language import (
    MAX_GRADE,
    ROOT,
    DataMask,
    Grade,
    grade_page,
    grade_text,
    grade_units,
    main_of,
    reading_units,
    record_strings,
    report,
    sentences_in,
)
from tests.plain_language import too_hard as above_bar

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CODES = [f"{n:04d}-{n * 7 % 10000:04d}" for n in range(10)]
# The modules whose strings people read (portal, accounts, notices, the patient-facing mappers). The staff
# area's wording (staff/, mappers/staff.py, queues.py, service_metrics.py, decisions.py) is for clinicians,
# the local SMTP catch-all's (`./stack mail`) for developers.
PATIENT_MODULES = ("portal/*.py", "portal/pages/*.py", "smart_auth/accounts/*.py", "smart_auth/authorize.py",
                   "smart_auth/consent.py", "notifications/*.py", "mappers/*.py")
NOT_FOR_PATIENTS = {"mappers/staff.py", "mappers/queues.py", "mappers/service_metrics.py", "mappers/decisions.py",
                    "notifications/catchall.py"}
SCOPES = ("openid fhirUser offline_access launch/patient patient/Patient.rs patient/Observation.rs?category=laboratory "
          "patient/Observation.rs?category=vital-signs patient/MedicationRequest.crs patient/Appointment.cruds "
          "patient/Communication.crus patient/AllergyIntolerance.rs patient/Immunization.rs patient/Condition.rs "
          "patient/DocumentReference.rs patient/Coverage.rs patient/QuestionnaireResponse.crus "
          "patient/PaymentReconciliation.c patient/ServiceRequest.crs patient/*.rs").split()


def account_pages() -> list[tuple[str, dict[str, Any]]]:
    """Each account page in each state with words of its own, with what its route hands it."""
    weak = {"password": [p.message for p in password_problems("pat-demo1", "pat-demo")],
            "password_confirm": ["The two passwords do not match."]}
    link = ProxyLink("l1", "pt-0001", "rp-1", "active", "Sam Lee", "SPS")
    invited = ProxyLink("l2", "pt-0001", "rp-2", "invited", "Ana Lopez", "CHILD")
    return [
        ("enroll_code.html", {}), ("enroll_code.html", {"error": LETTER_CODE_WRONG}),
        ("enroll_identity.html", {"kind": "patient"}), ("enroll_identity.html", {"kind": "patient",
                                                                                  "error": GENERIC_MISMATCH}),
        ("enroll_identity.html", {"kind": "caregiver"}),
        ("enroll_account.html", {"errors": {}}), ("enroll_account.html", {"errors": weak, "username": "pat-demo"}),
        ("enroll_mfa.html", {"errors": {}, "email": "ana@example.test"}),
        ("enroll_totp.html", {"secret": SECRET, "uri": "otpauth://totp/x", "qr": ""}),
        ("enroll_totp.html", {"secret": SECRET, "uri": "otpauth://totp/x", "qr": "", "error": BAD_CODE}),
        ("enroll_otp.html", {"channel": "email"}), ("enroll_otp.html", {"channel": "sms", "error": BAD_CODE}),
        ("recovery_codes.html", {"codes": CODES, "enrolled": True, "username": "pat-demo"}),
        ("enroll_accept.html", {"username": "pat-demo"}), ("enroll_accept.html", {"username": "nurse", "staff": True}),
        ("login.html", {}), ("login.html", {"notice": "signed-out"}), ("login.html", {"notice": "password-changed"}),
        ("login.html", {"error": LOCKED}),
        ("login_mfa.html", {"method": "totp"}), ("login_mfa.html", {"method": "email", "error": BAD_CODE}),
        ("logout.html", {}),
        ("reset_start.html", {}), ("reset_verify.html", {"error": BAD_CODE}), ("reset_password.html", {"errors": weak}),
        ("security.html", {"username": "pat-demo", "password_changed": "1 December 2025", "method": "totp",
                           "codes_left": 1, "done": DONE["password"]}),
        ("security.html", {"username": "pat-demo", "method": "email", "codes_left": 0}),
        ("security_password.html", {"errors": {"current_password": [WRONG_CURRENT], **weak}, "method": "email",
                                    "sent": True, "back": "/auth/account/password"}),
        ("security_authenticator.html", {"errors": {"new_code": [NEW_CODE_WRONG]}, "method": "totp",
                                         "secret": SECRET, "uri": "otpauth://totp/x", "qr": ""}),
        ("security_recovery.html", {"errors": {}, "codes_left": 3, "method": "sms"}),
        ("security_recovery_codes.html", {"codes": CODES}),
        ("proxies.html", {"links": [link, invited], "errors": {}, "values": {}, "relationships": RELATIONSHIPS,
                          "notice": "invited"}),
        ("proxies.html", {"links": [], "errors": {"name": ["Enter the caregiver's name."]}, "values": {},
                          "relationships": RELATIONSHIPS, "notice": "withdrawn"}),
        ("message.html", {"title": "Access added", "text": "You can now see this person's record from your account."}),
    ]


def oauth_pages() -> list[tuple[str, dict[str, Any]]]:
    return [("consent.html", {"app_name": "Health Diary", "acting_for": True,
                              "items": [{"scope": s, "text": describe_scope(s)} for s in SCOPES]}),
            ("picker.html", {"app_name": "Health Diary",
                             "patients": [{"patient_id": "pt-1", "name": "Ana Lopez", "related_person_id": None},
                                          {"patient_id": "pt-2", "name": "Sam Lee", "related_person_id": "rp-1"}]}),
            ("error.html", {"title": "Unknown app",
                            "text": "Please go back to the app and start again."})]


def test_account_and_app_consent_pages_read_at_grade_7_or_below() -> None:
    env = make_auth_templates()
    grades: list[Grade] = []
    for folder, pages in (("accounts", account_pages()), ("oauth", oauth_pages())):
        for template, context in pages:
            html = env.get_template(f"{folder}/{template}").render(csrf_field="", signed_in=True, **context)
            state = ", ".join(f"{k}" for k in sorted(context) if k not in ("codes", "secret", "uri", "qr"))
            grades.append(grade_page(f"{folder}/{template} ({state})", html))
    print("\n" + "\n".join(report(grades, "Hardest account pages to read")))
    for folder in ("accounts", "oauth"):
        templates = {p.name for p in (TEMPLATES_DIR / folder).glob("*.html")
                     if not p.name.startswith("_") and p.name != "base.html"}
        measured = {g.name.split(" ")[0].split("/")[1] for g in grades if g.name.startswith(folder + "/")}
        assert not templates - measured, f"{folder} pages not measured here: {sorted(templates - measured)}"
    assert all(g.words >= 3 for g in grades)
    assert not above_bar(grades), f"above grade {MAX_GRADE}: {above_bar(grades)}"


def test_every_notice_email_and_text_message_reads_at_grade_7_or_below() -> None:
    grades = []
    for kind in KINDS:
        message = compose(kind, "/portal/messages", "k", public_url="https://portal.example.org")
        grades.append(grade_text(f"e-mail: {kind} ({message.subject})", f"{message.subject}\n{message.text}"))
        grades.append(grade_text(f"text message: {kind}", short_text(message)))
    print("\n" + "\n".join(report(grades, "Hardest notices to read")))
    assert all(g.words >= 8 for g in grades)
    assert not above_bar(grades), f"above grade {MAX_GRADE}: {above_bar(grades)}"


def test_the_vaccines_and_check_ups_due_table_reads_at_grade_7_or_below() -> None:
    """Home and the to-do list show each rule's title and why; the table as a whole is one text a person reads
    down (the lab explanations are held one entry at a time: tests/unit/mappers/test_explanations.py)."""
    rules = load_rules()
    grade = grade_units("care due table", [part for r in rules for part in (r.title, r.why)])
    print(f"\nVaccines and check-ups due: grade {grade.grade} over {len(rules)} rules")
    assert len(rules) >= 10 and grade.grade <= MAX_GRADE


def test_every_message_the_system_words_reads_at_grade_7_or_below() -> None:
    """The sentences in our Python source a person reads (refusals, field messages, e-mail and text bodies,
    the help texts), module by module; a form's messages are read one or two at a time, but a module's set
    is one voice and is held to the same bar as a page."""
    modules = sorted({p for pattern in PATIENT_MODULES for p in ROOT.glob(pattern)
                      if p.relative_to(ROOT).as_posix() not in NOT_FOR_PATIENTS and p.name != "__init__.py"})
    grades = [grade_units(p.relative_to(ROOT).as_posix(), found) for p in modules if (found := sentences_in(p))]
    print("\n" + "\n".join(report(grades, "Hardest wording in the source, by module")))
    assert len(grades) >= 40 and sum(g.sentences for g in grades) >= 400
    assert not above_bar(grades), f"above grade {MAX_GRADE}: {above_bar(grades)}"


def test_a_page_is_read_the_way_its_reader_meets_it() -> None:
    """Headings, paragraphs, list items, labels and buttons are sentences of their own; a link inside a sentence
    stays in it; drawings, hidden decorations and what people wrote are not our wording."""
    html = ('<html><head><title>Visits</title></head><body><nav>Menu</nav><main><h1>Your visits</h1>'
            '<p>Book a visit  <a href="/v">online</a>.<br>Or call us.</p><ul><li>Flu shot</li><li>Check-up</li></ul>'
            '<label for="r">Reason</label><input type="submit" value="Send"><a class="button" href="/">Cancel</a>'
            '<svg><text>120</text></svg><span aria-hidden="true">*</span><div class="report-text">FINDINGS: none'
            '</div><p class="message__text">Thanks!</p></main></body></html>')
    assert reading_units(main_of(html)) == ["Your visits", "Book a visit online .", "Or call us.", "Flu shot",
                                            "Check-up", "Reason", "Send", "Cancel"]
    assert reading_units(html)[0] == "Menu"  # an e-mail has no <main>: all of it is read
    assert grade_page("p", html).sentences == 8


def test_labels_cannot_hide_a_hard_paragraph_and_a_few_labels_are_not_graded() -> None:
    labels = ["Name", "Date", "Save", "Back", "Send", "Phone", "Home", "Help"] * 8
    hard = ("Comprehensive metabolic evaluation necessitates fasting preparation, particularly regarding "
            "carbohydrate consumption, medication administration and physiological variability considerations.")
    page = grade_units("labels and one paragraph", [*labels, hard])
    assert page.overall <= MAX_GRADE < page.prose == page.grade
    few = grade_units("sign-in", ["Sign in", "Username", "Password", "Continue", "Forgot your password?"])
    assert few.words < 30 and few.overall > MAX_GRADE and few.grade == few.prose == 0.0
    mask = DataMask({"Atorvastatin 20 MG Oral Tablet", "Ellison"})
    assert mask("Refill of atorvastatin 20 mg oral tablet for Margaret Ellison, RN, on 3 March 2026 at 9:30 am.") \
        == "Refill of X for Margaret X, RN, on X at X."


def test_a_records_words_are_data_unless_our_own_wording_uses_them() -> None:
    """A person's name is always data; any other text is data unless our source uses it too ("Care team",
    "Refill"); a longer text is data as a whole and line by line, its white space run together."""
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"given": ["Jo"], "family": "Care"}]}
    note = {"resourceType": "Observation", "id": "o1", "code": {"text": "Care team"}, "valueString": "ok",
            "performer": [{"display": "Dr. Lin Okafor"}], "subject": {"reference": "Patient/p1", "display": "Refill"},
            "note": [{"text": "Tired in the   afternoons\nand at night"}], "status": "Feels dizzy on the stairs"}
    assert record_strings([patient, note, patient]) == {
        "Jo", "Care", "Dr. Lin Okafor", "Tired in the afternoons and at night", "Tired in the afternoons",
        "and at night"}


def test_a_sentence_in_source_is_found_and_an_fstring_field_is_data(tmp_path: Path) -> None:
    module = tmp_path / "words.py"
    module.write_text('"""Docs are not read by patients."""\nimport logging\nlog = logging.getLogger()\n'
                      'A = "Your visit is booked."\nB = f"You have {n} new messages."\nC = "not a sentence"\n'
                      'log.warning("The EHR did not answer in time.")\nD = ("Please call the clinic "\n'
                      '     "if it keeps happening.")\n')
    assert sentences_in(module) == ["Your visit is booked.", "You have X new messages.",
                                    "Please call the clinic if it keeps happening."]
