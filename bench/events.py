"""Benchmark: a burst of files over FTP with and without a stalled `GET /api/events` reader
(one that asked for the stream and never reads), in the same run: the reader must not slow the
platform (contract 9.1; the publisher never waits for a reader).

Run: `python bench/events.py [--files 200]`. Prints files/s for both runs and their ratio
(stalled / free; about 1 means no slowdown), and whether the stalled reader was dropped.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bursts import burst

from mockserver.app import MockServer
from mockserver.config import load_config


def server(data_dir: Path) -> MockServer:
    settings = {
        "server.ftp_port": 0,
        "server.sftp_port": 0,
        "server.http_port": 0,
        "server.data_dir": str(data_dir),
        "processing.pickup_delay_seconds": 0,
        "accounts": [{"login": "demo", "password": "demo", "credits": 10**9}],
    }
    return MockServer(load_config(None, env={}, overrides=settings))


def stalled_reader(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: bench\r\n\r\n")
    return sock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    results: dict[str, float] = {}
    dropped = False
    for mode in ("free", "stalled"):
        with tempfile.TemporaryDirectory() as tmp, server(Path(tmp)) as srv:
            reader = stalled_reader(srv.http_port) if mode == "stalled" else None
            base = srv.backend.bus.subscribers
            seconds = burst(srv, args.files, mode.capitalize())
            if reader is not None:
                dropped = srv.backend.bus.subscribers < base
                reader.close()
            results[mode] = args.files / seconds
            print(f"{mode:8s} {args.files} files in {seconds:.2f} s: {results[mode]:.1f} files/s")
    ratio = results["stalled"] / results["free"]
    print(f"ratio stalled/free {ratio:.2f}; stalled reader dropped: {dropped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
