"""Words kept in data files (TOML tables such as `mappers/data/lab_explanations.toml`), for the catalogue.

`extract_toml` is a Babel extraction method (named in `babel.cfg`): it yields the string values of the keys
the mapping names (`keys = name measures ...`), whitespace collapsed as the loaders do, so a message id is
exactly the text the mapper later translates with `gettext_in`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from typing import IO, Any


def _strings(table: Any, keys: frozenset[str]) -> Iterator[str]:
    if isinstance(table, Mapping):
        for key, value in table.items():
            if isinstance(value, str) and key in keys and value.strip():
                yield " ".join(value.split())
            else:
                yield from _strings(value, keys)
    elif isinstance(table, list):
        for item in table:
            yield from _strings(item, keys)


def extract_toml(fileobj: IO[bytes], keywords: Any, comment_tags: Any,
                 options: Mapping[str, str]) -> Iterator[tuple[int, None, str, list[str]]]:
    keys = frozenset(str(options.get("keys", "")).split())
    table = tomllib.loads(fileobj.read().decode("utf-8"))
    for text in _strings(table, keys):
        yield 0, None, text, []
