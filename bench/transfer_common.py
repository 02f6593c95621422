"""What the FTP and SFTP transfer benchmarks (`bench/transfer.py`, `bench/transfer_sftp.py`)
share: the scenario sizes and labels, server processes (free port, start-up, stop), the timing
loop (medians, errors, mock/reference ratio), the whole run and its printed report."""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from mockserver.config import Config

REPO = Path(__file__).resolve().parents[1]

BIG = 8_000_000  # the manual's "8 Mo", exactly at the limit
SMALL = 2_000
SEQUENTIAL_FILES = 1000
CLIENTS = 50
FILES_PER_CLIENT = 20
LOGIN = "bench"
PASSWORD = "bench-password"


class Target(Protocol):
    """One server under test, as the timing loop sees it."""

    name: str
    local_dir: Path

    def clean(self) -> None: ...


T = TypeVar("T", bound=Target)


def empty(directory: Path) -> None:
    """Remove the files a run uploaded (targets are emptied between runs)."""
    for path in directory.iterdir():
        path.unlink()


# -- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(
    port: int, proc: subprocess.Popen[bytes], timeout: float = 15, *, banner: bool = False
) -> None:
    """Wait until something accepts connections on `port` (and, with `banner`, sends its
    greeting, e.g. FTP's 220: the server really serves)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if banner:
                    sock.recv(100)
                return
        except OSError:
            time.sleep(0.05)  # a foreign process: polling its port is the only signal
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """The mock stops cleanly when its stdin closes; anything else gets SIGTERM, then SIGKILL."""
    if proc.stdin is not None:
        proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def spawn_mock(
    script: str, flag: str, work: Path, what: str
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Run `script flag <work>/mock` (a mock server alone in a child process, see `mock_config`)
    and return it with the port of its `READY <port>` line and the on-disk SEND_SMS of LOGIN."""
    data_dir = work / "mock"
    proc = subprocess.Popen(
        [sys.executable, script, flag, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "READY":
        stop(proc)
        raise RuntimeError(f"the mock {what} server did not start")
    return proc, int(line[1]), data_dir / "accounts" / LOGIN / "SEND_SMS"


def mock_config(data_dir: Path, overrides: Mapping[str, Any]) -> Config:
    """In the child process: the mock's configuration (one account, LOGIN/PASSWORD, in
    `data_dir`) plus `overrides`, with that account's folder tree made."""
    sys.path.insert(0, str(REPO))
    from mockserver.config import load_config
    from mockserver.tree import make_tree

    config = load_config(
        None,
        env={},
        overrides={
            "server.data_dir": str(data_dir),
            "accounts": [{"login": LOGIN, "password": PASSWORD, "email": "bench@example.com"}],
            **overrides,
        },
    )
    make_tree(data_dir, config.server.layout, LOGIN)
    return config


# -- scenarios --------------------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: float
    files: int
    errors: int


def scenarios(
    one_big: Callable[[T], Outcome],
    many_small: Callable[[T], Outcome],
    concurrent: Callable[[T], Outcome],
) -> dict[str, Callable[[T], Outcome]]:
    """The three scenarios under their report labels."""
    return {
        "one 8 MB upload": one_big,
        f"{SEQUENTIAL_FILES} x 2 KB, one session": many_small,
        f"{CLIENTS} clients x {FILES_PER_CLIENT} x 2 KB": concurrent,
    }


def missing(target: Target, expected: int) -> int:
    """Files a scenario should have left on disk and did not: each one counts as an error."""
    return max(0, expected - sum(1 for _ in target.local_dir.iterdir()))


def measure(
    targets: Sequence[T],
    scenario_table: Mapping[str, Callable[[T], Outcome]],
    runs: int,
    deadline: float,
    reference: str,
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for label, scenario in scenario_table.items():
        row: dict[str, Any] = {}
        for target in targets:
            times: list[float] = []
            errors = 0
            files = 0
            for _ in range(runs):
                if times and time.monotonic() > deadline:
                    break  # keep the whole bench bounded; report how many runs were made
                target.clean()
                outcome = scenario(target)
                times.append(outcome.seconds)
                errors += outcome.errors
                files = outcome.files
            target.clean()
            median = statistics.median(times)
            row[target.name] = {
                "median_s": round(median, 4),
                "runs": len(times),
                "errors": errors,
                "files_per_s": round(files / median, 1),
                "mb_per_s": round(files * (BIG if files == 1 else SMALL) / median / 1e6, 2),
            }
        if "mock" in row and reference in row:
            ratio = row["mock"]["median_s"] / row[reference]["median_s"]
            row[f"ratio_mock_over_{reference}"] = round(ratio, 2)
        results[label] = row
    return results


def benchmark(
    protocol: str,
    start_mock: Callable[[Path], tuple[subprocess.Popen[bytes], T]],
    start_reference: Callable[[Path], tuple[subprocess.Popen[bytes], T]],
    reference: str,
    scenario_table: Mapping[str, Callable[[T], Outcome]],
    runs: int,
    with_reference: bool,
    budget: float,
) -> dict[str, Any]:
    """Start the mock (and the reference server), run every scenario, stop them; the report
    both scripts print or dump as JSON."""
    started = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"allmysms-bench-{protocol}-") as tmp:
        work = Path(tmp)
        try:
            proc, mock = start_mock(work)
            procs.append(proc)
            targets = [mock]
            if with_reference:
                try:
                    proc, other = start_reference(work)
                    procs.append(proc)
                    targets.append(other)
                except (RuntimeError, OSError) as exc:
                    notes.append(f"{reference} not measured: {exc}")
            results = measure(targets, scenario_table, max(1, runs), started + budget, reference)
        finally:
            for proc in procs:
                stop(proc)
    errors = sum(
        v["errors"] for row in results.values() for v in row.values() if isinstance(v, dict)
    )
    return {
        "protocol": protocol,
        "results": results,
        "errors": errors,
        "seconds": round(time.monotonic() - started, 1),
        "notes": notes,
    }


# -- command line -----------------------------------------------------------------------------


def parser(doc: str | None, reference_help: str) -> argparse.ArgumentParser:
    """The flags both scripts take; each adds its own after."""
    result = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    result.add_argument("--runs", type=int, default=3, help="runs per scenario (median)")
    result.add_argument("--json", action="store_true", help="print JSON only")
    result.add_argument(
        "--no-reference", action="store_true", help=f"measure the mock only (no {reference_help})"
    )
    return result


def print_report(report: dict[str, Any], reference: str) -> None:
    protocol = report["protocol"].upper()
    print(f"{protocol} transfer bench ({report['seconds']} s, {report['errors']} errors)")
    for label, row in report["results"].items():
        print(f"  {label}:")
        for name in ("mock", reference):
            if name in row:
                r = row[name]
                print(
                    f"    {name:6} median {r['median_s']:.3f} s over {r['runs']} runs, "
                    f"{r['files_per_s']} files/s, {r['mb_per_s']} MB/s, {r['errors']} errors"
                )
        key = f"ratio_mock_over_{reference}"
        if key in row:
            print(f"    mock/{reference} time ratio: {row[key]}")
    for note in report["notes"]:
        print(f"  note: {note}")
