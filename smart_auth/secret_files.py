"""Secrets generated on first run: written once, 0600, and never overwritten by a racing replica."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def read_or_create_secret(path: Path, make: Callable[[], bytes]) -> bytes:
    """The secret in ``path``; when absent, ``make()`` is written there first (O_EXCL, mode 0600).

    Two replicas starting at once both generate a secret, but only the first write lands; both then
    read that one, so they agree.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race; use its secret
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(make())
    return path.read_bytes()
