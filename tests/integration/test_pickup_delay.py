"""`processing.pickup_delay_seconds`: a complete file stays visible in SEND_SMS a while."""

from __future__ import annotations

import ftplib
import io
import os
import time

from mockserver import MockServer

NAME = "Pickup_20301231120000_HQ.csv"
ROWS = b'"0612345678";"Bonjour"\n'


def test_pickup_delay_keeps_a_renamed_file_in_send_sms() -> None:
    """docs/spec.md "Pickup delay": a client that stats the file right after renaming it (as
    rclone's move does) still finds it in SEND_SMS; it is processed after the delay."""
    delay = 2.0
    with MockServer(pickup_delay_seconds=delay) as srv, ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=10)
        ftp.login("demo", "demo")
        ftp.storbinary("STOR SEND_SMS/x.tmp", io.BytesIO(ROWS))
        renamed = time.monotonic()
        ftp.rename("SEND_SMS/x.tmp", f"SEND_SMS/{NAME}")
        assert ftp.size(f"SEND_SMS/{NAME}") == len(ROWS)
        verdict = srv.wait_for_file(NAME, 30)
        assert time.monotonic() - renamed >= delay
        assert verdict["final_name"] == f"TreatedByMSI_{NAME}"
        assert ftp.nlst("SEND_SMS") == []


def test_pickup_delay_holds_against_the_periodic_rescan() -> None:
    """docs/spec.md "Pickup delay": the delay counts from the rename even when the file's
    modification time is old (rclone, `put -p`) and a rescan finds it first."""
    delay = 2.0
    with MockServer(pickup_delay_seconds=delay, rescan_seconds=0.2) as srv:
        send = srv.folder("demo", "SEND_SMS")
        tmp = send / "old.tmp"
        tmp.write_bytes(ROWS)
        os.utime(tmp, (time.time() - 3600, time.time() - 3600))
        renamed = time.monotonic()
        tmp.rename(send / NAME)
        verdict = srv.wait_for_file(NAME, 30)
        assert time.monotonic() - renamed >= delay
        assert verdict["status"] == "archived"
