"""Benchmark of the rule engine on adversarial 8 MB files (issue 16, finding 3): time and peak
memory of `judge` plus the JSON the store keeps, each input in a fresh subprocess.

Run: `python bench/adversarial.py [--size 8000000] [--only NAME] [--runs 1]`. Each line gives
the ratio of its time to the valid file's (measured first, in the same run), the CPU time of
`judge`, of the stored JSON (the `rejected` column and `Verdict.to_dict`, what the API and
`check --json` serialise), the peak RSS of the subprocess (ru_maxrss) and the stored size: the
figures of the median of `--runs` fresh subprocesses.
Targets (issue 16): every input under 300 MB peak and within the time of a valid 8 MB file
(the `valid` line, the file bench/judge.py times): exits 0 when every ratio is <= 1.0 and
every peak under 300 MB.
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
    "spaces": "`  \\n` repeated: blank lines only (no row)",
    "few": "`a\\n` repeated: one too-few-columns row a line",
    "landline": "`0x;m\\n` repeated: one landline row a line",
    "mixed": "`x;m`, `;`, a blank line, ` a`, `0x;m` in turn: every bulk shape mixed",
    "mixed_latin1": "`\\xe9\\n;\\n` repeated: not-UTF-8 and empty-number rows in turn",
    "sender": "`x;m;Ab\\n` repeated: a bad number and a bad sender a line (3 columns)",
    "duplicates": "`0612345678;a\\n` repeated: valid rows, each a duplicate of the last",
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
        "spaces": b"  \n",
        "few": b"a\n",
        "landline": b"0x;m\n",
        "mixed": b"x;m\n;\n\n a\n0x;m\n",
        "mixed_latin1": b"\xe9\n;\n",
        "sender": b"x;m;Ab\n",
        "duplicates": b"0612345678;a\n",
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
    parser.add_argument("--runs", type=int, default=1, help="fresh processes an input (median)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.size)
        return 0
    valid_s = None
    ok = True
    missed: list[str] = []
    names = [args.only] if args.only else list(INPUTS)
    if "valid" not in names:
        names.insert(0, "valid")  # the reference of every ratio, measured in the same run
    for name in names:
        results = []
        for _ in range(args.runs):
            out = subprocess.run(
                [sys.executable, __file__, "--child", name, "--size", str(args.size)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                break
            results.append(json.loads(out.stdout))
        if len(results) < args.runs:
            print(f"{name:12} FAILED: {out.stderr.strip().splitlines()[-1:]}")
            ok = False
            continue
        # The run of median time, its figures all from the same run.
        results.sort(key=lambda r: r["judge_s"] + r["json_s"])
        r = results[len(results) // 2]
        seconds = r["judge_s"] + r["json_s"]
        if name == "valid":
            valid_s = seconds
        ratio = seconds / valid_s if valid_s else float("nan")
        if ratio > 1.0 or r["peak_mb"] > PEAK_TARGET_MB:
            missed.append(name)
        print(
            f"{name:12} {ratio:5.2f}x valid: judge {r['judge_s']:5.2f} s + json "
            f"{r['json_s']:4.2f} s CPU, "
            f"peak {r['peak_mb']:5} MB (start {r['baseline_mb']} MB), rows {r['rows']:,}, "
            f"rejected {r['rejected_total']:,} ({r['rejected_kept']:,} kept), "
            f"stored {r['stored_mb']} MB, API {r['api_mb']} MB"
        )
    if missed:
        print(f"over the valid file's time or {PEAK_TARGET_MB} MB: {', '.join(missed)}")
    return 0 if ok and not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())
