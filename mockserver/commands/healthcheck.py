"""`allmysms-mock healthcheck`: exit 0 when a running mock answers `/health` (Docker)."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("healthcheck", help="exit 0 if a running mock answers GET /health")
    p.add_argument("--url", default="http://127.0.0.1:8021/health", help="health URL to query")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as resp:
            body = json.loads(resp.read().decode("utf-8"))
    except (OSError, ValueError, urllib.error.URLError) as exc:
        print(f"unhealthy: {args.url}: {exc}", file=sys.stderr)
        return 1
    if body.get("status") != "ok":
        print(f"unhealthy: {args.url}: {body}", file=sys.stderr)
        return 1
    print("ok")
    return 0
