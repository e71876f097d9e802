"""Words kept in a data table reach the catalogue: the TOML extractor babel.cfg names finds the values of the
keys it is told to, with their lines, and nothing else."""

from __future__ import annotations

from io import BytesIO

from locales.extract import extract_toml

TABLE = b'''# title = "not a value: a comment"
[[rules]]
id = "flu"
title = "Flu shot"
why = "A flu shot every fall helps. \\"Quoted\\" words stay whole."
source_title = "CDC: Schedule"
codes = ["88", "135"]

[[rules]]
title   =   "Tetanus shot"
why = ""
'''


def test_the_values_of_the_named_keys_are_messages_with_their_lines() -> None:
    found = list(extract_toml(BytesIO(TABLE), [], [], {"keys": "title why"}))
    assert found == [(4, None, "Flu shot", []),
                     (5, None, 'A flu shot every fall helps. "Quoted" words stay whole.', []),
                     (10, None, "Tetanus shot", [])]  # an empty value is no message


def test_no_keys_named_no_messages() -> None:
    assert list(extract_toml(BytesIO(TABLE), [], [], {})) == []
