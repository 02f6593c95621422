"""docker-compose.yml's commented `app` service (issue 17, point 3) run for real: uncommented,
beside the mock's service, it uploads over passive FTP by the service name and sees its file
archived; the PASV reply it follows names the mock's address on the compose network, not the
masquerade address 127.0.0.1 the file sets for the host."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.containers.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"


def commented_service(text: str, name: str) -> str:
    """The commented-out service `name` of a compose file, uncommented (as a user would)."""
    lines = text.splitlines()
    start = lines.index(f"  # {name}:")
    block = []
    for line in lines[start:]:
        if not line.startswith("  #"):
            break
        block.append("  " + line[4:] if line.startswith("  # ") else "")
    return "\n".join(block)


def test_the_commented_example_is_one_service_of_the_file() -> None:
    app = yaml.safe_load(commented_service(COMPOSE.read_text(encoding="utf-8"), "app"))["app"]
    assert app["depends_on"]["allmysms"]["condition"] == "service_healthy"
    assert 'ftp.connect("allmysms", 2121' in app["command"][0]


def test_an_application_container_reaches_the_mock_over_passive_ftp(
    mock_image: str, tmp_path: Path
) -> None:
    compose = _compose_command()
    text = COMPOSE.read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    mock = document["services"]["allmysms"]
    app = yaml.safe_load(commented_service(text, "app"))["app"]
    # The image CI built (no second build); no host ports (the app uses the network), so the
    # run cannot collide with anything on this machine.
    mock.pop("build")
    mock.pop("ports")
    mock["image"] = app["image"] = mock_image
    mock["healthcheck"]["interval"] = "1s"
    document["services"]["app"] = app
    path = tmp_path / "compose.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    project = ["-f", str(path), "-p", f"allmysms-example-{uuid.uuid4().hex[:8]}"]
    try:
        done = subprocess.run(
            [*compose, *project, "up", "--exit-code-from", "app", "--no-color"],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        subprocess.run(
            [*compose, *project, "down", "-v", "--timeout", "10"],
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = re.search(
        r"archived; allmysms is ([\d.]+) 227 [^(]*\((\d+),(\d+),(\d+),(\d+),", done.stdout
    )
    assert found, done.stdout[-3000:]
    assert found.group(1) == ".".join(found.groups()[1:5]) != "127.0.0.1"


def _compose_command() -> list[str]:
    """`docker compose` (the plugin) or Compose v1's `docker-compose`."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    from tests.support.tools import require_tool

    return [require_tool("docker-compose")]
