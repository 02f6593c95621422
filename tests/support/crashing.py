"""Die by SIGKILL right after a chosen step of the first file that reaches it, as a power cut
would: a pipeline hook installed on every `Processor` this process builds, then the processor
alone or the real `serve`. Test code only; production code reads no crash switch.

    python -m tests.support.crashing --at after_record processor --config FILE --until-idle
    python -m tests.support.crashing --at after_move serve --data-dir DIR ...

`--gate FIFO` instead holds the first file that reaches READ until the test opens the FIFO
for writing and closes it (issue 16: a slow recovery, without sleeping or burning CPU).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from mockserver.processing import FileContext, Processor, Step

# The crash points the tests name, and the step after which each one kills.
CRASH_POINTS: dict[str, Step] = {
    "after_claim": Step.CLAIM,
    "after_record": Step.RECORD,
    "after_move": Step.MOVE,  # on disk in ARCHIVES/INVALIDS, not yet marked moved
    "after_mail": Step.MAIL,  # in the Maildir, not yet marked mailed
}


def crash_hook(at: Step) -> Any:
    """A pipeline hook that kills this process right after step `at`."""

    def hook(step: Step, ctx: FileContext) -> None:
        if step is at:
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def crash_every_processor(at: Step) -> None:
    """From now on, every `Processor` built in this process crashes after step `at`."""
    original = Processor.__init__

    @functools.wraps(original)
    def init(self: Processor, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.add_hook(crash_hook(at))

    Processor.__init__ = init  # type: ignore[method-assign]


def gate_hook(fifo: str) -> Any:
    """A pipeline hook that holds the first file after READ until a writer opens `fifo` and
    closes it (the open blocks until then; the read ends at the writer's close)."""
    passed = threading.Event()

    def hook(step: Step, ctx: FileContext) -> None:
        if step is Step.READ and not passed.is_set():
            passed.set()
            with open(fifo, "rb") as gate:
                gate.read()

    return hook


def gate_every_processor(fifo: str) -> None:
    """From now on, every `Processor` built in this process holds its first file at READ."""
    original = Processor.__init__

    @functools.wraps(original)
    def init(self: Processor, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.add_hook(gate_hook(fifo))

    Processor.__init__ = init  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.crashing")
    parser.add_argument("--at", choices=sorted(CRASH_POINTS), default=None)
    parser.add_argument("--gate", default=None, help="a FIFO that holds the first file")
    parser.add_argument("what", choices=("processor", "serve"))
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    rest: list[str] = args.rest
    if args.at is not None:
        crash_every_processor(CRASH_POINTS[args.at])
    if args.gate is not None:
        gate_every_processor(args.gate)
    if args.what == "processor":
        from tests.support import processor_alone

        return processor_alone.main(rest)
    from mockserver.cli import main as cli_main

    return cli_main(["serve", *rest])


if __name__ == "__main__":
    sys.exit(main())
