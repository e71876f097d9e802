"""What is not translated yet: the patient-facing files whose words are still English only.

A template named here renders its own words (and its dates and numbers) in English inside a translated
layout, marked `lang="en"` and with a line saying the page is not in the reader's language yet. A file
named here may also have marked messages that are not translated yet without failing the catalogue test
(tests/unit/web/test_translations.py); every other file must be complete in every language.

Take a file off this list in the change that translates it; the list should only ever get shorter.
"""

from __future__ import annotations

# Template names as pages load them (`portal/...` and `accounts/...` and `oauth/...` and the shared ones).
PORTAL_TEMPLATES = frozenset(f"portal/{name}.html" for name in (
    "_emergency", "_message_fields", "_question", "_record", "_results", "_visit_summary",
    "appointment", "appointment_book", "appointment_confirm", "appointments",
    "download", "form", "forms",
    "making_pdf", "medication_refill", "medication_renewal", "medications", "message_new",
    "message_thread", "messages",
    "record", "referral_new", "referrals", "results",
    "summary", "todo",
))
ACCOUNTS_TEMPLATES = frozenset(f"accounts/{name}.html" for name in (
    "_add_authenticator", "_confirm_it_is_you", "_send_code", "enroll_accept", "enroll_account", "enroll_code",
    "enroll_identity", "enroll_mfa", "enroll_otp", "enroll_totp", "message", "proxies", "recovery_codes",
    "reset_password", "reset_start", "reset_verify", "security", "security_authenticator", "security_password",
    "security_recovery", "security_recovery_codes",
)) | frozenset(f"oauth/{name}.html" for name in ("base", "consent", "error", "picker"))
SHARED_TEMPLATES = frozenset({"_forms.html"})

NOT_YET_TRANSLATED: frozenset[str] = PORTAL_TEMPLATES | ACCOUNTS_TEMPLATES | SHARED_TEMPLATES

# Python modules (paths from the repository root) whose words reach patients and are not marked yet.
NOT_YET_TRANSLATED_MODULES: frozenset[str] = frozenset({
    *(f"portal/{name}.py" for name in (
        "sections", "summary_pdf")),
    *(f"portal/pages/{name}.py" for name in (
        "appointments", "downloads", "forms",
        "medications", "messages", "record", "referrals", "results", "todo")),
    *(f"mappers/{name}.py" for name in (
        "allergies", "appointments", "attachments", "booking", "care_due",
        "conditions", "decisions", "documents", "explanations", "form_tasks",
        "immunizations", "medications", "messages", "notebook_rules", "notices", "payments",
        "procedures", "quantities", "questionnaires", "ranges", "referrals", "refills",
        "results", "summary", "todo", "visits")),
    "mappers/data/care_due.toml", "mappers/data/lab_explanations.toml",
    *(f"smart_auth/accounts/{name}.py" for name in (
        "context", "enrolment", "factors", "flow", "identity", "messaging", "mfa", "passwords", "proxies",
        "proxy_links", "reset", "router", "security")),
    "smart_auth/consent.py", "smart_auth/authorize.py",
    *(f"notifications/{name}.py" for name in ("notice", "reminders", "sms")),
})
