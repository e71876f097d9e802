"""The browser test harness: Debian's Chromium driven by Playwright against the whole running app.

Import what a test needs from here; the fixtures (browser, page, app, ...) are in tests/e2e/conftest.py.
See tests/e2e/README.md for the list of helpers.
"""

from .accounts import (
    Account,
    Authenticator,
    DemoPatient,
    PatientPool,
    demo_patients,
    enrol,
    enrol_patient,
    follow_link,
    new_password,
    new_username,
    page_messages,
    path_of,
    patient_identity,
    second_step_code,
    sign_in,
    sign_out,
    spanish_speakers,
    submit,
)
from .app import Invitation, PortalApp
from .axe import Violation, assert_no_serious_axe_violations, axe
from .browser import DESKTOP, PHONE, context_options, launch_chromium
from .checks import PageReport, assert_security_headers, check_page
from .headers import ResponseWatch, csp_problems, security_header_problems
from .keyboard import (
    TabWalk,
    assert_keyboard_usable,
    contrast,
    fill_by_keyboard,
    focus_indicator_visible,
    press_by_keyboard,
    tab_walk,
)
from .reading import READING, measure_reading, reading_summary
from .screens import assert_layout_ok, capture, layout_problems, output_dir, screenshots

__all__ = [
    "DESKTOP",
    "PHONE",
    "READING",
    "Account",
    "Authenticator",
    "DemoPatient",
    "Invitation",
    "PageReport",
    "PatientPool",
    "PortalApp",
    "ResponseWatch",
    "TabWalk",
    "Violation",
    "assert_keyboard_usable",
    "assert_layout_ok",
    "assert_no_serious_axe_violations",
    "assert_security_headers",
    "axe",
    "capture",
    "check_page",
    "context_options",
    "contrast",
    "csp_problems",
    "demo_patients",
    "enrol",
    "enrol_patient",
    "fill_by_keyboard",
    "focus_indicator_visible",
    "follow_link",
    "launch_chromium",
    "layout_problems",
    "measure_reading",
    "new_password",
    "new_username",
    "output_dir",
    "page_messages",
    "path_of",
    "patient_identity",
    "press_by_keyboard",
    "reading_summary",
    "screenshots",
    "second_step_code",
    "security_header_problems",
    "sign_in",
    "sign_out",
    "spanish_speakers",
    "submit",
    "tab_walk",
]
