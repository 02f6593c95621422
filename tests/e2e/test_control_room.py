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
from mockserver.tree import Folder
from tests.support.harness import running_mock_server
from tests.support.tools import require_tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

try:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        FilePayload,
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
        return self.page.locator(
            f'section.account[data-login="{login}"] .lane[data-folder="{folder}"]'
        )

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


def csv_payload(name: str, data: bytes) -> FilePayload:
    """A file for a page's file picker."""
    return {"name": name, "mimeType": "text/csv", "buffer": data}


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
        files=[csv_payload("Web_20300716120000_HQ.csv", VALID)],
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


# -- the actions ---------------------------------------------------------------------------------


def test_check_top_up_faults_and_clock_from_the_page(room: Room) -> None:
    page = room.open().page
    # Check a file without sending it: verdict, rejected rows with their lines, the SMS.
    page.click("#check-button")
    page.set_input_files(
        "#check-input",
        files=[csv_payload("Essai_20300716120000_HQ.csv", VALID + b'"12";"Salut"\n')],
    )
    page.click("#check-form button[type=submit]")
    result = page.locator("#check-result")
    expect(result.locator(".verdict")).to_have_text("archived", timeout=WAIT_MS)
    expect(result).to_contain_text("TreatedByMSI_Essai_20300716120000_HQ.csv")
    expect(result.locator("td.num")).to_have_text(["5"])  # lines of the file, not rows
    expect(result.locator(".bubble")).to_have_count(2)
    page.keyboard.press("Escape")
    expect(page.locator("#check-dialog")).to_be_hidden()
    assert room.srv.files() == [], "a check records nothing"

    # Top up credits.
    page.click('section.account[data-login="acme"] .credits button')
    page.fill("#credits-value", "1234")
    page.click("#credits-form button[type=submit]")
    expect(page.locator('section.account[data-login="acme"] .credits-value')).to_have_text("1,234")
    assert (room.srv.account("acme") or {}).get("credits") == 1234

    # Add a fault, see it fire and its count, remove it.
    page.click("#faults-button")
    page.select_option('#fault-form select[name="on"]', "judge")
    page.select_option('#fault-form select[name="action"]', "verdict")
    page.select_option('#fault-form select[name="reason"]', "Not_enough_credits")
    page.click("#fault-form button[type=submit]")
    expect(page.locator("#faults-list tr")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#faults-count")).to_have_text("1")
    page.keyboard.press("Escape")
    ftp_upload(room.srv, "demo", "demo", "Force_20300716120000_HQ.csv", VALID)
    expect(room.lane("demo", "INVALIDS")).to_contain_text("Not_enough_credits", timeout=WAIT_MS)
    page.click("#faults-button")
    expect(page.locator("#faults-list tr td.num").nth(1)).to_have_text("1", timeout=WAIT_MS)
    page.click("#faults-list button")
    expect(page.locator("#faults-list .empty")).to_be_visible(timeout=WAIT_MS)
    assert room.srv.faults.list() == []
    page.keyboard.press("Escape")

    # The clock: 30 days forward pass the campaign's send date; the SMS reads sent.
    ftp_upload(room.srv, "demo", "demo", "Promo_20300716120000_HQ.csv", VALID)
    status = page.locator('.phone[aria-label="Phone +33 6 12 34 56 78"] .sms-status')
    expect(status).to_contain_text("scheduled", timeout=WAIT_MS)
    page.click("#clock-button")
    page.click('[data-advance="2592000"]')
    expect(page.locator("#clock-now")).to_contain_text("14 Aug 2030, 09:30:00", timeout=WAIT_MS)
    expect(status).to_contain_text("sent", timeout=WAIT_MS)
    page.fill("#clock-at", "2030-07-16T11:00:00")
    page.click("#clock-set button[type=submit]")
    expect(status).to_have_text("scheduled · in 01:00:00", timeout=WAIT_MS)
    page.click("#clock-real")
    expect(page.locator("#clock-state")).to_have_text("", timeout=WAIT_MS)
    page.keyboard.press("Escape")
    assert room.errors == []


def test_the_page_works_with_an_api_token(browser: Browser, tmp_path: Path) -> None:
    overrides = {"processing.pickup_delay_seconds": 0, "server.api_token": "s3cret-token"}
    with running_mock_server(tmp_path / "data", ACCOUNTS, overrides) as srv:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            room = Room(context.new_page(), srv)
            room.page.goto(srv.http_url + "/?token=s3cret-token")
            room.page.wait_for_function(
                "() => window.__controlRoomStats?.ready && window.__controlRoomStats.connected",
                timeout=WAIT_MS,
            )
            assert "token" not in room.page.url  # out of the address bar (a projector)
            ftp_upload(srv, "demo", "demo", "Promo_20300716120000_HQ.csv", VALID)
            expect(room.lane("demo", "ARCHIVES")).to_have_attribute(
                "data-count", "1", timeout=WAIT_MS
            )
            assert room.errors == []
        finally:
            context.close()


def test_without_the_token_the_page_asks_for_it(browser: Browser, tmp_path: Path) -> None:
    """Contract 11 with `server.api_token`: a page opened without it (or with a wrong one)
    says so where it stays and takes the token in a form (a new user's trial saw a note fade
    after 9 s, then an empty page retrying 401s every 5 s)."""
    overrides = {"processing.pickup_delay_seconds": 0, "server.api_token": "s3cret-token"}
    with running_mock_server(tmp_path / "data", ACCOUNTS, overrides) as srv:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = context.new_page()
            page.goto(srv.http_url + "/?token=wrong")
            expect(page.locator("#token-needed")).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("#token-why")).to_contain_text("not the server")
            page.fill("#token-input", "s3cret-token")
            page.click("#token-form button[type=submit]")
            page.wait_for_function(
                "() => window.__controlRoomStats?.ready && window.__controlRoomStats.connected",
                timeout=WAIT_MS,
            )
            expect(page.locator("#token-needed")).to_be_hidden()
        finally:
            context.close()


def test_long_names_never_push_a_phone_screen_sideways(room: Room) -> None:
    """Contract 10: "still works at phone width": an invalid file with a long name (its hint
    names `TreatedByMSI_…`) wraps; the page does not scroll sideways at 390 px."""
    page = room.open().page
    page.set_viewport_size({"width": 390, "height": 844})
    name = "Relance" + "X" * 60 + "_20300716120000_HQ.csv"
    ftp_upload(room.srv, "demo", "demo", name, INVALID_ROWS)
    ftp_upload(
        room.srv, "demo", "demo", "Again" + "Y" * 60 + "_20300716120000_HQ.csv", INVALID_ROWS
    )
    expect(room.lane("demo", "INVALIDS")).to_have_attribute("data-count", "2", timeout=WAIT_MS)
    expect(page.locator('section.account[data-login="demo"] .invalid-card')).to_be_visible(
        timeout=WAIT_MS
    )
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls {overflow} px sideways at phone width"
    assert room.errors == []


# -- the README's screenshot ----------------------------------------------------------------------

NOEL = (
    '"0611223344";"Joyeux Noël ! -20 % sur tout le magasin ce week-end.\nSTOP au 36180";'
    '"Boutique"\n'
    '"0622334455";"Joyeux Noël ! -20 % sur tout le magasin ce week-end.\nSTOP au 36180";'
    '"Boutique"\n'
).encode()
RAPPEL = b'"0633445566";"Rappel : votre rendez-vous est demain a 14h. STOP au 36180";"Cabinet"\n'
CODES = b'"+44 7911 123456";"Your code is 482193"\n"0644556677";"Votre code : 271828"\n'


def test_screenshot_for_the_readme(room: Room, tmp_path: Path) -> None:
    """A small realistic scenario (two logins, a few archived files and one invalid, SMS
    shown), captured at 1280x800. It replaces docs/img/control-room.png (the README's) when
    `ALLMYSMS_UPDATE_SCREENSHOTS=1`; otherwise it goes to a temporary file, so a test run
    leaves the checkout clean, and the committed one must have the same size in pixels."""
    page = room.open().page
    ftp_upload(room.srv, "demo", "demo", "Noel_20300716120000_HQ.csv", NOEL)
    sftp_upload(room.srv, "demo", "demo", "Rappel_20300715180000_HQ.csv", RAPPEL)
    ftp_upload(room.srv, "acme", "acme-pw", "Codes_20300715093000_HQ.csv", CODES)
    sftp_upload(room.srv, "acme", "acme-pw", "Relance_20300716120000_HQ.csv", INVALID_ROWS)
    ftp_upload(room.srv, "demo", "demo", "Promo_20300716120000_HQ.csv", VALID)
    expect(room.lane("demo", "ARCHIVES")).to_have_attribute("data-count", "3", timeout=WAIT_MS)
    expect(room.lane("acme", "ARCHIVES")).to_have_attribute("data-count", "1", timeout=WAIT_MS)
    expect(room.lane("acme", "INVALIDS")).to_have_attribute("data-count", "1", timeout=WAIT_MS)
    expect(page.locator("#phones")).to_have_attribute("data-total", "7", timeout=WAIT_MS)
    expect(page.locator(".phone")).to_have_count(7, timeout=WAIT_MS)
    expect(page.locator("#mail")).to_have_attribute("data-total", "5", timeout=WAIT_MS)
    expect(page.locator('section.account[data-login="acme"] .invalid-card')).to_be_visible(
        timeout=WAIT_MS
    )
    expect(page.locator('section.account[data-login="demo"] .credits-value')).to_have_attribute(
        "data-credits", str(15000 - 5 * 15), timeout=WAIT_MS
    )
    page.locator("#toast").evaluate("el => el.classList.remove('shown')")
    update = os.environ.get("ALLMYSMS_UPDATE_SCREENSHOTS") == "1"
    target = SCREENSHOT if update else tmp_path / SCREENSHOT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))
    assert target.stat().st_size > 20_000
    assert png_size(target) == png_size(SCREENSHOT) == (1280, 800)
    assert room.errors == []


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


# -- a burst of 1,000 files ----------------------------------------------------------------------

BURST = 1000


def test_a_burst_of_1000_files_keeps_the_page_responsive(room: Room) -> None:
    """1,000 files written straight into SEND_SMS while the page is open: the page shows every
    one processed, without a reload, and the browser's own measures (long tasks, longest
    flush of queued events) stay far from a freeze. The figures are printed (-s)."""
    srv = room.srv
    page = room.open().page
    # A login created just now: its files' events may reach the page before its account does.
    srv.add_account("burst", "pw", credits=BURST * 100)
    send_sms = srv.folder("burst", Folder.SEND_SMS)
    began = page.evaluate("() => performance.now()")
    for i in range(BURST):
        name = f"B{i:04d}_20300716120000_HQ.csv"
        tmp = send_sms / f".{name}.part"
        tmp.write_bytes(b'"0612345678";"Bonjour STOP au 36180"\n')
        os.rename(tmp, send_sms / name)
    archives = room.lane("burst", "ARCHIVES")
    expect(archives).to_have_attribute("data-count", str(BURST), timeout=90_000)
    stats = room.stats()
    caught_up_ms = page.evaluate("() => performance.now()") - began
    # Still responsive: a click answers at once.
    page.click("#faults-button")
    expect(page.locator("#faults-dialog")).to_be_visible(timeout=2000)
    page.keyboard.press("Escape")
    print(
        f"\nburst: {BURST} files shown processed in {caught_up_ms / 1000:.1f} s;"
        f" {stats['events']} events applied in {stats['frames']} frames;"
        f" longest flush {stats['maxFlushMs']:.1f} ms;"
        f" long tasks {stats['longTasks']}, longest {stats['maxLongTaskMs']:.0f} ms;"
        f" reloads {stats['reloads']}"
    )
    expect(archives.locator(".more")).to_have_text(f"+{BURST - 12} more")
    assert archives.locator("li").count() == 12  # a capped lane, not 1,000 nodes
    assert stats["maxLongTaskMs"] < 1000
    assert stats["maxFlushMs"] < 1000
    assert stats["reloads"] == 1  # the first load only: no event lost, no overflow
    assert room.errors == []
