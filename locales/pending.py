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
    "access_log", "account", "billing", "billing_pay", "billing_statement", "caregivers", "guide", "help",
    "help_topic", "notebook", "notebook_entry", "notebook_print", "profile", "profile_allergy", "profile_contact",
    "profile_insurance", "self_check", "self_check_result", "settings",
))
ACCOUNTS_TEMPLATES: frozenset[str] = frozenset()  # accounts/ and oauth/: all translated
SHARED_TEMPLATES: frozenset[str] = frozenset()  # _forms.html: translated

NOT_YET_TRANSLATED: frozenset[str] = PORTAL_TEMPLATES | ACCOUNTS_TEMPLATES | SHARED_TEMPLATES

# Python modules (paths from the repository root) whose words reach patients and are not marked yet.
NOT_YET_TRANSLATED_MODULES: frozenset[str] = frozenset({
    *(f"portal/{name}.py" for name in ("guide", "help_topics", "self_check", "statement_pdf", "devices")),
    *(f"portal/pages/{name}.py" for name in (
        "access_log", "billing", "caregivers", "guide", "help", "notebook", "profile", "settings")),
    *(f"mappers/{name}.py" for name in (
        "billing", "coverage", "decisions", "names", "notebook", "notebook_rules", "notices", "payments",
        "portal_access", "profile")),
})
