"""Words kept in a data table reach the catalogue: the TOML extractor babel.cfg names finds the values of the
keys it is told to, whitespace collapsed as the loaders do, and nothing else."""

from __future__ import annotations

from io import BytesIO

from locales.data_files import extract_toml

TABLE = b'''# title = "not a value: a comment"
[[rules]]
id = "flu"
title = "Flu shot"
why = """A flu shot every fall helps.
  \\"Quoted\\" words stay whole."""
source_title = "CDC: Schedule"
codes = ["88", "135"]

[[rules]]
title   =   "Tetanus shot"
why = ""
'''


def test_the_values_of_the_named_keys_are_messages() -> None:
    found = [message for _line, _function, message, _comments in
             extract_toml(BytesIO(TABLE), [], [], {"keys": "title why"})]
    assert found == ["Flu shot", 'A flu shot every fall helps. "Quoted" words stay whole.',
                     "Tetanus shot"]  # an empty value is no message; other keys and comments are not read


def test_no_keys_named_no_messages() -> None:
    assert list(extract_toml(BytesIO(TABLE), [], [], {})) == []
