"""What `bench/api.py` and `bench/events.py` share: a burst of small files over one FTP
session, timed from the first upload to the last verdict."""

from __future__ import annotations

import ftplib
import io
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mockserver.app import MockServer

CSV = b'"0612345678";"Bonjour STOP au 36180"\n'


def burst(srv: MockServer, files: int, tag: str, timeout: float = 300.0) -> float:
    """Seconds from the first upload to the last verdict of `files` files over one FTP session
    (every verdict, counted from the files recorded after the burst began)."""
    mark = srv.last_file_id
    began = time.perf_counter()
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", srv.ftp_port, timeout=30)
        ftp.login("demo", "demo")
        for i in range(files):
            name = f"{tag}_20301231{i:06d}_HQ.csv"
            ftp.storbinary(f"STOR /SEND_SMS/{name}.tmp", io.BytesIO(CSV))
            ftp.rename(f"/SEND_SMS/{name}.tmp", f"/SEND_SMS/{name}")
    deadline = time.monotonic() + timeout
    while True:
        seen = srv.last_event_id  # read first: a verdict after the count is never missed
        if len(srv.files(after_id=mark, limit=files)) >= files:
            return time.perf_counter() - began
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit(f"the burst {tag}: not every verdict within {timeout:g} s")
        srv.wait_for(lambda e: e["type"] == "file.finished", timeout=left, after=seen)
