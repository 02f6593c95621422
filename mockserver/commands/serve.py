"""`allmysms-mock serve`: run FTP, SFTP, the HTTP control API and the processor (contract 2)."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
from pathlib import Path

from mockserver.config.settings import add_flags


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the mock platform (FTP, SFTP, HTTP API, processor)",
        description="Run the mock platform. With no arguments: FTP 2121, SFTP 61022, HTTP 8021 "
        "on 127.0.0.1, data in ./allmysms-data, account demo/demo with 15000 credits.",
    )
    p.add_argument("--config", type=Path, help="TOML configuration file (or $ALLMYSMS_MOCK_CONFIG)")
    add_flags(p)  # one flag per setting that declares one (mockserver.config.settings)
    p.set_defaults(run=run, gc_until_ready=True)  # `cli.main` leaves the GC off until READY


def run(args: argparse.Namespace) -> int:
    from mockserver.app import MockServer, StartupError
    from mockserver.config import ENV_CONFIG_FILE, ConfigError, flag_overrides, load_config
    from mockserver.logs import setup_logging

    overrides = flag_overrides(args)
    try:
        path = args.config or os.environ.get(ENV_CONFIG_FILE) or None
        config = load_config(path and Path(path), env=os.environ, overrides=overrides)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    setup_logging(config.log.format, config.log.level.upper())

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    server = MockServer(config)
    try:
        server.start()
    except (StartupError, ConfigError) as exc:
        print(f"allmysms-mock: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # anything else the file system refuses: one line, no traceback
        print(f"allmysms-mock: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        accounts = ", ".join(a.login for a in config.accounts) or "(none)"
        print(f"allmysms-mock {_version()}: data in {config.server.data_dir.resolve()}")
        print(
            f"  {server.ftp_url}   (FTP, passive ports "
            f"{config.server.passive_ports[0]}-{config.server.passive_ports[1]})"
        )
        print(f"  {server.sftp_url}  (SFTP, host key {server.host_key_fingerprint})")
        print(f"  {server.http_url}/  (control room page; HTTP control API under /api/)")
        print(f"  accounts: {accounts}")
        print(f"READY ftp={server.ftp_port} sftp={server.sftp_port} http={server.http_port}")
        sys.stdout.flush()
        settle_gc()
        stop.wait()
    finally:
        server.stop()
    return 0


def settle_gc() -> None:
    """Once READY: collect what start-up left, move what it made for good out of the
    collector's sight (`gc.freeze`: later collections no longer walk it), then turn the GC
    back on (issue 15; `cli.main` turned it off). Idempotent."""
    gc.collect()
    gc.freeze()
    gc.enable()


def _version() -> str:
    from mockserver import __version__

    return __version__
