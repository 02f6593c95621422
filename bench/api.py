"""Benchmark of the control surface: `MockServer` start + stop, and `GET /api/messages` over
100,000 recorded SMS filtered by campaign.

Run: `python bench/api.py [--starts 20] [--sms 100000] [--campaigns 20] [--queries 50]`.
Targets: start + stop median <= 0.3 s; `/api/messages?campaign=` median <= 50 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mockserver.app import MockServer
from mockserver.core.models import Campaign, Sms, Status, Verdict

PARIS = ZoneInfo("Europe/Paris")
START_TARGET = 0.3
QUERY_TARGET = 0.050


def bench_start_stop(runs: int) -> list[float]:
    MockServer().start().stop()  # warm up: imports, host-key generation code paths
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        srv = MockServer().start()
        srv.stop()
        times.append(time.perf_counter() - began)
    return times


def record_sms(srv: MockServer, total: int, campaigns: int) -> float:
    """Record `total` SMS in `campaigns` archived files through the store's ledger path."""
    per_file = total // campaigns
    send_at = datetime(2030, 7, 16, 12, 0, tzinfo=PARIS)
    now = datetime.now(UTC)
    began = time.perf_counter()
    for c in range(campaigns):
        name = f"Camp{c}_20300716120000_HQ.csv"
        sms = tuple(
            Sms(
                line=i + 1,
                phone=f"336{(c * per_file + i) % 10**8:08d}",
                message=f"Message {i} de la campagne {c} STOP au 36180",
                sender_asked="MaBoutique",
                sender_applied="MaBoutique",
                septets=40,
                warnings=(),
                price=1,  # matches cost=len(sms) below
            )
            for i in range(per_file)
        )
        verdict = Verdict(
            original_name=name,
            status=Status.ARCHIVED,
            reason=None,
            final_name=f"TreatedByMSI_{name}",
            campaign=Campaign(f"Camp{c}", send_at, False),
            sms=sms,
            cost=len(sms),
            rows=len(sms),
        )
        record = srv.store.record("demo", f"bench-{c}", verdict, now, now)
        srv.store.mark_moved(record.id, verdict.final_name)
        srv.store.mark_mailed(record.id, "skipped")
    return time.perf_counter() - began


def bench_queries(srv: MockServer, path: str, runs: int) -> tuple[list[float], int]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=60)
    times = []
    count = 0
    try:
        for _ in range(runs):
            began = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            times.append(time.perf_counter() - began)
            if resp.status != 200:
                raise SystemExit(f"{path}: HTTP {resp.status}: {body[:200]!r}")
            count = json.loads(body)["count"]
    finally:
        conn.close()
    return times, count


def query_plan(srv: MockServer, where: str, value: str) -> str:
    """SQLite's plan for a filter, in the shape `Store.messages` queries (an index or a scan?)."""
    import sqlite3

    db = sqlite3.connect(srv.data_dir / "state.sqlite3")
    try:
        rows = db.execute(
            "EXPLAIN QUERY PLAN SELECT s.id FROM files f JOIN sms s"
            f" ON s.id BETWEEN f.sms_first AND f.sms_last WHERE {where}"
            " ORDER BY f.id, s.id LIMIT 1000",
            (value,),
        ).fetchall()
    finally:
        db.close()
    return "; ".join(str(r[-1]) for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20, help="start+stop runs (default 20)")
    parser.add_argument("--sms", type=int, default=100_000, help="SMS to record (default 100k)")
    parser.add_argument("--campaigns", type=int, default=20, help="campaigns (default 20)")
    parser.add_argument("--queries", type=int, default=50, help="requests per query (default 50)")
    args = parser.parse_args(argv)

    starts = bench_start_stop(args.starts)
    start_median = statistics.median(starts)
    print(
        f"MockServer start+stop: median {start_median * 1000:.0f} ms, "
        f"min {min(starts) * 1000:.0f} ms, max {max(starts) * 1000:.0f} ms "
        f"over {len(starts)} runs (target <= {START_TARGET * 1000:.0f} ms)"
    )

    ok = start_median <= START_TARGET
    with MockServer() as srv:
        srv.set_credits("demo", args.sms)
        took = record_sms(srv, args.sms, args.campaigns)
        print(
            f"recorded {args.sms:,} SMS in {args.campaigns} files through Store.record in "
            f"{took:.2f} s"
        )
        print("plan, campaign filter: " + query_plan(srv, "f.campaign = ?", "Camp7"))
        print("plan, phone filter:    " + query_plan(srv, "s.phone = ?", "33600000042"))
        per = args.sms // args.campaigns
        cases = [
            (
                f"/api/messages?campaign=Camp7 (default limit 1000 of {per:,})",
                "/api/messages?campaign=Camp7",
            ),
            ("/api/messages?campaign=Camp7&limit=100", "/api/messages?campaign=Camp7&limit=100"),
            (
                "/api/messages?campaign=Camp7&offset=4000&limit=100",
                "/api/messages?campaign=Camp7&offset=4000&limit=100",
            ),
            ("/api/messages?phone=+33600000042", "/api/messages?phone=%2B33600000042"),
        ]
        for label, path in cases:
            times, count = bench_queries(srv, path, args.queries)
            median = statistics.median(times)
            mark = ""
            if path == "/api/messages?campaign=Camp7":
                ok = ok and median <= QUERY_TARGET
                mark = f" (target <= {QUERY_TARGET * 1000:.0f} ms)"
            print(
                f"GET {label}: median {median * 1000:.1f} ms, p90 "
                f"{sorted(times)[int(len(times) * 0.9) - 1] * 1000:.1f} ms, {count} row(s){mark}"
            )
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
