"""`allmysms-mock fixtures`: write realistic drop files, one per documented case (contract 2),
plus `expected.json` saying what the platform should make of each."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mockserver import fixtures as gen


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kinds = "\n".join(f"  {k:<16} {desc}" for k, (_, desc) in gen.KINDS.items())
    p = sub.add_parser(
        "fixtures",
        help="write realistic CSV files (Faker fr_FR), one per documented case",
        description=(
            "Write one CSV drop file per documented case, made with Faker (fr_FR) and fully "
            "deterministic for a given seed (the send date in the names too), and "
            "expected.json with the verdict each file should get."
        ),
        epilog=f"kinds (--kind, repeatable; 'all' = every kind, 'small' = all but large):\n"
        f"{kinds}\n\nNot_enough_credits is an account setting: "
        "allmysms-mock check <file> --credits 0",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("fixtures-out"),
        metavar="DIR",
        help="folder to write into, created if needed (default ./fixtures-out)",
    )
    p.add_argument(
        "--rows",
        type=_positive,
        default=gen.DEFAULT_ROWS,
        metavar="N",
        help=f"ordinary rows per file; a case's special rows come on top "
        f"(default {gen.DEFAULT_ROWS}; 'large' fills up to --max-bytes instead)",
    )
    p.add_argument(
        "--seed", type=int, default=gen.DEFAULT_SEED, metavar="S", help="random seed (default 0)"
    )
    p.add_argument(
        "--kind",
        action="append",
        choices=[*gen.KINDS, "all", "small"],
        metavar="KIND",
        help="case to write (repeatable; default all)",
    )
    p.add_argument(
        "--max-bytes",
        type=_positive,
        default=gen.DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"size of the 'large' file (default {gen.DEFAULT_MAX_BYTES}, the upload limit)",
    )
    p.set_defaults(run=run)


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {value!r}")
    return number


def selected_kinds(requested: list[str] | None) -> list[str]:
    """Kinds in catalogue order, each once; 'all' and 'small' expand."""
    wanted: set[str] = set()
    for kind in requested or ["all"]:
        if kind == "all":
            wanted.update(gen.KINDS)
        elif kind == "small":
            wanted.update(gen.SMALL_KINDS)
        else:
            wanted.add(kind)
    return [k for k in gen.KINDS if k in wanted]


# Faker is optional (docs/design.md, "Dependencies"): installed by the `fixtures` extra, the
# `dev` extra and the Docker image, not by a plain install (its pytest plugin would make every
# pytest run of the user's project build a Faker instance).
INSTALL_HINT = (
    "allmysms-mock fixtures: Faker is not installed;"
    " install it with: pip install 'allmysms-mockserver[fixtures]'"
)


def faker_missing() -> bool:
    try:
        import faker  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "faker":
            raise
        return True
    return False


def run(args: argparse.Namespace) -> int:
    if faker_missing():
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    if args.max_bytes < gen.MIN_MAX_BYTES:
        print(
            f"allmysms-mock fixtures: --max-bytes must be at least {gen.MIN_MAX_BYTES}",
            file=sys.stderr,
        )
        return 2
    kinds = selected_kinds(args.kind)
    fixtures = gen.generate_many(kinds, seed=args.seed, rows=args.rows, max_bytes=args.max_bytes)
    out: Path = args.out
    document = gen.expected_document(fixtures, seed=args.seed, rows=args.rows)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for fx in fixtures:
            (out / fx.name).write_bytes(fx.data)
        (out / "expected.json").write_text(
            json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    except OSError as exc:
        print(
            f"allmysms-mock fixtures: cannot write to {out}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    width = max(len(str(out / fx.name)) for fx in fixtures)
    for fx in fixtures:
        first = fx.expectations[0]
        folder = "ARCHIVES" if first.reason is None else "INVALIDS"
        print(
            f"wrote {out / fx.name!s:<{width}} {len(fx.data):>9,} bytes  "
            f"{fx.kind}: {folder}/{first.final_name}"
        )
    files = f"{len(fixtures)} file{'s' if len(fixtures) != 1 else ''}"
    print(f"wrote {out / 'expected.json'} ({files}, seed {args.seed})")
    return 0
