"""What is not translated yet: the patient-facing files whose words are still English only.

A template named here renders its own words (and its dates and numbers) in English inside a translated
layout, marked `lang="en"` and with a line saying the page is not in the reader's language yet. A file
named here may also have marked messages that are not translated yet without failing the catalogue test
(tests/unit/web/test_translations.py); every other file must be complete in every language.

Take a file off this list in the change that translates it; the list should only ever get shorter.
"""

from __future__ import annotations

# Template names as pages load them (`portal/...` and `accounts/...` and `oauth/...` and the shared ones).
PORTAL_TEMPLATES: frozenset[str] = frozenset()  # portal/: all translated
ACCOUNTS_TEMPLATES: frozenset[str] = frozenset()  # accounts/ and oauth/: all translated
SHARED_TEMPLATES: frozenset[str] = frozenset()  # _forms.html: translated

NOT_YET_TRANSLATED: frozenset[str] = PORTAL_TEMPLATES | ACCOUNTS_TEMPLATES | SHARED_TEMPLATES

# Python modules (paths from the repository root) whose words reach patients and are not marked yet.
NOT_YET_TRANSLATED_MODULES: frozenset[str] = frozenset({
    # notebook_rules and payments are the gateway's write rules: it answers in English (it does not know who
    # reads it); payments' refusals are marked and said in the reader's language by the billing page, its notes
    # on the record stay English, and notebook_rules speaks to API clients (the portal's own form checks first).
    *(f"mappers/{name}.py" for name in ("decisions", "notebook_rules", "payments")),
})
