"""The cyclic GC's pause while big files are judged and recorded (`Pipeline.gc_pause`)."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

# A big file builds ~150k small objects; the cyclic GC, re-run on every allocation batch,
# would cost about a third of the time judging and recording it (bench/pipeline.py) while
# finding nothing to free. It is paused for such files, from JUDGE to RECORD, and only then.
GC_PAUSE_BYTES = 256 * 1024


class GcPause:
    """Counted across worker threads: the GC is off while any big file is in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._restore = True

    @contextlib.contextmanager
    def __call__(self, active: bool) -> Iterator[None]:
        if not active:
            yield
            return
        with self._lock:
            if self._holders == 0:
                self._restore = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._restore:
                    gc.enable()


GC_PAUSE = GcPause()
