"""Tests that run the Docker image (issue 17): they need an engine. Without one they skip, with
the reason; in CI, where `.ci/run` started an engine and built the image, they must run
(`ALLMYSMS_REQUIRE_DOCKER=1` turns a missing engine into a failure, never a quiet skip).

The image is `$ALLMYSMS_MOCK_IMAGE` (`.ci/run` passes the one `scripts/docker-smoke.sh` built),
else `allmysms-mockserver:test`, built here from the repository's Dockerfile once.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRE = "ALLMYSMS_REQUIRE_DOCKER"
TEST_IMAGE = "allmysms-mockserver:test"
LOCAL_BASE = "allmysms-base:bookworm"  # scripts/make-base-image.sh


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason}, but {REQUIRE}=1 (.ci/run started an engine)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """docker-py's client of the engine testcontainers will use; skip (or fail in CI) without
    an engine or without the `testcontainers` extra."""
    try:
        import docker
        import testcontainers.core.container  # noqa: F401 (the extra is installed)
    except ImportError as exc:
        _unavailable(f"the testcontainers extra is not installed ({exc.name})")
    reason = ""
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # docker.errors.DockerException, a refused socket...
        reason = f"no Docker engine answers ({type(exc).__name__}: {exc})"
    if reason:
        with warnings.catch_warnings():  # docker-py leaves the failed socket to the collector
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        _unavailable(reason)
    _without_ryuk(client)
    try:
        yield client
    finally:
        client.close()


def _without_ryuk(client: Any) -> None:
    """testcontainers starts its reaper (Ryuk) from a registry image; where it cannot be had
    (no registry) it is turned off: every fixture here removes what it starts."""
    import docker.errors
    from testcontainers.core.config import testcontainers_config

    if testcontainers_config.ryuk_disabled:
        return
    try:
        client.images.get(testcontainers_config.ryuk_image)
    except docker.errors.ImageNotFound:
        testcontainers_config.ryuk_disabled = True


@pytest.fixture(scope="session")
def mock_image(docker_client: Any) -> str:
    """The mock's image: `$ALLMYSMS_MOCK_IMAGE`, else built once from this repository."""
    import docker.errors

    image = os.environ.get("ALLMYSMS_MOCK_IMAGE")
    if image:
        try:
            docker_client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"ALLMYSMS_MOCK_IMAGE={image} is not an image of this engine")
        return image
    try:
        docker_client.images.get(LOCAL_BASE)
        base = LOCAL_BASE
    except docker.errors.ImageNotFound:
        base = "python:3.12-slim"
    try:
        docker_client.images.build(
            path=str(ROOT), tag=TEST_IMAGE, buildargs={"BASE_IMAGE": base}, rm=True
        )
    except docker.errors.DockerException as exc:
        _unavailable(f"the image cannot be built from {base} ({exc})")
    return TEST_IMAGE
