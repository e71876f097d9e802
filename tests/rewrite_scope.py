"""Which installed modules pytest rewrites the asserts of (loaded first, by `-p` in pyproject's addopts).

pytest rewrites every module of a distribution that ships a pytest plugin, for detailed messages from the
asserts in its fixtures: with hypothesis, schemathesis and anyio that is some 350 library modules whose
asserts are internal checks (their test failures are exceptions of their own). A rewritten module cannot
use the bytecode compiled at install, and where PYTHONDONTWRITEBYTECODE is set nothing keeps the result, so
every test process rewrote and compiled them all again: about 1.5 s of each process's start. For these three
only the plugin module itself is rewritten now (as `-p module` would); the rest loads its compiled bytecode.
Every other plugin (respx's "routes not called" assert among them) is rewritten as pytest decides.
"""

from __future__ import annotations

import pytest

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
