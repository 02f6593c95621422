"""`allmysms-mock check FILE...`: the platform's verdict on CSV files, offline (contract 2).

Reads each file, runs the same rule engine as the server (`core.judge`) and prints what the
platform would do: the exact final name, why, what it costs in credits, every rejected row and
warning with its line. A `.tmp` name is reported as `ignored` (contract 5.1): the server never
touches it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mockserver.core.bounded import KEPT_ROWS
from mockserver.core.filename import DEFAULT_QUALITIES, is_temporary
from mockserver.core.models import DEFAULT_SENDER, Account, Verdict
from mockserver.core.pricing import DEFAULT_PRICES, PriceTable
from mockserver.core.text import escape_terminal
from mockserver.tree import valid_login
from mockserver.views import TMP_NOTE, ignored_check

PARIS = ZoneInfo("Europe/Paris")  # contract 5.10: the 14 digits are Paris time
DEFAULT_MAX_BYTES = 8_000_000  # contract 3: limits.max_file_bytes ("8 Mo")
DEFAULT_LIMIT = 20  # lines listed per section unless --all: a 150k-row file must stay readable
PREVIEW = 48  # characters of a message shown in the SMS list
# "Enough" credits: the default account never runs out, so only --credits tests the rule.
ENOUGH_CREDITS = sys.maxsize
KNOWN_QUALITIES = ("HQ", "LC")  # contract 3 `processing.qualities`


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="judge CSV files offline, exactly as the platform would",
        description=(
            "Apply the platform's rules to each FILE and print the verdict: the name it would "
            "get in ARCHIVES or INVALIDS, the SMS it would send, its rejected rows with their "
            f"lines (the first {KEPT_ROWS}, the others counted by error). A .tmp name is "
            "reported as ignored (the server never touches it). Exit 0 when "
            "every file would be archived or is ignored, 1 otherwise, 2 on usage errors."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="CSV file(s) to judge")
    p.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")
    p.add_argument(
        "--login", type=_login, default="demo", help="account login to judge for (default demo)"
    )
    p.add_argument(
        "--credits",
        type=_non_negative,
        default=None,
        metavar="N",
        help="credits of the account (default: enough for any file); a French SMS costs 15 "
        "by default, e.g. --credits 149 for ten of them gives Not_enough_credits",
    )
    p.add_argument(
        "--qualities",
        type=_qualities,
        default=None,
        metavar="Q[,Q]",
        help="qualities accepted in names, e.g. HQ,LC (default: processing.qualities from "
        "--config, else HQ only)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="server configuration (TOML) whose [pricing] and processing.qualities apply "
        "(default: every SMS 15 credits, HQ only)",
    )
    p.add_argument(
        "--subscription",
        action="store_true",
        help="account billed at month end: never Not_enough_credits",
    )
    p.add_argument(
        "--default-sender",
        default=DEFAULT_SENDER,
        metavar="S",
        help=f"sender used when none is given or applied (default {DEFAULT_SENDER})",
    )
    p.add_argument(
        "--now",
        type=_when,
        default=None,
        metavar="ISO",
        help="judge as of this date-time (ISO 8601; without offset: Europe/Paris); default now",
    )
    p.add_argument(
        "--max-bytes",
        type=_non_negative,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"upload size limit to warn about (default {DEFAULT_MAX_BYTES})",
    )
    p.add_argument(
        "--limit",
        type=_non_negative,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"lines listed per section (default {DEFAULT_LIMIT})",
    )
    p.add_argument(
        "--all",
        action="store_true",
        dest="show_all",
        help=(
            f"list every SMS, warning and kept rejected row (the first {KEPT_ROWS}: "
            "more are only counted)"
        ),
    )
    p.set_defaults(run=run)


def _login(value: str) -> str:
    if not valid_login(value):
        raise argparse.ArgumentTypeError(f"invalid login {value!r}")
    return value


def _non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value!r}")
    return number


def _qualities(value: str) -> tuple[str, ...]:
    wanted = tuple(q.strip() for q in value.split(",") if q.strip())
    unknown = [q for q in wanted if q not in KNOWN_QUALITIES]
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(
            f"qualities are {' and/or '.join(KNOWN_QUALITIES)}, comma-separated: {value!r}"
        )
    return tuple(dict.fromkeys(wanted))


def _pricing(path: Path | None) -> tuple[PriceTable, tuple[str, ...]] | str:
    """The price table and qualities of the configuration file at `path` (contract 3), or the
    one line saying why it cannot be read. Without a file: the defaults. The file alone: an
    offline check does not depend on the `ALLMYSMS_MOCK_*` variables of the shell it runs in."""
    if path is None:
        return DEFAULT_PRICES, DEFAULT_QUALITIES
    from mockserver.config import ConfigError, load_config  # lazy, like judge

    try:
        config = load_config(path, env={})
    except (ConfigError, OSError) as exc:
        return str(exc)
    return config.pricing, config.processing.qualities


def _when(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date-time: {value!r} (e.g. 2030-07-10T14:30:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=PARIS)


def run(args: argparse.Namespace) -> int:
    from mockserver.core.judge import judge  # lazy: `allmysms-mock --help` stays fast

    # Refuse unusable paths before printing anything: one clear line, exit 2 (a usage error).
    for path in args.files:
        problem = _unreadable(path)
        if problem:
            print(f"allmysms-mock check: {path}: {problem}", file=sys.stderr)
            return 2

    pricing = _pricing(args.config)
    if isinstance(pricing, str):
        print(f"allmysms-mock check: {args.config}: {pricing}", file=sys.stderr)
        return 2
    prices, qualities = pricing
    if args.qualities is not None:
        qualities = args.qualities

    account = Account(
        login=args.login,
        credits=ENOUGH_CREDITS if args.credits is None else args.credits,
        subscription=args.subscription,
        default_sender=args.default_sender,
    )
    now: datetime = args.now or datetime.now(UTC)
    results: list[dict[str, Any]] = []
    texts: list[str] = []
    archived = 0
    ignored = 0
    for path in args.files:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            print(f"allmysms-mock check: {path}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        name = os.path.basename(path)
        if is_temporary(name):
            # Contract 5.1: "`check` reports such a name as `ignored`, not invalid".
            ignored += 1
            if args.json:
                results.append(_ignored_dict(path, name, len(data), args.max_bytes))
            else:
                texts.append(_describe_ignored(path, name, len(data)))
            continue
        try:
            verdict = judge(name, data, account, now, prices=prices, qualities=qualities)
        except Exception as exc:  # judge never raises; if it does, say so in one line
            print(f"allmysms-mock check: {path}: internal error: {exc!r}", file=sys.stderr)
            results.append({"path": path, "error": f"internal error: {exc!r}"})
            continue
        over = len(data) > args.max_bytes
        if verdict.archived and not over:
            archived += 1
        if args.json:
            results.append(
                {"path": path, "bytes": len(data), "over_limit": over} | verdict.to_dict()
            )
        else:
            texts.append(_describe(path, len(data), verdict, args, now))

    if args.json:
        _emit(json.dumps(results, ensure_ascii=not _utf8_stdout(), indent=2))
    else:
        if len(args.files) > 1:
            judged = len(args.files) - ignored
            texts.append(
                f"{len(args.files)} files checked: {archived} would be archived, "
                f"{judged - archived} would not"
                + (f", {ignored} ignored (.tmp)" if ignored else "")
            )
        _emit("\n\n".join(texts))
    # Ignored names are no failure: the run fails only when a judged file would not be
    # archived (an ignored-only run exits 0).
    return 0 if archived + ignored == len(args.files) else 1


def _ignored_dict(path: str, name: str, size: int, max_bytes: int) -> dict[str, Any]:
    return {"path": path, "bytes": size, "over_limit": size > max_bytes} | ignored_check(name)


def _describe_ignored(path: str, name: str, size: int) -> str:
    return "\n".join(
        [
            f"{escape_terminal(name)} -> ignored (stays in SEND_SMS)",
            f"  file      {escape_terminal(path)} ({size:,} bytes)",
            f"  note      {TMP_NOTE}",
        ]
    )


def _unreadable(path: str) -> str | None:
    if not os.path.exists(path):
        return "no such file"
    if os.path.isdir(path):
        return "is a directory, not a file"
    if not os.path.isfile(path):
        return "not a regular file"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def _describe(path: str, size: int, v: Verdict, args: argparse.Namespace, now: datetime) -> str:
    folder = "ARCHIVES" if v.archived else "INVALIDS"
    out = [f"{escape_terminal(v.original_name)} -> {folder}/{escape_terminal(v.final_name)}"]
    out.append(f"  file      {escape_terminal(path)} ({size:,} bytes)")
    if size > args.max_bytes:
        out.append(
            f"  size      over the {args.max_bytes:,}-byte limit: the server refuses the upload"
        )
    if v.reason is not None:
        reason = f"  reason    {v.reason.value}"
        out.append(reason + (f": {escape_terminal(v.detail)}" if v.detail else ""))
    if v.campaign is not None:
        when = v.campaign.send_at.astimezone(PARIS)
        state = "scheduled until then" if when > now else "date passed: sent at once"
        out.append(
            f"  campaign  {escape_terminal(v.campaign.name)}, send date {when:%Y-%m-%d %H:%M:%S} "
            f"Europe/Paris ({when.tzname()}, {state}), MULT {'yes' if v.campaign.mult else 'no'}"
        )
    out.append(
        f"  counts    {v.rows:,} {'row' if v.rows == 1 else 'rows'} read, {len(v.sms):,} SMS,"
        f" {v.rejected_total:,} rejected"
    )
    out.append(f"  cost      {_cost(v, args)}")
    limit = None if args.show_all else args.limit
    if v.hints:
        # Contract 5.12: the likely cause of a common mistake (one line a kind, never a row).
        out.append(f"  hints ({len(v.hints)})")
        out += [f"    {h.code}: {escape_terminal(h.message)}" for h in v.hints]

    if v.rejected or v.rejected_more:
        out.append(f"  rejected rows ({v.rejected_total:,})")
        out += _capped(
            (
                f"    line {r.line}: {r.error}"
                + (f": {escape_terminal(r.detail)}" if r.detail else "")
                for r in v.rejected
            ),
            len(v.rejected),
            limit,
        )
        out += _counted_only(v.rejected_more)
    warned = [(s, w) for s in v.sms for w in s.warnings]
    if warned:
        out.append(f"  warnings ({len(warned):,})")
        out += _capped(
            (f"    line {s.line}: {w} ({s.phone})" for s, w in warned), len(warned), limit
        )
    if v.sms:
        out.append(f"  SMS ({len(v.sms):,})")
        width = max(len(s.phone) for s in v.sms)
        out.append(f"    {'line':>6}  {'phone':<{width}}  {'sender':<11}  {'septets':>7}  message")
        out += _capped(
            (
                f"    {s.line:>6}  {s.phone:<{width}}  {escape_terminal(s.sender_applied):<11}  "
                f"{s.septets:>7}  {_preview(s.message)}"
                for s in v.sms
            ),
            len(v.sms),
            limit,
        )
    return "\n".join(out)


def _credits(n: int) -> str:
    return f"{n:,} credit{'s' if n != 1 else ''}"


def _cost(v: Verdict, args: argparse.Namespace) -> str:
    """Contract 5.4.4: what the file costs in credits, and what the account has."""
    if not v.archived:
        return f"{_credits(0)} (an invalid file sends nothing and costs nothing)"
    by_price: dict[int, int] = {}
    for s in v.sms:
        by_price[s.price] = by_price.get(s.price, 0) + 1
    parts = ", ".join(f"{count:,} SMS at {price:,}" for price, count in sorted(by_price.items()))
    text = f"{_credits(v.cost)} ({parts})"
    if args.subscription:
        return text + ", billed at month end (subscription)"
    if args.credits is not None:
        return (
            text
            + f"; the account's {_credits(args.credits)} would leave "
            + (f"{args.credits - v.cost:,}")
        )
    return text


def _counted_only(more: tuple[tuple[str, int], ...]) -> list[str]:
    """Issue 16: the rejected rows past the first KEPT_ROWS, which no verdict keeps (not even
    for --all), counted by error."""
    if not more:
        return []
    total = sum(n for _, n in more)
    counts = ", ".join(f"{error} {n:,}" for error, n in sorted(more, key=lambda m: -m[1]))
    return [
        f"    … and {total:,} more, only counted (the first {KEPT_ROWS} rejected rows are "
        f"kept): {counts}"
    ]


def _capped(lines: Iterable[str], total: int, limit: int | None) -> list[str]:
    out: list[str] = []
    for line in lines:
        if limit is not None and len(out) >= limit:
            break
        out.append(line)
    if len(out) < total:
        out.append(f"    … and {total - len(out):,} more (use --all)")
    return out


def _preview(message: str) -> str:
    shown = escape_terminal(message)
    return shown if len(shown) <= PREVIEW else shown[: PREVIEW - 1] + "…"


def _utf8_stdout() -> bool:
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    return encoding == "utf8"


def _emit(text: str) -> None:
    # A console that cannot show a character gets an escape, never a UnicodeEncodeError.
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    sys.stdout.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")
    sys.stdout.flush()
