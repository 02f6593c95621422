"""Contract 11's rules as pure functions (`servers.http.safety`): which `Host` names this
machine, which `Origin` is the server's own, which `server.host` turns the Host check on."""

from __future__ import annotations

import pytest

from mockserver.servers.http.safety import is_loopback_host, loopback_name, same_origin


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:8021", True),
        ("LOCALHOST:1", True),
        ("127.0.0.1:8021", True),
        ("127.255.0.9", True),
        ("[::1]:8021", True),
        ("[::1]", True),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io:8021", False),
        ("evil.example:8021", False),
        ("10.0.0.1:8021", False),
        ("[::2]:8021", False),
        ("::1", False),  # an IPv6 address in Host is bracketed
        ("127.1", False),  # not how a browser writes it; refused rather than guessed
        ("localhost:80:80", False),
        ("localhost:http", False),
        ("[::1", False),
        ("", False),
    ],
)
def test_loopback_host_names(host: str, loopback: bool) -> None:
    assert loopback_name(host) is loopback


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8021", "127.0.0.1:8021", True),
        ("http://LOCALHOST:8021", "localhost:8021", True),
        ("http://localhost", "localhost:80", True),
        ("https://mock.example", "mock.example", True),  # a TLS proxy in front
        ("http://[::1]:8021", "[::1]:8021", True),
        ("http://127.0.0.1:8022", "127.0.0.1:8021", False),
        ("http://localhost:8021", "127.0.0.1:8021", False),
        ("http://evil.example", "127.0.0.1:8021", False),
        ("null", "127.0.0.1:8021", False),
        ("file://", "127.0.0.1:8021", False),
        ("http://127.0.0.1:8021/page", "127.0.0.1:8021", False),
        ("http://user@127.0.0.1:8021", "127.0.0.1:8021", False),
        ("http://127.0.0.1:8021", None, False),
        ("http://[::1", "[::1]:8021", False),
    ],
)
def test_same_origin(origin: str, host: str | None, same: bool) -> None:
    assert same_origin(origin, host) is same


@pytest.mark.parametrize(
    ("host", "on"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.5", False),
    ],
)
def test_the_host_check_is_on_for_loopback_binds_only(host: str, on: bool) -> None:
    assert is_loopback_host(host) is on
