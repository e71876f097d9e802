"""Settings of the unit test processes."""

from __future__ import annotations

import atexit
import gc

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # A test process holds a large heap for its whole run (the collected test modules, the demo data set)
    # and makes a great many short-lived objects; with Python's default threshold (700) the full collections
    # that follow walk that heap dozens of times, about a sixth of the suite's CPU time. Young objects are
    # collected every 20,000 allocations instead; no test depends on when unreachable cycles are freed.
    gc.set_threshold(20_000)
    # At exit Python collects the whole heap again before the process may end (about 1.5 s after a full
    # run, which pytest-xdist waits for); every fixture is torn down by then, so what is left is frozen
    # out of the collector's way instead.
    atexit.register(gc.freeze)


def pytest_collection_finish(session: pytest.Session) -> None:
    # What collection left (every test module, what they import, the collected items: some 300,000 objects)
    # lives until the process ends: once its garbage is collected, it is frozen out of the collector's way,
    # so the full collections during the run and the two pytest makes at its end (to report exceptions from
    # finalizers) walk only what the tests made. Nothing a test makes is frozen; it is collected as before.
    gc.collect()
    gc.freeze()
