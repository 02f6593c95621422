"""`AllMySMSContainer`: the mock's Docker image under testcontainers-python (the `testcontainers`
extra). FTP passive mode works from the host (the passive range is published 1:1 and PASV
replies name the host's address) and from other containers of a shared network (PASV replies
name the mock's address there, docs/spec.md 8.1); it waits for `/health` and hands out the
ports, the SFTP host key fingerprint and a `MockClient` over the HTTP API.

>>> with AllMySMSContainer() as mock:              # image: $ALLMYSMS_MOCK_IMAGE or :latest
...     ftp = ftplib.FTP()
...     ftp.connect(mock.host, mock.ftp_port)
...     ...
...     mock.client.wait_for_file("Promo_20301231120000_HQ.csv", timeout=30)
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import re
import socket
import time
from collections.abc import Mapping
from typing import Any, Self

from docker.errors import APIError
from testcontainers.core.container import DockerContainer

from mockserver.remote import ApiError, MockClient

IMAGE_ENV = "ALLMYSMS_MOCK_IMAGE"
DEFAULT_IMAGE = "allmysms-mockserver:latest"
FTP_PORT, SFTP_PORT, HTTP_PORT = 2121, 61022, 8021  # inside the container (the image's own)
PASSIVE_COUNT = 10
# Host ports tried for the passive range: below Linux's ephemeral range (32768-60999), where
# the host's own client sockets would collide with them.
PASSIVE_SPAN = (30000, 32767)
START_TRIES = 5
_FINGERPRINT = re.compile(r"host key (SHA256:[A-Za-z0-9+/=]+)")
_PORT_TAKEN = ("port is already allocated", "address already in use", "ports are not available")


class AllMySMSContainer(DockerContainer):
    """The mock in a container (`serve`, as the image runs it), ready once `start()` returns.

    - `image`: default `$ALLMYSMS_MOCK_IMAGE`, else `allmysms-mockserver:latest` (build it
      from the repository's Dockerfile).
    - `passive_ports`: the FTP passive range `(low, high)`, published on the same host ports;
      default: `passive_count` free ports of the host, another block if Docker finds one taken.
    - `masquerade_address`: the IPv4 address PASV replies name to clients outside the
      container's networks; default: the address this process reaches the mock on (`host`:
      127.0.0.1 for a local engine, the network's gateway when this process runs in a
      container itself).
    - `api_token`: `server.api_token` (the `client` sends it).
    - Other settings: `with_setting("processing.delay_seconds", 1)`, `with_accounts(...)`, or
      any `ALLMYSMS_MOCK_*` variable with `with_env`.
    """

    def __init__(
        self,
        image: str | None = None,
        *,
        passive_ports: tuple[int, int] | None = None,
        passive_count: int = PASSIVE_COUNT,
        masquerade_address: str | None = None,
        api_token: str = "",
        startup_timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(image or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE, **kwargs)
        if passive_ports is not None and not 1024 <= passive_ports[0] <= passive_ports[1]:
            raise ValueError(f"passive_ports is (low, high), 1024 <= low <= high: {passive_ports}")
        if not 1 <= passive_count <= 1000:
            raise ValueError(f"passive_count is 1 to 1000, got {passive_count}")
        self._fixed_passive = passive_ports
        self._passive_count = passive_count
        self._masquerade = masquerade_address
        self._token = api_token
        self._startup_timeout = startup_timeout
        self._passive: tuple[int, int] | None = None
        self._fingerprint = ""
        self._client: MockClient | None = None
        self.with_exposed_ports(FTP_PORT, SFTP_PORT, HTTP_PORT)
        if api_token:
            self.with_env("ALLMYSMS_MOCK_SERVER_API_TOKEN", api_token)

    # -- settings ---------------------------------------------------------------------------

    def with_setting(self, key: str, value: object) -> Self:
        """A setting by its dotted key (`processing.delay_seconds`), as an environment
        variable of the container (contract 3: `ALLMYSMS_MOCK_<SECTION>_<KEY>`)."""
        section, dot, name = key.partition(".")
        if not dot or not section or not name:
            raise ValueError(f"a setting is section.key, got {key!r}")
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return self.with_env(f"ALLMYSMS_MOCK_{section}_{name}".upper(), text)

    def with_accounts(self, *accounts: Mapping[str, Any]) -> Self:
        """The platform's accounts (`{"login": ..., "password": ..., "credits": ...}`), in place
        of `demo`/`demo` (`ALLMYSMS_MOCK_ACCOUNTS_JSON`)."""
        return self.with_env("ALLMYSMS_MOCK_ACCOUNTS_JSON", json.dumps([dict(a) for a in accounts]))

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the container and return once `/health` answers `ok`. A passive block found
        taken by Docker is replaced (unless `passive_ports` fixed it); RuntimeError with the
        container's last log lines when it stops or is not ready in `startup_timeout`."""
        masquerade = self._masquerade
        if masquerade is None:
            masquerade = self._host_address()
        self.with_env("ALLMYSMS_MOCK_SERVER_MASQUERADE_ADDRESS", masquerade)
        tries = 1 if self._fixed_passive else START_TRIES
        for attempt in range(1, tries + 1):
            self._publish_passive(self._fixed_passive or _free_block(self._passive_count))
            try:
                super().start()
                break
            except APIError as exc:
                self._discard()
                if attempt == tries or not any(t in str(exc).lower() for t in _PORT_TAKEN):
                    raise
        try:
            self._wait_ready()
        except BaseException:
            self._discard()  # nothing left running, `with` or not
            raise
        return self

    def stop(self, force: bool = True, delete_volume: bool = True) -> None:
        self._client = None
        super().stop(force=force, delete_volume=delete_volume)

    def _host_address(self) -> str:
        """The IPv4 address `host` will give once started, known before the start: the
        Docker host's, or, where testcontainers reaches containers through their network's
        gateway (this process runs in a container itself), that gateway's."""
        docker = self.get_docker_client()
        if docker.get_connection_mode().name == "gateway_ip":
            name = self._network.name if self._network else docker.find_host_network()
            config = docker.client.networks.get(name or "bridge").attrs["IPAM"]["Config"] or []
            for entry in config:
                gateway = _gateway(entry)
                if gateway:
                    return gateway
        return _ipv4(docker.host())

    def _publish_passive(self, block: tuple[int, int]) -> None:
        if self._passive is not None:  # an earlier try's block
            ports: dict[Any, Any] = self.ports  # keyed by int before testcontainers 4.10
            for port in range(self._passive[0], self._passive[1] + 1):
                ports.pop(port, None)
                ports.pop(str(port), None)
        low, high = self._passive = block
        for port in range(low, high + 1):
            self.with_bind_ports(port, port)  # the same number inside and out: PASV names it
        self.with_env("ALLMYSMS_MOCK_SERVER_PASSIVE_PORTS", f"{low}-{high}")

    def _discard(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(APIError):
                container.remove(force=True, v=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        probe = MockClient(self.http_url, timeout=5.0)
        while True:
            try:
                if probe.health().get("status") == "ok":
                    found = _FINGERPRINT.search(self._logs())
                    if found:  # printed once every listener is up, right after /health
                        self._fingerprint = found.group(1)
                        self._client = MockClient(self.http_url, token=self._token)
                        return
            except (OSError, ApiError, ValueError):
                pass  # not listening yet, or 503 while starting
            container = self.get_wrapped_container()
            container.reload()
            if container.status in ("exited", "dead"):
                raise RuntimeError(f"the mock's container stopped:\n{self._logs()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the mock was not ready within {self._startup_timeout:g} s:\n"
                    f"{self._logs()[-2000:]}"
                )
            time.sleep(0.2)

    def _logs(self) -> str:
        out, err = self.get_logs()
        return (out + err).decode("utf-8", "replace")

    # -- where it listens ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address this process reaches the mock on (an IPv4 address when it can be had:
        `localhost` could mean ::1, where FTP's PASV cannot follow)."""
        return _ipv4(self.get_container_host_ip(), strict=False)

    @property
    def ftp_port(self) -> int:
        return int(self.get_exposed_port(FTP_PORT))

    @property
    def sftp_port(self) -> int:
        return int(self.get_exposed_port(SFTP_PORT))

    @property
    def http_port(self) -> int:
        return int(self.get_exposed_port(HTTP_PORT))

    @property
    def passive_ports(self) -> tuple[int, int]:
        """The FTP passive range, the same numbers inside the container and on the host."""
        if self._passive is None:
            raise RuntimeError("the container is not started")
        return self._passive

    @property
    def ftp_url(self) -> str:
        return f"ftp://{self.host}:{self.ftp_port}"

    @property
    def sftp_url(self) -> str:
        return f"sftp://{self.host}:{self.sftp_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def host_key_fingerprint(self) -> str:
        """The SFTP host key's `SHA256:…` fingerprint, as `serve` prints it: pin it in the
        SFTP client instead of accepting any key."""
        if not self._fingerprint:
            raise RuntimeError("the container is not started")
        return self._fingerprint

    @property
    def client(self) -> MockClient:
        """The platform over the HTTP API, with `MockServer`'s methods: `files`, `messages`,
        `wait_for_file`, `reset`, `faults`, `clock`, …"""
        if self._client is None:
            raise RuntimeError("the container is not started")
        return self._client


def _ipv4(host: str, *, strict: bool = True) -> str:
    """`host` as an IPv4 address (PASV replies carry only those)."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        if not strict:
            return host
        raise RuntimeError(
            f"the Docker host {host!r} has no IPv4 address here: pass masquerade_address="
        ) from None


def _gateway(ipam: Mapping[str, Any]) -> str:
    """The IPv4 gateway of one IPAM entry of a network; Docker leaves it out for its default
    `bridge`, whose gateway is then the subnet's first address (Docker's rule, unless the
    engine was told otherwise)."""
    gateway = str(ipam.get("Gateway") or "")
    subnet = str(ipam.get("Subnet") or "")
    if not gateway and subnet:
        try:
            network = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            return ""
        gateway = str(next(network.hosts(), ""))
    return gateway if gateway and ":" not in gateway else ""


def _free_block(count: int) -> tuple[int, int]:
    """`count` consecutive ports free on this machine right now, at a random place in
    PASSIVE_SPAN (parallel test runs rarely pick the same; Docker's refusal covers the rest
    and for a remote engine, whose ports cannot be checked from here)."""
    low, high = PASSIVE_SPAN
    for _ in range(50):
        first = random.randint(low, high - count + 1)  # a port, not a secret
        if all(_free(port) for port in range(first, first + count)):
            return first, first + count - 1
    first = random.randint(low, high - count + 1)
    return first, first + count - 1


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))  # Docker publishes on every address
        except OSError:
            return False
    return True
