"""The `allmysms-mock` command line: dispatches to one module per sub-command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mockserver import __version__

# name -> module under mockserver.commands; each has add_parser(subparsers) and run(args) -> int
COMMANDS = ("serve", "check", "fixtures", "send", "hash_password", "healthcheck", "watch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allmysms-mock",
        description="A local emulator of the AllMySMS.com FTP/SFTP bulk-SMS API.",
    )
    # Contract 2: "`allmysms-mock --version` prints `allmysms-mock <version>`".
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"mockserver.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"mockserver.commands.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    return code
