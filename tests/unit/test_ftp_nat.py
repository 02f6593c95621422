"""Which clients are on the server's own network (docs/spec.md 8.1): read from the kernel's
IPv4 routing table as a container sees it, the gateway (where Docker's published ports connect
from) excluded."""

from __future__ import annotations

import ipaddress
import sys

import pytest

from mockserver.servers.ftp.nat import on_link, read_routes

HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"


def _hex(address: str) -> str:
    """An address as /proc/net/route prints it (network bytes read in the machine's order)."""
    return f"{int.from_bytes(ipaddress.IPv4Address(address).packed, sys.byteorder):08X}"


def routes(*rows: tuple[str, str, str, int, str]) -> str:
    lines = [HEADER]
    for iface, dest, gateway, flags, mask in rows:
        lines.append(
            f"{iface}\t{_hex(dest)}\t{_hex(gateway)}\t{flags:04X}\t0\t0\t0\t{_hex(mask)}\t0\t0\t0"
        )
    return "\n".join(lines) + "\n"


# A container on a Docker network 172.18.0.0/16 whose gateway (the host's side) is .1.
CONTAINER = routes(
    ("eth0", "0.0.0.0", "172.18.0.1", 0x3, "0.0.0.0"),
    ("eth0", "172.18.0.0", "0.0.0.0", 0x1, "255.255.0.0"),
)


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("172.18.0.7", True),  # another container on the same network
        ("::ffff:172.18.0.7", True),  # the same, on a dual-stack socket
        ("172.18.0.1", False),  # the gateway: Docker's published ports, the host
        ("127.0.0.1", False),  # loopback is in the local table, not this one
        ("10.9.8.7", False),  # through the default route
        ("172.19.0.7", False),  # another Docker network
        ("::1", False),  # IPv6: PASV announces IPv4 only
        ("not an address", False),
        ("", False),
    ],
)
def test_on_link_is_a_direct_route_and_not_a_gateway(peer: str, expected: bool) -> None:
    assert on_link(peer, CONTAINER) is expected


def test_routes_down_or_through_a_gateway_do_not_count() -> None:
    table = routes(
        ("eth1", "10.1.0.0", "0.0.0.0", 0x0, "255.255.0.0"),  # not up
        ("eth2", "10.2.0.0", "10.3.0.1", 0x3, "255.255.0.0"),  # via a router
    )
    assert not on_link("10.1.0.5", table)
    assert not on_link("10.2.0.5", table)


def test_unreadable_tables_attach_nothing() -> None:
    """No table (not Linux), an empty one, or rubbish: every client is outside, so the
    masquerade address is announced as before."""
    assert not on_link("172.18.0.7", "")
    assert not on_link("172.18.0.7", HEADER + "\neth0\tZZZZ\t0\t1\t0\t0\t0\tFFFF\n")
    assert not on_link("172.18.0.7", HEADER + "\neth0\t0\n")
    assert not on_link("172.18.0.7", HEADER + "\neth0\t1FFFFFFFF\t0\t1\t0\t0\t0\t1FFFFFFFF\n")


def test_this_machine_table_reads() -> None:
    """The real table parses (on Linux) without error; elsewhere it is empty."""
    text = read_routes()
    assert isinstance(text, str)
    on_link("127.0.0.1", text)
