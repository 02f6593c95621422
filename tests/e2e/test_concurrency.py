"""Many clients at once: 40 concurrent drops over FTP and SFTP with credits for exactly 30 of
them; the credit ledger must balance to the SMS (contract 5.4.4, docs/design.md, pitfall 4).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mockserver.app import MockServer
from tests.support.billing import SMS_CREDITS
from tests.support.serve import DEMO_LOGIN, campaign, csv_rows, drop, entries
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

FILES = 40
SMS_EACH = 3
AFFORDABLE = 30


def test_forty_concurrent_drops_with_credits_for_thirty(srv: MockServer) -> None:
    """Contract 5.4.4: `Not_enough_credits` when credits < the file's cost (15 credits an SMS,
    contract 3 `[pricing]`);
    "An invalid file sends nothing and costs nothing". With credits for exactly 30 files of
    3 SMS, 30 are archived and 10 refused whatever the interleaving; credits never go
    negative and every credit charged matches an SMS of an archived file."""
    srv.set_credits(DEMO_LOGIN, AFFORDABLE * SMS_EACH * SMS_CREDITS)
    names = [campaign(f"Rush{i:02d}") for i in range(FILES)]
    bodies = {name: csv_rows(SMS_EACH, start=i * SMS_EACH) for i, name in enumerate(names)}

    samples: list[int] = []
    stop = threading.Event()

    def sample_credits() -> None:
        while not stop.wait(0.005):
            account = srv.account(DEMO_LOGIN)
            assert account is not None
            samples.append(account["credits"])

    sampler = threading.Thread(target=sample_credits, name="credit-sampler")
    sampler.start()
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            uploads = [
                pool.submit(
                    drop,
                    "ftp" if i % 2 == 0 else "sftp",
                    srv.ftp_port,
                    srv.sftp_port,
                    name,
                    bodies[name],
                )
                for i, name in enumerate(names)
            ]
            for upload in uploads:
                upload.result(timeout=90)
        wait_until(lambda: len(srv.files()) >= FILES, 90, what="40 verdicts")
    finally:
        stop.set()
        sampler.join(10)

    files = srv.files()
    assert sorted(f["original_name"] for f in files) == names  # each exactly once
    archived = [f for f in files if f["status"] == "archived"]
    invalid = [f for f in files if f["status"] == "invalid"]
    assert len(archived) == AFFORDABLE
    assert len(invalid) == FILES - AFFORDABLE
    assert {f["reason"] for f in invalid} == {"Not_enough_credits"}

    # The ledger: nothing negative, every credit charged is for an SMS of an archived file.
    assert samples
    assert min(samples) >= 0
    account = srv.account(DEMO_LOGIN)
    assert account is not None
    assert account["credits"] == 0
    assert sum(f["sms_count"] for f in archived) == AFFORDABLE * SMS_EACH
    assert srv.store.total_charged(DEMO_LOGIN) == AFFORDABLE * SMS_EACH * SMS_CREDITS
    assert all(f["sms_count"] == 0 for f in invalid)
    messages = srv.messages(login=DEMO_LOGIN)
    assert len(messages) == AFFORDABLE * SMS_EACH
    assert sorted({m["file"] for m in messages}) == sorted(f["original_name"] for f in archived)

    # On disk: each file in exactly one place.
    assert entries(srv.folder(DEMO_LOGIN, "ARCHIVES")) == sorted(f["final_name"] for f in archived)
    assert entries(srv.folder(DEMO_LOGIN, "INVALIDS")) == sorted(f["final_name"] for f in invalid)
    assert entries(srv.folder(DEMO_LOGIN, "SEND_SMS")) == []
    assert entries(srv.folder(DEMO_LOGIN, "PROCESSING")) == []
    for record in archived:
        path = srv.folder(DEMO_LOGIN, "ARCHIVES") / record["final_name"]
        assert path.read_bytes() == bodies[record["original_name"]]
    assert len(srv.mail()) == FILES
