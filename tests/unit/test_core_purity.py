"""The rule engine stays pure: `mockserver/core` imports only an allow-list of the stdlib."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "mockserver" / "core"

# No os, pathlib, socket, time, random, threading, sqlite3...: docs/design.md, "Layers": core is
# "standard library only: no paths, sockets, clock or randomness".
ALLOWED = {
    "__future__",
    "collections",
    "csv",
    "dataclasses",
    "datetime",
    "enum",
    "fnmatch",  # core.faults: a rule's name glob, on text only
    "functools",
    "io",
    "itertools",
    "math",  # core.faults: isfinite on a rule's numbers
    "re",
    "types",  # MappingProxyType: core.pricing's read-only price table
    "typing",
    "unicodedata",
    "zoneinfo",
}


def imported_modules(source: str) -> list[str]:
    modules: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            modules.append("<dynamic __import__>")
    return modules


def allowed(module: str) -> bool:
    if module == "mockserver.core" or module.startswith(("mockserver.core.", ".")):
        return True
    return module.split(".")[0] in ALLOWED


CORE_FILES = sorted(CORE.glob("*.py"))


def test_the_core_package_has_modules() -> None:
    """The purity check below must look at real files."""
    assert {p.name for p in CORE_FILES} >= {"judge.py", "models.py", "reader.py"}


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_imports_only_the_allow_list(path: Path) -> None:
    """docs/design.md, "Layers": core is "standard library only: no paths, sockets, clock or
    randomness"."""
    bad = [m for m in imported_modules(path.read_text(encoding="utf-8")) if not allowed(m)]
    assert bad == []


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_does_not_touch_global_csv_state(path: Path) -> None:
    """`csv.field_size_limit(n)` mutates process-wide state; the engine never calls it, nor
    `open`, `print`, `input` or `eval`."""
    calls = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
    }
    assert not calls & {"field_size_limit", "open", "print", "input", "eval", "exec"}


def test_the_check_catches_a_forbidden_import() -> None:
    """The checker itself works: `import os` and `from time import time` are refused."""
    assert [m for m in imported_modules("import os\nfrom time import time") if not allowed(m)] == [
        "os",
        "time",
    ]
