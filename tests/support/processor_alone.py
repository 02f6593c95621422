"""The processor alone (no FTP/SFTP/HTTP) on a data dir, as a child process: used by the
crash tests. `python -m tests.support.processor_alone --config FILE [--until-idle]`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from mockserver.backend import Backend
from mockserver.config import ConfigError, load_config
from mockserver.logs import setup_logging
from mockserver.processing import DEFAULT_SETTLE_SECONDS, Processor


def main(argv: Sequence[str] | None = None) -> int:
    """Print READY once started; with `--until-idle`, exit 0 once nothing is left to process
    (1 when not idle in time); else run until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.processor_alone")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--until-idle", action="store_true", help="exit once nothing is left to process"
    )
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=DEFAULT_SETTLE_SECONDS)
    args = parser.parse_args(argv)

    try:
        overrides = {"server.data_dir": str(args.data_dir)} if args.data_dir else None
        config = load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(config.log.format, config.log.level.upper())
    data_dir = config.server.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    backend = Backend(config)
    backend.open()
    try:
        processor = Processor.over(backend, settle_seconds=args.settle)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        processor.start()
        print("READY", flush=True)
        try:
            if args.until_idle:
                deadline = time.monotonic() + args.idle_timeout
                while not stop.is_set():
                    if processor.drain(max(0.1, deadline - time.monotonic())):
                        break
                    if time.monotonic() > deadline:
                        print("not idle in time", file=sys.stderr)
                        return 1
            else:
                stop.wait()
        finally:
            processor.stop()
    finally:
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
