"""Shared fixtures of the end-to-end tests: `serve` child processes that are always reaped, a
`serve` shared by a module, and a fresh in-process `MockServer` for each test.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mockserver.app import MockServer
from tests.support.serve import Serve


@pytest.fixture
def spawn_serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    """Factory of `serve` children for one test: `spawn_serve(data_dir=..., env=...)` returns
    an unstarted `Serve`. Whatever the test did, every child is killed at teardown."""
    made: list[Serve] = []

    def make(data_dir: Path | None = None, *, name: str = "serve", **kwargs: Any) -> Serve:
        workdir = tmp_path / f"{name}-{len(made)}"
        serve = Serve(workdir, data_dir or tmp_path / "data", **kwargs)
        made.append(serve)
        return serve

    yield make
    for serve in made:
        serve.kill()


@pytest.fixture
def serve(spawn_serve: Callable[..., Serve]) -> Iterator[Serve]:
    """A running `serve` on free ports over a fresh data dir; stopped with SIGTERM at
    teardown, which must exit 0 (contract 2: "SIGINT/SIGTERM: ... exits 0")."""
    child = spawn_serve().start()
    yield child
    if child.proc is not None and child.proc.poll() is None:
        assert child.stop(signal.SIGTERM) == 0, child.stderr()


@pytest.fixture(scope="module")
def module_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One running `serve` shared by a module's tests that only read it or use their own
    campaign names; stopped with SIGTERM at teardown, which must exit 0."""
    base = tmp_path_factory.mktemp("serve")
    child = Serve(base / "run", base / "data")
    try:
        child.start()
        yield child
        if child.proc is not None and child.proc.poll() is None:
            assert child.stop(signal.SIGTERM) == 0, child.stderr()
    finally:
        child.kill()


@pytest.fixture
def srv(request: pytest.FixtureRequest) -> Iterator[MockServer]:
    """A fresh in-process platform (free ports, temporary data dir, demo/demo with 15000
    credits): it starts in a fraction of a second, so every test gets its own. A test
    parametrised with a fixture case whose `check` options give `--qualities` gets a platform
    with those `processing.qualities`."""
    settings: dict[str, object] = {}
    case = getattr(request, "param", None) or _case_of(request)
    args = list(case.get("args", [])) if isinstance(case, dict) else []
    if "--qualities" in args:
        settings["qualities"] = args[args.index("--qualities") + 1].split(",")
    with MockServer(**settings) as server:
        yield server


def _case_of(request: pytest.FixtureRequest) -> object:
    callspec = getattr(request.node, "callspec", None)
    return callspec.params.get("case") if callspec is not None else None
