"""Words kept in data files (TOML tables of rules), found for the catalogue like words in code.

`babel.cfg` names this extractor for a data file with the keys whose values patients read (`keys = title
why`); each such string value becomes a message, and the mapper that shows it translates it with
`gettext_in`. Only one-line `key = "value"` entries are read: the tables write their words that way.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

_ENTRY = re.compile(rb'^\s*([A-Za-z_][\w-]*)\s*=\s*(".*")\s*$')


def extract_toml(fileobj: IO[bytes], keywords: Collection[str], comment_tags: Collection[str],
                 options: Mapping[str, Any]) -> Iterator[tuple[int, None, str, list[str]]]:
    """Babel's extractor interface: (line, no function, the message, no comments) for each wanted value."""
    wanted = set(str(options.get("keys") or "").replace(",", " ").split())
    for lineno, line in enumerate(fileobj, start=1):
        found = _ENTRY.match(line)
        if found and found.group(1).decode() in wanted:
            value = tomllib.loads(f"v = {found.group(2).decode('utf-8')}")["v"]
            if isinstance(value, str) and value.strip():
                yield lineno, None, value.strip(), []
