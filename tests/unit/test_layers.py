"""The package's layers (docs/design.md, "Layers"): core <- state <- backend <- processing <-
servers <- app <- commands and the pytest plugin. Nothing imports upward; a lower layer that
must call up takes a callable or publishes an event. Also: no module over 450 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mockserver"
MAX_LINES = 450

# Rank of each top-level part of the package; a module may import only parts of its rank or
# lower. Modules not listed belong to the state layer.
RANKS: dict[str, int] = {
    "core": 0,
    "backend": 2,
    "views": 2,
    "processing": 3,
    "servers": 4,
    "app": 5,
    "commands": 6,
    "cli": 6,
    "pytest_plugin": 6,
    "__main__": 6,
    "__init__": 6,
    "client": 6,
    "remote": 6,
    "testcontainers": 6,
    "fixtures": 6,
}
STATE = 1
FORBIDDEN_FOR_STATE = ("processing", "servers", "app", "commands", "backend", "views")


def part_of(module: str) -> str:
    """`mockserver.servers.ftp.session` -> `servers`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def rank(module: str) -> int:
    return RANKS.get(part_of(module), STATE)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    return imports_in(path.read_text(encoding="utf-8"), package_of(path))


def package_of(path: Path) -> str:
    """The package a relative import in `path` starts from."""
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def upward(me: str, imported: set[str]) -> list[str]:
    """The imports of module `me` that reach a higher layer than its own."""
    return sorted(m for m in imported if rank(m) > rank(me) and part_of(m) != part_of(me))


def imports_in(source: str, package: str = "mockserver") -> set[str]:
    """Every `mockserver...` module the source imports, at any depth (function-level too);
    relative imports are resolved from `package`."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mockserver"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{parent}.{base}" if base else parent
            if base == "mockserver":
                found.update(f"mockserver.{a.name}" for a in node.names)
            elif base.startswith("mockserver."):
                found.add(base)
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    me = module_name(path)
    if me == "mockserver" or part_of(me) == "__init__":
        return  # the package's own __init__ re-exports the public API (top layer)
    bad = upward(me, imports_of(path))
    assert bad == [], f"{me} (layer {rank(me)}) imports a higher layer: {bad}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_state_modules_never_import_processing_servers_app_or_commands(path: Path) -> None:
    me = module_name(path)
    if rank(me) != STATE:
        return
    bad = sorted(m for m in imports_of(path) if part_of(m) in FORBIDDEN_FOR_STATE)
    assert bad == [], f"{me} is state and imports {bad}"


def test_the_layer_rule_can_fail() -> None:
    """The checker itself: an upward import is seen, including one inside a function."""
    source = (
        "import os\nfrom mockserver.core.models import Sms\n"
        "def f():\n    from mockserver.app import MockServer\n"
        "from mockserver import backend\n"
    )
    found = imports_in(source)
    assert found == {"mockserver.core.models", "mockserver.app", "mockserver.backend"}
    assert upward("mockserver.processing.pipeline", found) == ["mockserver.app"]
    assert upward("mockserver.store.ledger", found) == ["mockserver.app", "mockserver.backend"]
    assert upward("mockserver.commands.serve", found) == []
    relative = "from ..app import MockServer\nfrom . import views\n"
    assert imports_in(relative, "mockserver.servers") == {"mockserver.app", "mockserver.servers"}
    assert upward("mockserver.servers.http", imports_in(relative, "mockserver.servers")) == [
        "mockserver.app"
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_450_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines"
