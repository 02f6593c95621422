"""The HTTP control API (contract 6)."""

from mockserver.servers.http.api import HttpApi

__all__ = ["HttpApi"]
