"""Small commands of the command line (contract 2): `--version` and `healthcheck`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

import pytest

from mockserver.cli import main


def test_version_prints_the_program_and_the_distribution_version() -> None:
    """Contract 2: "`allmysms-mock --version` prints `allmysms-mock <version>`", the version
    being the distribution's own (pyproject.toml, read back from the installed metadata)."""
    done = subprocess.run(
        [sys.executable, "-m", "mockserver", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"allmysms-mock {version('allmysms-mockserver')}\n"


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_port() -> Iterator[int]:
    """A stand-in `/health` on a free loopback port (the command only reads `status`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("ALLMYSMS_MOCK_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_healthcheck_follows_the_http_port_of_the_environment(
    health_port: int, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Contract 3: settings come from `ALLMYSMS_MOCK_<SECTION>_<KEY>`; `healthcheck` reads the
    same ones as `serve`, so a moved HTTP port (and a 0.0.0.0 bind, as in Docker) is followed."""
    clean_env.setenv("ALLMYSMS_MOCK_SERVER_HTTP_PORT", str(health_port))
    clean_env.setenv("ALLMYSMS_MOCK_SERVER_HOST", "0.0.0.0")
    assert main(["healthcheck", "--timeout", "5"]) == 0
    assert capsys.readouterr().out == "ok\n"


def test_healthcheck_follows_the_http_port_of_the_config_file(
    health_port: int,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Contract 3: "A TOML file (`--config`)"; the same file as `serve` (`--config` or
    `$ALLMYSMS_MOCK_CONFIG`) gives `healthcheck` its address."""
    config = tmp_path / "mock.toml"
    config.write_text(f"[server]\nhttp_port = {health_port}\n", encoding="utf-8")
    assert main(["healthcheck", "--config", str(config), "--timeout", "5"]) == 0
    clean_env.setenv("ALLMYSMS_MOCK_CONFIG", str(config))
    assert main(["healthcheck", "--timeout", "5"]) == 0
    assert capsys.readouterr().out == "ok\nok\n"


def test_healthcheck_reports_a_bad_configuration_in_one_line(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Contract 3: "A bad file or value stops start-up with one clear line naming the key"."""
    clean_env.setenv("ALLMYSMS_MOCK_SERVER_HTTP_PORT", "eighty")
    assert main(["healthcheck"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "ALLMYSMS_MOCK_SERVER_HTTP_PORT" in err


def _without_faker(*args: str) -> subprocess.CompletedProcess[str]:
    """`allmysms-mock ARGS` in a fresh interpreter where `import faker` fails as when Faker is
    not installed (`sys.modules["faker"] = None`)."""
    code = (
        "import sys; sys.modules['faker'] = None; from mockserver.cli import main;"
        f" sys.exit(main({list(args)!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_fixtures_without_faker_says_how_to_install_it(tmp_path: Path) -> None:
    """Contract 2: fixtures are "made with Faker", which is optional (the `fixtures` extra):
    without it the command prints one line naming the install command, exit 2, writes
    nothing; every other command still works."""
    out = tmp_path / "out"
    done = _without_faker("fixtures", "--out", str(out))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "allmysms-mock fixtures: Faker is not installed;"
        " install it with: pip install 'allmysms-mockserver[fixtures]'\n"
    )
    assert not out.exists()
    assert _without_faker("--help").returncode == 0
    assert _without_faker("fixtures", "--help").returncode == 0


def test_faker_comes_with_the_fixtures_extra_dev_and_the_image() -> None:
    """Faker is not a dependency of a plain install (its pytest plugin would cost every pytest
    run of a user's project a Faker instance, docs/design.md), but `[fixtures]`, `[dev]` and
    the Docker image install it, so `fixtures` works there."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [dep.split(">")[0].split("=")[0].lower() for dep in project["dependencies"]]
    assert "faker" not in names
    extras = project["optional-dependencies"]
    for extra in ("fixtures", "dev"):
        assert any(dep.lower().startswith("faker>=") for dep in extras[extra]), extra
    assert 'pip install ".[fixtures]"' in (root / "Dockerfile").read_text(encoding="utf-8")
