"""The `allmysms-mock` command line: dispatches to one module per sub-command."""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# name -> module under mockserver.commands; each has add_parser(subparsers) and run(args) -> int
COMMANDS = ("serve", "check", "fixtures", "send", "hash_password", "healthcheck", "watch")


class _Version(argparse.Action):
    """`--version` (contract 2: prints `allmysms-mock <version>`), the version read from the
    distribution's metadata only when asked (`importlib.metadata` is not free: issue 15)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from mockserver import __version__

        sys.stdout.write(f"{parser.prog} {__version__}\n")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command, or, with `only` (a sub-command's name as typed), of
    that one alone: `serve` then imports nothing of `check`, `send` or `fixtures` (issue 15,
    start-up time). An unknown `only` builds them all, for the usual error and help."""
    parser = argparse.ArgumentParser(
        prog="allmysms-mock",
        description="A local emulator of the AllMySMS.com FTP/SFTP bulk-SMS API.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    module_name = only.replace("-", "_") if only is not None else None
    for name in (module_name,) if module_name in COMMANDS else COMMANDS:
        try:
            module = importlib.import_module(f"mockserver.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"mockserver.commands.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line: its first word that is not an option (the
    top-level options, `--help` and `--version`, take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    # Issue 15: start-up makes some 60,000 objects that live as long as the process; the
    # cyclic GC, run every 700 allocations, walked them over and over while they were made
    # (about a fifth of `serve`'s import time). It is off until the command runs, and for
    # `serve` until READY (`commands.serve` then collects once, freezes them, re-enables).
    gc.disable()
    try:
        parser = build_parser(_command_of(words))
        args = parser.parse_args(words)
    except BaseException:  # --help, --version, a usage error
        gc.enable()
        raise
    if not getattr(args, "gc_until_ready", False):
        gc.enable()
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    finally:
        gc.enable()  # `serve` stopped before READY: as it was
    return code
