"""How a test process loads code, set before pytest imports any plugin or test (addopts: `-p tests.startup`).

Every pytest process (the xdist controller and each worker) imports hundreds of modules before it runs a
test. Two things made each worker's start seconds longer than it needs to be:

- Bytecode. Where PYTHONDONTWRITEBYTECODE is set (as it is where CI runs), no import keeps the bytecode it
  compiles: every process compiled our own modules again and pytest rewrote and compiled every test module
  again (about 1.8 s of each worker's collection). In a virtualenv, a test process now keeps its bytecode
  (pytest's rewritten test modules included) under the venv, in `pycache-tests/`, never beside the sources:
  the checkout stays as it is. Python checks each file against its source as usual. The first run after the
  venv is made compiles the installed packages there once more (the bytecode `./stack` compiles for them sits
  beside their sources, where a prefix does not look).
- Assert rewriting of libraries. pytest rewrites every module of a distribution that ships a pytest plugin,
  for detailed messages from the asserts in its fixtures: with hypothesis, schemathesis and anyio that is
  some 350 library modules whose asserts are internal checks (their test failures are exceptions of their
  own). For these three only the plugin module itself is rewritten (as `-p module` would); every other plugin
  (respx's "routes not called" assert among them) is rewritten as pytest decides.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.dont_write_bytecode and not sys.pycache_prefix and sys.prefix != sys.base_prefix:
    sys.pycache_prefix = str(Path(sys.prefix) / "pycache-tests")
    sys.dont_write_bytecode = False

# library package -> its pytest plugin module (the module its pytest11 entry point names)
LIBRARIES = {"hypothesis": "_hypothesis_pytestplugin", "schemathesis": "schemathesis.pytest.plugin",
             "anyio": "anyio.pytest_plugin"}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    # Called as this module is registered: after pytest marked the installed plugins' packages, before it
    # imports any of them.
    hook = getattr(pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    if hook is None or not isinstance(marked, set):
        return  # --assert=plain, or a pytest that keeps its marks elsewhere: left as pytest decides
    for package, plugin in LIBRARIES.items():
        if package in marked:
            marked.discard(package)
            hook.mark_rewrite(plugin)  # also forgets what it had decided about names so far
