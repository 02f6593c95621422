"""The address a PASV reply names (docs/spec.md 8.1, contract 3 `masquerade_address`): the
masquerade address for a client from outside the server's networks, the address the client
connected to for one on them (another container of the same Docker network)."""

from __future__ import annotations

import ftplib
import io
import ipaddress
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver.servers.ftp import nat
from tests.support.harness import FtpHarness

MASQUERADE = "203.0.113.9"  # TEST-NET-3: an address the host would publish the ports on


def _pasv_address(ftp: ftplib.FTP) -> str:
    reply = ftp.sendcmd("PASV")
    assert reply.startswith("227"), reply
    numbers = reply[reply.index("(") + 1 : reply.index(")")].split(",")
    return ".".join(numbers[:4])


def _hex(address: str) -> str:
    """An address as /proc/net/route prints it."""
    return f"{int.from_bytes(ipaddress.IPv4Address(address).packed, sys.byteorder):08X}"


@pytest.fixture
def masqueraded(tmp_path: Path) -> Iterator[FtpHarness]:
    harness = FtpHarness(tmp_path, **{"server.masquerade_address": MASQUERADE})
    try:
        yield harness
    finally:
        harness.close()


def test_a_client_from_outside_gets_the_masquerade_address(masqueraded: FtpHarness) -> None:
    """127.0.0.1 is on no attached network of the routing table: the masquerade address, as
    Docker's published ports need (they connect from the network's gateway, never on link)."""
    ftp = masqueraded.login()
    assert _pasv_address(ftp) == MASQUERADE


def test_a_client_on_the_servers_network_gets_the_address_it_connected_to(
    masqueraded: FtpHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the client's network attached (here: a table making 127.0.0.0/8 a direct route),
    the PASV reply names the address it reached, and a transfer that trusts it works."""
    table = (
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        f"lo\t{_hex('127.0.0.0')}\t00000000\t0001\t0\t0\t0\t{_hex('255.0.0.0')}\t0\t0\t0\n"
    )
    monkeypatch.setattr(nat, "read_routes", lambda: table)
    ftp = masqueraded.connect()
    ftp.trust_server_pasv_ipv4_address = True
    ftp.login("alice", "pw-alice")
    assert _pasv_address(ftp) == "127.0.0.1"
    ftp.storbinary("STOR /SEND_SMS/a.tmp", io.BytesIO(b"abc"))
    assert (masqueraded.folder("SEND_SMS") / "a.tmp").read_bytes() == b"abc"


def test_without_masquerade_the_table_is_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No masquerade address: every client gets the address it connected to, as before."""

    def unexpected() -> str:
        raise AssertionError("the routing table was read")

    monkeypatch.setattr(nat, "read_routes", unexpected)
    harness = FtpHarness(tmp_path)
    try:
        assert _pasv_address(harness.login()) == "127.0.0.1"
    finally:
        harness.close()
