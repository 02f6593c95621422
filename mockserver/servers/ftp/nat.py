"""Which address a PASV reply names (docs/spec.md 8.1): `server.masquerade_address` for a
client from outside the server's own networks (through Docker's published ports, a NAT), the
address the client connected to for a client on a network the server is attached to (another
container on the same Docker network), judged from the kernel's IPv4 routing table.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

ROUTES = Path("/proc/net/route")  # Linux; elsewhere no network counts as attached
_RTF_UP = 0x1
_RTF_GATEWAY = 0x2


def read_routes() -> str:
    """The routing table's text, or "" where there is none to read."""
    try:
        return ROUTES.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _address(hex_text: str) -> int:
    """A /proc/net/route address as an integer: the kernel prints the 4 bytes (network order)
    as one number in the machine's order, so on x86 0100A8C0 is 192.168.0.1."""
    return int.from_bytes(int(hex_text, 16).to_bytes(4, sys.byteorder), "big")


def on_link(peer: str, routes: str) -> bool:
    """True when `peer` (IPv4, or IPv4-mapped IPv6) lies on a network the machine is directly
    attached to (a route without a gateway) and is no route's gateway. Docker's port
    publishing connects from the network's gateway, so a client behind it is never on link;
    a container on the same network is."""
    try:
        address = ipaddress.ip_address(peer.removeprefix("::ffff:"))
    except ValueError:
        return False
    if address.version != 4:
        return False
    me = int(address)
    attached = False
    for line in routes.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest, gateway, mask = (_address(fields[i]) for i in (1, 2, 7))
            flags = int(fields[3], 16)
        except (ValueError, OverflowError):
            continue
        if gateway == me:
            return False
        if flags & _RTF_UP and not flags & _RTF_GATEWAY and mask and me & mask == dest:
            attached = True
    return attached
