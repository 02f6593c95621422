"""`allmysms-mock hash-password`: read a password on stdin, print its `password_hash` value."""

from __future__ import annotations

import argparse
import getpass
import sys

from mockserver.config import hash_password


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "hash-password",
        help="print the password_hash value of a password read on stdin",
        description=(
            "Reads a password (prompted when stdin is a terminal, else the first line of stdin)"
            " and prints the value to use as `password_hash` in the [[accounts]] of the config."
        ),
    )
    p.set_defaults(run=run)


def _read_password() -> str | None:
    if sys.stdin is None:
        return None
    if sys.stdin.isatty():
        try:
            return getpass.getpass("Password: ")
        except EOFError:
            return None
    line = sys.stdin.readline()
    return line.rstrip("\r\n") if line else None


def run(args: argparse.Namespace) -> int:
    password = _read_password()
    if not password:
        print("hash-password: no password given on stdin", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0
