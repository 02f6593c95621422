"""`mockserver.testcontainers.AllMySMSContainer` against a real engine (issue 17, point 2):
passive FTP from the host and from another container of a shared network, each taking the
address its PASV replies name (as most FTP clients do; Python's ftplib is told to), SFTP with
the host key pinned to the fingerprint the container hands out, and the HTTP client."""

from __future__ import annotations

import base64
import ftplib
import hashlib
import io
import socket
from collections.abc import Iterator
from typing import Any

import paramiko
import pytest

NAME = "Tc_20301231120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour STOP au 36180"\r\n"0712345678";"Salut STOP au 36180"\r\n'
TOKEN = "tc-token-1"


@pytest.fixture(scope="module")
def mock(mock_image: str) -> Iterator[Any]:
    from mockserver.testcontainers import AllMySMSContainer

    with AllMySMSContainer(mock_image, api_token=TOKEN) as container:
        yield container


@pytest.fixture
def clean(mock: Any) -> Any:
    mock.client.reset()
    return mock


def ftp_upload(host: str, port: int, name: str, data: bytes = ROWS) -> list[tuple[str, int]]:
    """Upload as .tmp then rename, in passive mode, connecting where each PASV reply says;
    the (address, port) of every PASV reply."""
    seen: list[tuple[str, int]] = []
    with ftplib.FTP() as ftp:
        ftp.trust_server_pasv_ipv4_address = True
        ftp.connect(host, port, timeout=20)
        ftp.login("demo", "demo")
        pasv = ftp.makepasv

        def recorded() -> tuple[str, int]:
            seen.append(pasv())
            return seen[-1]

        ftp.makepasv = recorded  # type: ignore[method-assign]
        ftp.storbinary("STOR /SEND_SMS/x.tmp", io.BytesIO(data))
        ftp.rename("/SEND_SMS/x.tmp", f"/SEND_SMS/{name}")
        assert ftp.nlst("/SEND_SMS") is not None  # a listing over one more data connection
    return seen


def test_passive_ftp_from_the_host_and_the_verdict_through_the_client(clean: Any) -> None:
    mock = clean
    low, high = mock.passive_ports
    assert high - low + 1 == 10
    mark = mock.client.last_file_id
    seen = ftp_upload(mock.host, mock.ftp_port, NAME)
    assert seen, "no passive data connection"
    for address, port in seen:
        assert address == mock.host  # the masquerade address: where this process reaches it
        assert low <= port <= high  # published 1:1: the same number on the host
    done = mock.client.wait_for_file(NAME, timeout=30, after_id=mark)
    assert (done["status"], done["sms_count"], done["folder"]) == ("archived", 2, "ARCHIVES")
    assert [m["phone"] for m in mock.client.messages(file=NAME)] == ["33612345678", "33712345678"]
    assert mock.client.account("demo")["credits"] == 15000 - 2 * 15


def test_sftp_with_the_host_key_pinned(clean: Any) -> None:
    mock = clean
    assert mock.host_key_fingerprint.startswith("SHA256:")
    with socket.create_connection((mock.host, mock.sftp_port), timeout=20) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=20)
            blob = transport.get_remote_server_key().asbytes()
            digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
            assert f"SHA256:{digest}" == mock.host_key_fingerprint
            transport.auth_password("demo", "demo")
            sftp = paramiko.SFTPClient.from_transport(transport)
            sftp.putfo(io.BytesIO(ROWS), "/SEND_SMS/y.tmp")
            sftp.posix_rename("/SEND_SMS/y.tmp", f"/SEND_SMS/{NAME}")
            sftp.close()
        finally:
            transport.close()
    assert mock.client.wait_for_file(NAME, timeout=30)["status"] == "archived"


def test_faults_clock_and_reset_through_the_client(clean: Any) -> None:
    """The client carries the token (`api_token` set the container's `server.api_token`)."""
    from mockserver.remote import ApiError, MockClient

    with pytest.raises(ApiError) as refused:
        MockClient(clean.http_url).files()
    assert refused.value.status == 401
    client = clean.client
    client.clock.set("2030-12-31T11:00:00")
    client.faults.add(on="judge", action="verdict", reason="Empty_File", name="Bad_*")
    client.drop("Bad_20301231120000_HQ.csv", ROWS)
    client.drop(NAME, ROWS)
    assert client.wait_for_file("Bad_20301231120000_HQ.csv", timeout=30)["reason"] == "Empty_File"
    assert client.wait_for_file(NAME, timeout=30)["status"] == "archived"
    assert {m["status"] for m in client.messages()} == {"scheduled"}
    client.clock.advance(3600)
    assert {m["status"] for m in client.messages()} == {"sent"}
    client.reset()
    assert client.files() == []
    assert client.faults.list() == []
    assert client.clock.frozen is False


def test_passive_ftp_from_another_container_of_a_shared_network(mock_image: str) -> None:
    """An application container reaches the mock by its network alias; its PASV replies name
    the mock's address on that network (docs/spec.md 8.1), while this process's still name
    the address it reaches the mock on, on the same container at the same time."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    from mockserver.testcontainers import AllMySMSContainer

    with (
        Network() as network,
        AllMySMSContainer(mock_image)
        .with_network(network)
        .with_network_aliases("allmysms") as mock,
    ):
        script = _in_container_upload("allmysms", 2121, "App_20301231120000_HQ.csv")
        app = (
            DockerContainer(mock_image)
            .with_network(network)
            .with_kwargs(entrypoint=["python3", "-c", script])
        )
        app.start()
        try:
            code = app.get_wrapped_container().wait(timeout=60)["StatusCode"]
            out, err = app.get_logs()
        finally:
            app.stop()
        assert code == 0, (out + err).decode()
        container = mock.get_wrapped_container()
        container.reload()
        inside = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        lines = out.decode().splitlines()
        addresses = {line.split()[1] for line in lines if line.startswith("PASV ")}
        assert addresses == {inside}
        assert inside != mock.host
        done = mock.client.wait_for_file("App_20301231120000_HQ.csv", timeout=30)
        assert done["status"] == "archived"
        # This process, meanwhile: its own address, through the published range.
        seen = ftp_upload(mock.host, mock.ftp_port, NAME)
        assert {address for address, _ in seen} == {mock.host}
        assert mock.client.wait_for_file(NAME, timeout=30)["status"] == "archived"


def _in_container_upload(host: str, port: int, name: str) -> str:
    """A Python script for the application container: ftplib taking the PASV address, as
    other FTP clients do; prints `PASV <address> <port>` for each data connection."""
    return f"""
import ftplib, io
ftp = ftplib.FTP()
ftp.trust_server_pasv_ipv4_address = True
ftp.connect({host!r}, {port}, timeout=20)
ftp.login("demo", "demo")
pasv = ftp.makepasv
def recorded():
    address, port = pasv()
    print("PASV", address, port, flush=True)
    return address, port
ftp.makepasv = recorded
ftp.storbinary("STOR /SEND_SMS/x.tmp", io.BytesIO({ROWS!r}))
ftp.rename("/SEND_SMS/x.tmp", "/SEND_SMS/{name}")
ftp.quit()
"""


def test_a_passive_block_docker_finds_taken_is_replaced(
    mock_image: str, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port of the chosen block held by another program: Docker refuses to publish it, the
    container of that try is removed and another block is published."""
    from mockserver import testcontainers

    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        taken = held.getsockname()[1]
        blocks = iter([(taken, taken)])
        real = testcontainers._free_block
        monkeypatch.setattr(testcontainers, "_free_block", lambda n: next(blocks, None) or real(n))
        with testcontainers.AllMySMSContainer(mock_image, passive_count=2) as mock:
            low, high = mock.passive_ports
            assert high == low + 1
            assert not low <= taken <= high
            assert ftp_upload(mock.host, mock.ftp_port, NAME)
            first_try = f"ALLMYSMS_MOCK_SERVER_PASSIVE_PORTS={taken}-{taken}"
            left = [
                c.id
                for c in docker_client.containers.list(all=True)
                if first_try in (c.attrs["Config"].get("Env") or [])
            ]
            assert left == [], "the refused try's container is still there"
