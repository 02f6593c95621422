"""The control room page (contract 10) in a real browser: Debian's chromium driven by Playwright
over an in-process `MockServer`. Files uploaded over FTP and SFTP while the page is open show
up live; a file dropped through the page is processed like an upload; reset; the README's
screenshot; a burst of 1,000 files measured by the page itself (`window.__controlRoomStats`).

Skipped when Playwright or chromium is missing, failed instead under
`ALLMYSMS_REQUIRE_CLIENTS=1` (CI).
"""

from __future__ import annotations

import ftplib
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from mockserver.app import MockServer
from mockserver.tree import Folder, folder_path
from tests.support.harness import running_mock_server
from tests.support.tools import require_tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

try:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        Page,
        Playwright,
        expect,
        sync_playwright,
    )
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "img" / "control-room.png"
ACCOUNTS = (
    {"login": "demo", "password": "demo", "credits": 15000, "email": "demo@example.com"},
    {"login": "acme", "password": "acme-pw", "credits": 600, "email": "it@acme.example"},
)
# The platform's clock is frozen a day before the campaigns, so the page shows countdowns.
CLOCK = "2030-07-15T09:30:00"
WAIT_MS = 15_000  # Playwright's waits, in milliseconds


def _playwright() -> Any:
    if sync_playwright is None:
        if os.environ.get("ALLMYSMS_REQUIRE_CLIENTS") == "1":
            pytest.fail("playwright is not installed but ALLMYSMS_REQUIRE_CLIENTS=1")
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    start = _playwright()
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        require_tool("chromium")
    pw: Playwright
    with start() as pw:
        # Root (CI) needs --no-sandbox; no browser is downloaded: Debian's chromium.
        chromium = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[MockServer]:
    overrides = {"processing.pickup_delay_seconds": 0, "processing.clock": CLOCK}
    with running_mock_server(tmp_path / "data", ACCOUNTS, overrides) as server:
        yield server


class Room:
    """One open control room page, with every console error and page error it produced."""

    def __init__(self, page: Page, srv: MockServer) -> None:
        self.page = page
        self.srv = srv
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text}")

    def open(self) -> Room:
        self.page.goto(self.srv.http_url + "/")
        self.page.wait_for_function(
            "() => window.__controlRoomStats?.ready && window.__controlRoomStats.connected",
            timeout=WAIT_MS,
        )
        return self

    def lane(self, login: str, folder: str) -> Any:
        return self.page.locator(f'section.account[data-login="{login}"] .lane[data-folder="{folder}"]')

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.page.evaluate("() => ({...window.__controlRoomStats})")
        return stats


@pytest.fixture
def room(browser: Browser, srv: MockServer) -> Iterator[Room]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, reduced_motion="reduce")
    try:
        yield Room(context.new_page(), srv)
    finally:
        context.close()


# -- uploads -------------------------------------------------------------------------------------

VALID = (
    '"0612345678";"Bonjour Camille,\nvotre commande 4821 est prête en magasin.\nSTOP au 36180";'
    '"MaBoutique"\n'
    '"+33 7 11 22 33 44";"Rappel : rendez-vous demain à 10h30. STOP au 36180";"MaBoutique"\n'
).encode()
INVALID_ROWS = b'"0123456789";"Bonjour"\n"12";"Salut"\n'


def ftp_upload(srv: MockServer, login: str, password: str, name: str, data: bytes) -> None:
    """Like a careful client: upload as .tmp, then rename to the final name."""
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        ftp.login(login, password)
        ftp.storbinary(f"STOR /SEND_SMS/{name}.tmp", io.BytesIO(data))
        ftp.rename(f"/SEND_SMS/{name}.tmp", f"/SEND_SMS/{name}")


def sftp_upload(srv: MockServer, login: str, password: str, name: str, data: bytes) -> None:
    transport = paramiko.Transport(("127.0.0.1", srv.sftp_port))
    try:
        transport.connect(username=login, password=password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        with sftp.open(f"/SEND_SMS/{name}.tmp", "wb") as f:
            f.write(data)
        sftp.posix_rename(f"/SEND_SMS/{name}.tmp", f"/SEND_SMS/{name}")
        sftp.close()
    finally:
        transport.close()


def test_uploads_over_ftp_and_sftp_show_live_without_a_reload(room: Room) -> None:
    page = room.open().page
    page.evaluate("() => { window.__sameDocument = true; }")

    ftp_upload(room.srv, "demo", "demo", "Promo_20300716120000_HQ.csv", VALID)
    sftp_upload(room.srv, "acme", "acme-pw", "Relance_20300716120000_HQ.csv", INVALID_ROWS)

    expect(room.lane("demo", "ARCHIVES")).to_have_attribute("data-count", "1", timeout=WAIT_MS)
    expect(room.lane("acme", "INVALIDS")).to_have_attribute("data-count", "1", timeout=WAIT_MS)
    for folder in ("SEND_SMS", "PROCESSING"):
        expect(room.lane("demo", folder)).to_have_attribute("data-count", "0", timeout=WAIT_MS)
        expect(room.lane("acme", folder)).to_have_attribute("data-count", "0", timeout=WAIT_MS)
    expect(room.lane("demo", "ARCHIVES")).to_contain_text("Promo_20300716120000_HQ.csv")
    expect(room.lane("demo", "ARCHIVES")).to_contain_text("2 SMS · 30 credits")
    # The SMS as a phone shows it: sender applied, the text with its line breaks, septets,
    # scheduled with a countdown by the platform's frozen clock (a day and 2.5 h ahead).
    phone = page.locator('.phone[aria-label="Phone +33 6 12 34 56 78"]')
    expect(phone.locator(".sender")).to_have_text("MaBoutique", timeout=WAIT_MS)
    bubble = phone.locator(".bubble")
    assert bubble.inner_text() == (
        "Bonjour Camille,\nvotre commande 4821 est prête en magasin.\nSTOP au 36180"
    )
    expect(phone.locator(".sms-meta")).to_contain_text("septets")
    expect(phone.locator(".sms-status")).to_have_text("scheduled · in 1 d 02:30:00")
    # Credits went down, live (account.changed), and the recap arrived.
    credits = page.locator('section.account[data-login="demo"] .credits-value')
    expect(credits).to_have_attribute("data-credits", "14970", timeout=WAIT_MS)
    expect(page.locator("#mail")).to_contain_text("Promo_20300716120000_HQ.csv", timeout=WAIT_MS)
    # The invalid file's reason and rejected rows with their line numbers, as `check` says.
    card = page.locator('section.account[data-login="acme"] .invalid-card')
    expect(card).to_contain_text("Relance_20300716120000_HQ.csv", timeout=WAIT_MS)
    expect(card.locator(".reason")).to_have_text("Empty_File")
    expect(card.locator("td.num")).to_have_text(["1", "2"])

    assert page.evaluate("() => window.__sameDocument") is True  # no reload happened
    assert room.errors == []


def test_a_file_dropped_through_the_page_is_processed_then_reset(room: Room) -> None:
    page = room.open().page
    page.select_option("#drop-login", "acme")
    page.set_input_files(
        "#drop-input",
        files=[{"name": "Web_20300716120000_HQ.csv", "mimeType": "text/csv", "buffer": VALID}],
    )
    expect(room.lane("acme", "ARCHIVES")).to_have_attribute("data-count", "1", timeout=WAIT_MS)
    done = room.srv.wait_for_file("Web_20300716120000_HQ.csv", timeout=10)
    assert done["login"] == "acme"
    assert done["status"] == "archived"
    expect(page.locator('section.account[data-login="acme"] .credits-value')).to_have_attribute(
        "data-credits", "570", timeout=WAIT_MS
    )

    page.click("#reset-button")
    expect(page.locator("#reset-dialog")).to_be_visible()
    page.keyboard.press("Escape")  # Escape closes the dialog and resets nothing
    expect(page.locator("#reset-dialog")).to_be_hidden()
    assert room.srv.files(), "Escape must not reset"
    page.click("#reset-button")
    page.click("#reset-confirm")
    expect(room.lane("acme", "ARCHIVES")).to_have_attribute("data-count", "0", timeout=WAIT_MS)
    expect(page.locator('section.account[data-login="acme"] .credits-value')).to_have_attribute(
        "data-credits", "600", timeout=WAIT_MS
    )
    expect(page.locator("#phones .empty")).to_be_visible()
    assert room.srv.files() == []
    assert room.errors == []
