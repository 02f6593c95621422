"""Benchmark of the rule engine on adversarial 8 MB files (issue 16, finding 3): time and peak
memory of `judge` plus the JSON the store keeps, each input in a fresh subprocess.

Run: `python bench/adversarial.py [--size 8000000] [--only NAME]`. Each line gives the CPU
time of `judge`, of the stored JSON (the `rejected` column and `Verdict.to_dict`, what the API
and `check --json` serialise), the peak RSS of the subprocess (ru_maxrss) and the stored size.
Targets (issue 16): every input under 300 MB peak and within the time of a valid 8 MB file
(the `valid` line, the file bench/judge.py times).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEAK_TARGET_MB = 300

# name -> how to make `size` bytes of it
INPUTS = {
    "valid": "the realistic file of bench/judge.py (LF)",
    "quote_a": '`"a\\n` repeated: one unterminated or malformed row a line',
    "semicolon": "`;\\n` repeated: one empty-number row a line",
    "one_line": "a single 8 MB line of `a` (one column, no line end)",
    "nul": "8 MB of NUL bytes",
    "quotes": '8 MB of `"`',
    "bad_number": "`x;m\\n` repeated: one bad-number row a line",
    "latin1": "`0612345678;\\xe9\\n` repeated: one not-UTF-8 row a line",
}


def make(name: str, size: int) -> bytes:
    if name == "valid":
        sys.path.insert(0, str(ROOT / "bench"))
        from judge import make_file  # type: ignore[import-not-found]

        return bytes(make_file(size, 1, "\n"))
    unit = {
        "quote_a": b'"a\n',
        "semicolon": b";\n",
        "one_line": b"a",
        "nul": b"\0",
        "quotes": b'"',
        "bad_number": b"x;m\n",
        "latin1": b"0612345678;\xe9\n",
    }[name]
    return unit * (size // len(unit))


def child(name: str, size: int) -> None:
    from mockserver.core.judge import judge
    from mockserver.core.models import Account

    data = make(name, size)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    account = Account(login="bench", credits=10**9)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    start = time.process_time()
    verdict = judge("Bench_20300101120000_HQ.csv", data, account, now)
    t_judge = time.process_time() - start
    start = time.process_time()
    stored = json.dumps(
        [[r.line, r.error, r.detail, r.value] for r in verdict.rejected], ensure_ascii=False
    )
    api = json.dumps(verdict.to_dict(), ensure_ascii=False)
    t_json = time.process_time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = getattr(verdict, "rejected_total", len(verdict.rejected))
    print(
        json.dumps(
            {
                "name": name,
                "bytes": len(data),
                "rows": verdict.rows,
                "rejected_total": total,
                "rejected_kept": len(verdict.rejected),
                "judge_s": round(t_judge, 2),
                "json_s": round(t_json, 2),
                "peak_mb": round(peak / 1024),
                "baseline_mb": round(base / 1024),
                "stored_mb": round(len(stored) / 1e6, 1),
                "api_mb": round(len(api) / 1e6, 1),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8_000_000)
    parser.add_argument("--only", choices=sorted(INPUTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.size)
        return 0
    worst = 0.0
    valid_s = None
    ok = True
    for name in [args.only] if args.only else list(INPUTS):
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--size", str(args.size)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(f"{name:11} FAILED: {out.stderr.strip().splitlines()[-1:]}")
            ok = False
            continue
        r = json.loads(out.stdout)
        seconds = r["judge_s"] + r["json_s"]
        if name == "valid":
            valid_s = seconds
        else:
            worst = max(worst, seconds)
        ok = ok and r["peak_mb"] <= PEAK_TARGET_MB
        print(
            f"{name:11} judge {r['judge_s']:6.2f} s + json {r['json_s']:5.2f} s CPU, "
            f"peak {r['peak_mb']:5} MB (start {r['baseline_mb']} MB), rows {r['rows']:,}, "
            f"rejected {r['rejected_total']:,} ({r['rejected_kept']:,} kept), "
            f"stored {r['stored_mb']} MB, API {r['api_mb']} MB"
        )
    if valid_s is not None and worst > valid_s:
        print(f"slowest adversarial input {worst:.2f} s > valid file {valid_s:.2f} s")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
