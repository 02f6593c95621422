"""Time `allmysms-mock serve` from launch to its READY line, and its idle memory, against the
floor of the same libraries started bare in the same run.

    python bench/serve.py [--runs 7]

Three columns, every run interleaved so that the machine's load hits each alike:

- `python -c pass`: the interpreter's own start-up;
- bare servers: one process that starts what `serve` is made of and nothing else: a pyftpdlib
  FTP server on its own thread, then one asyncio loop thread with an asyncssh SFTP server (an
  Ed25519 host key made at start, as `serve` makes one in a fresh data dir) and an aiohttp
  site, then prints the same READY line (issue 15: "our floor");
- `serve`: the real command on a fresh data dir, every port 0.

Idle RSS is read 0.5 s after READY (each process has then settled). Targets (issue 15):
READY <= 0.5 s and idle RSS <= 55 MiB, medians.

Bytecode: an installed package has its `.pyc` files (pip compiles them), a checkout run with
`PYTHONDONTWRITEBYTECODE=1` compiles every module of the mock at every start (about 0.2 s of
CPU). The children therefore get a private `PYTHONPYCACHEPREFIX`, warmed by one start of each
that is not counted; `--cold` keeps the environment as it is (and says whether it compiles).
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
from collections.abc import Callable

READY_TARGET = 0.5  # seconds, median
RSS_TARGET = 55.0  # MiB, median
SETTLE = 0.5  # seconds after READY before idle RSS is read


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(x.split()[1]) for x in status if x.startswith("VmRSS:")) / 1024


def _until_ready(args: list[str]) -> tuple[float, float]:
    """Launch `args`, time it to its READY line, read its RSS once settled, SIGTERM it."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY "):
                break
        else:
            raise RuntimeError(f"{args[1:3]} exited {proc.wait()} before READY")
        ready = time.perf_counter() - started
        time.sleep(SETTLE)
        rss = _rss_mib(proc.pid)
        proc.send_signal(signal.SIGTERM)
        if proc.wait(timeout=15) != 0:
            raise RuntimeError(f"{args[1:3]} exited {proc.returncode} on SIGTERM")
        return ready, rss
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def serve_once() -> tuple[float, float]:
    data_dir = tempfile.mkdtemp(prefix="bench-serve-")
    try:
        args = [sys.executable, "-m", "mockserver", "serve", "--data-dir", data_dir]
        args += ["--ftp-port", "0", "--sftp-port", "0", "--http-port", "0"]
        return _until_ready(args)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def bare_once() -> tuple[float, float]:
    data_dir = tempfile.mkdtemp(prefix="bench-bare-")
    try:
        return _until_ready([sys.executable, __file__, "--bare-child", data_dir])
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def python_once() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def bare_child(root: str) -> None:
    """The floor: pyftpdlib, asyncssh and aiohttp servers in one process, bare, then READY."""
    import asyncio
    import threading

    import asyncssh
    from aiohttp import web
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    authorizer = DummyAuthorizer()
    authorizer.add_user("demo", "demo", root, perm="elradfmw")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer})
    ftp = FTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=ftp.serve_forever, kwargs={"timeout": 0.05}, daemon=True).start()

    class Server(asyncssh.SSHServer):
        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == "demo" and password == "demo"

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def start() -> tuple[int, int]:
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(os.path.join(root, "ssh_host_ed25519_key"))
        sftp = await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[key], server_factory=Server, sftp_factory=True
        )
        app = web.Application()
        app.router.add_get("/health", health)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        sftp_port = sftp.sockets[0].getsockname()[1]
        http_port = runner.addresses[0][1]
        return int(sftp_port), int(http_port)

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    sftp_port, http_port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    ftp_port = ftp.socket.getsockname()[1]
    print(f"READY ftp={ftp_port} sftp={sftp_port} http={http_port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    ftp.close_all()
    loop.call_soon_threadsafe(loop.stop)


def _median(fn: Callable[[], tuple[float, float]], acc: tuple[list[float], list[float]]) -> None:
    ready, rss = fn()
    acc[0].append(ready)
    acc[1].append(rss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cold", action="store_true", help="no private bytecode cache")
    parser.add_argument("--bare-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        bare_child(args.bare_child)
        return 0
    cache = None
    if not args.cold:
        cache = tempfile.mkdtemp(prefix="bench-pycache-")
        os.environ["PYTHONPYCACHEPREFIX"] = cache
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        bare_once()
        serve_once()  # warm-up: writes the bytecode, not counted
    try:
        return _measure(args.runs, cache)
    finally:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)


def _measure(runs: int, cache: str | None) -> int:
    load = os.getloadavg()[0]
    base: list[float] = []
    bare: tuple[list[float], list[float]] = ([], [])
    ours: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        base.append(python_once())
        _median(bare_once, bare)
        _median(serve_once, ours)
    b = statistics.median(base)
    br, bm = statistics.median(bare[0]), statistics.median(bare[1])
    r, m = statistics.median(ours[0]), statistics.median(ours[1])
    ok_r, ok_m = r <= READY_TARGET, m <= RSS_TARGET
    compiled = (
        "bytecode cached (as installed)"
        if cache
        else (
            "no bytecode written (PYTHONDONTWRITEBYTECODE)"
            if os.environ.get("PYTHONDONTWRITEBYTECODE")
            else "the environment's bytecode"
        )
    )
    print(f"medians of {runs} runs, interleaved; {compiled}")
    print(f"{'':22}{'python -c pass':>16}{'bare servers':>14}{'serve':>10}  ratio  target")
    print(
        f"{'until READY (ms)':22}{b * 1000:16.0f}{br * 1000:14.0f}{r * 1000:10.0f}"
        f"  {r / br:4.2f}x  <= {READY_TARGET * 1000:.0f} ms {'met' if ok_r else 'MISSED'}"
    )
    print(
        f"{'idle RSS (MiB)':22}{'':16}{bm:14.1f}{m:10.1f}"
        f"  {m / bm:4.2f}x  <= {RSS_TARGET:.0f} MiB {'met' if ok_m else 'MISSED'}"
    )
    print(f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after, {os.cpu_count()} cores")
    return 0 if ok_r and ok_m else 1


if __name__ == "__main__":
    raise SystemExit(main())
