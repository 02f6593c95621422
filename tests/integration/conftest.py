"""Fixtures shared by the integration tests (defined in `tests/support/`)."""

from tests.support.platform import platform, platform_factory

__all__ = ["platform", "platform_factory"]
