"""Benchmark of the rule engine: `judge` on an 8 MB file against a bare `csv.reader` pass.

Run: `python bench/judge.py [--runs 5] [--size 8000000] [--seed 1] [--lf]`. Targets: judge at most
4x the time of `list(csv.reader(...))` over the same bytes, and a tracemalloc peak of at most
5x the file size.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mockserver.core.judge import judge
from mockserver.core.models import Account
from mockserver.core.pricing import DEFAULT_PRICES, PriceTable

WORDS = (
    "Bonjour", "votre", "commande", "est", "prête", "à", "retirer", "en", "magasin", "dès",
    "demain", "matin", "réduction", "de", "20%", "sur", "tout", "le", "rayon", "été", "Noël",
    "rendez-vous", "confirmé", "le", "à", "h", "merci", "de", "votre", "fidélité", "code",
    "promo", "livraison", "offerte", "n'oubliez", "pas", "votre", "colis", "arrive",
    "aujourd'hui", "entre", "et", "heures", "à", "bientôt", "l'équipe",
)  # fmt: skip
SENDERS = ("MaBoutique", "Pharma2000", "Garage Auto", "InfoMairie", "Resto")
STOP = " STOP au 36180"


def _phone(rng: random.Random) -> str:
    digits = f"{rng.randrange(10**8):08d}"
    kind = rng.random()
    mobile = rng.choice("67")
    if kind < 0.45:
        return f"0{mobile}{digits}"
    if kind < 0.75:
        return f"33{mobile}{digits}"
    if kind < 0.92:
        return f"+33 {mobile} {digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:]}"
    country = rng.choice(("32", "41", "44", "49", "1", "212", "352"))
    return f"+{country}{rng.randrange(10**8, 10**10)}"


def _message(rng: random.Random, with_stop: bool) -> str:
    # Mostly short messages (20-60 characters), a tail up to 140, as real campaigns are.
    target = min(140, 20 + int(rng.expovariate(1 / 12)))
    if with_stop:
        target = max(target - len(STOP), 5)
    words: list[str] = []
    size = 0
    while size < target:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    text = " ".join(words)[:target].rstrip()
    roll = rng.random()
    if roll < 0.05:
        text = text.replace(" ", "\\n", 1)  # the manual's two-character line break
    elif roll < 0.06:
        text = text.replace(" ", "\r\n", 1)  # a real line break inside the quotes
    return text + (STOP if with_stop else "")


def make_file(size: int, seed: int, newline: str) -> bytes:
    """A realistic drop file of at most `size` bytes, deterministic for `seed`."""
    rng = random.Random(seed)
    out: list[bytes] = []
    total = 0
    while True:
        with_sender = rng.random() < 0.2
        phone = _phone(rng)
        message = _message(rng, with_sender and rng.random() < 0.8)
        if rng.random() < 0.1 and '"' not in message and "\r" not in message:
            row = f"{phone};{message}"  # some tools do not quote
        else:
            row = '"{}";"{}"'.format(phone, message.replace('"', '""'))
        if with_sender:
            row += f';"{rng.choice(SENDERS)}"'
        data = (row + newline).encode()
        if total + len(data) > size:
            break
        out.append(data)
        total += len(data)
    return b"".join(out)


def _timings(fns: list[Callable[[], object]], runs: int) -> list[tuple[float, float]]:
    """(median CPU seconds, median wall seconds) of each function, runs interleaved so that a
    change of machine load hits every function alike. CPU time (`time.process_time`) is the
    figure compared: other processes on the machine barely move it."""
    cpu: list[list[float]] = [[] for _ in fns]
    wall: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            fn()
            cpu[i].append(time.process_time() - start_cpu)
            wall[i].append(time.perf_counter() - start_wall)
    return [(statistics.median(c), statistics.median(w)) for c, w in zip(cpu, wall, strict=True)]


# Contract 3 `[pricing]`: a table a user might write, plus one 15-digit prefix (the longest a
# calling-code prefix may be), which defeats the engine's memo by leading digits.
VARIED_PRICES = PriceTable(
    {
        "HQ": {"default": 15, "33": 15, "3361": 14, "44": 20, "4477": 21, "336123456789012": 9},
        "LC": {"default": 10},
    }
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=8_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lf", action="store_true", help="LF line ends instead of CRLF")
    parser.add_argument("--mult", action="store_true", help="judge as a _MULT file")
    parser.add_argument(
        "--prices",
        choices=("default", "varied"),
        default="default",
        help="the price table: the default one (15 everywhere), or a varied one with prefixes "
        "of 2 to 15 digits (every SMS looked up by its number)",
    )
    args = parser.parse_args()
    prices = DEFAULT_PRICES if args.prices == "default" else VARIED_PRICES

    data = make_file(args.size, args.seed, "\n" if args.lf else "\r\n")
    name = "Bench_20300101120000_HQ" + ("_MULT" if args.mult else "") + ".csv"
    account = Account(login="bench", credits=10**9)
    now = datetime(2030, 1, 1, tzinfo=UTC)

    verdict = judge(name, data, account, now, prices=prices)
    print(
        f"file: {len(data):,} bytes, {verdict.rows:,} rows, {len(verdict.sms):,} SMS, "
        f"{len(verdict.rejected):,} rejected, status {verdict.status.value}"
    )

    def run_judge() -> None:
        judge(name, data, account, now, prices=prices)

    def run_csv() -> None:
        list(csv.reader(io.StringIO(data.decode()), delimiter=";"))

    (t_csv, w_csv), (t_judge, w_judge) = _timings([run_csv, run_judge], args.runs)

    tracemalloc.start()
    kept = judge(name, data, account, now, prices=prices)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    tracemalloc.start()
    run_csv()
    csv_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    ratio = t_judge / t_csv
    mem = peak / len(data)
    runs = f"median of {args.runs}"
    print(f"csv.reader: {t_csv * 1000:8.1f} ms CPU, {w_csv * 1000:8.1f} ms wall ({runs})")
    print(f"judge:      {t_judge * 1000:8.1f} ms CPU, {w_judge * 1000:8.1f} ms wall ({runs})")
    print(f"ratio:      {ratio:8.2f}  (target <= 4)")
    print(f"peak:       {peak / 1e6:8.1f} MB = {mem:.2f}x the file (target <= 5)")
    print(f"  of which the returned Verdict: {retained / 1e6:.1f} MB = {retained / len(data):.2f}x")
    print(f"  for scale, csv.reader's peak: {csv_peak / 1e6:.1f} MB = {csv_peak / len(data):.2f}x")
    return 0 if ratio <= 4 and mem <= 5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
