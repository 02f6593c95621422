"""Time `allmysms-mock serve` from launch to its READY line, and its idle memory.

    python bench/serve.py [--runs 7]

Baseline measured in the same run: `python -c pass` (the interpreter's own start-up), so the
ratio shows what the mock adds. Targets (issue 3): ready <= 0.6 s median, idle RSS <= 60 MiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def serve_once() -> tuple[float, float]:
    data_dir = tempfile.mkdtemp(prefix="bench-serve-")
    args = [sys.executable, "-m", "mockserver", "serve", "--data-dir", data_dir]
    args += ["--ftp-port", "0", "--sftp-port", "0", "--http-port", "0"]
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY "):
                break
        else:
            raise RuntimeError(f"serve exited {proc.wait()} before READY")
        ready = time.perf_counter() - started
        with open(f"/proc/{proc.pid}/status", encoding="ascii") as status:
            rss_kib = next(int(x.split()[1]) for x in status if x.startswith("VmRSS:"))
        proc.send_signal(signal.SIGTERM)
        if proc.wait(timeout=15) != 0:
            raise RuntimeError(f"serve exited {proc.returncode} on SIGTERM")
        return ready, rss_kib / 1024
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def python_once() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    base, ready, rss = [], [], []
    for _ in range(args.runs):
        base.append(python_once())
        r, m = serve_once()
        ready.append(r)
        rss.append(m)
    b, r, m = statistics.median(base), statistics.median(ready), statistics.median(rss)
    print(f"python -c pass      median {b * 1000:7.1f} ms  ({args.runs} runs)")
    print(f"serve until READY   median {r * 1000:7.1f} ms  ratio {r / b:.1f}x  target <= 600 ms")
    print(f"serve idle RSS      median {m:7.1f} MiB               target <= 60 MiB")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
