"""The `crash` fault at each step of a file's pipeline, set through the HTTP API of a running
`MockServer` (contract 9.2: "the file's processing is abandoned at that step exactly as a kill -9
would leave it, then the platform recovers it as it does at a restart, while `serve` keeps
running: nothing lost, nothing charged or mailed twice"), with the exactly-once invariants
(docs/spec.md 5.2.4): every file ends in exactly one of ARCHIVES/INVALIDS, is charged once, its
SMS are recorded once, its recap mailed once. A real `kill -9` is tests/e2e/test_crash.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mockserver.app import MockServer
from mockserver.store import Store
from tests.support.billing import DEMO_CREDITS, SMS_CREDITS
from tests.support.http import call
from tests.support.serve import entries, ftp_drop

GOOD = b'"0612345678";"Bonjour"\n"0712345678";"Salut"\n'
FILES = {
    "Alpha_20300716120000_HQ.csv": GOOD,
    "Beta_20300716120000_HQ.csv": GOOD + b'"0612000000";"Encore"\n',
    "bad name.csv": GOOD,
    "Gamma_20300716120000_HQ.csv": b"",
}
SENT = 5  # SMS the two valid files send
STEPS = ("claim", "judge", "move", "mail")


@pytest.fixture
def srv() -> Iterator[MockServer]:
    # No periodic rescan in the test's time: the recovery is the crash's own, at once.
    with MockServer(rescan_seconds=3600) as server:
        yield server


def unfinished(srv: MockServer) -> list[str]:
    with Store(srv.data_dir / "state.sqlite3") as store:
        return [f.original_name for f in store.unfinished()]


@pytest.mark.parametrize("step", STEPS)
def test_crash_fault_at_each_step_is_exactly_once(srv: MockServer, step: str) -> None:
    """Contract 9.2 `crash`, on every file (`times` 0): each file is abandoned once at `step`
    (the rule fires once per file: a recovered file does not meet the step's rules again),
    recovered while the server runs, and ends placed, charged, recorded and mailed once."""
    added = call(srv, "POST", "/api/faults", {"on": step, "action": "crash", "times": 0})
    assert added.status == 201, added.body
    for name, body in FILES.items():
        ftp_drop(srv.ftp_port, name, body)
    for name in FILES:
        srv.wait_for_file(name, timeout=10)
    srv.processor.wait_idle(10)

    root = srv.folder("demo", "SEND_SMS").parent
    assert entries(root / "SEND_SMS") == []
    assert entries(root / "PROCESSING") == []
    assert entries(root / "ARCHIVES") == [
        "TreatedByMSI_Alpha_20300716120000_HQ.csv",
        "TreatedByMSI_Beta_20300716120000_HQ.csv",
    ]
    assert entries(root / "INVALIDS") == [
        "TreatedByMSI_Empty_File_Gamma_20300716120000_HQ.csv",
        "TreatedByMSI_Incorrect_FileName_bad name.csv",
    ]
    files = srv.files()
    assert sorted(f["original_name"] for f in files) == sorted(FILES)
    assert all(f["mail"] == "sent" for f in files), files
    assert unfinished(srv) == []
    assert len(srv.messages()) == SENT
    account = srv.account("demo")
    assert account is not None
    assert account["credits"] == DEMO_CREDITS - SENT * SMS_CREDITS
    assert sorted(m["file"] for m in srv.mail()) == sorted(FILES)
    # Every file met the step once (an `Incorrect_FileName` file is judged too).
    (rule,) = call(srv, "GET", "/api/faults").json["faults"]
    assert rule["fired"] == len(FILES)
