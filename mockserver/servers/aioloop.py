"""The asyncio loop SFTP and the HTTP API share (issue 16): a selector loop whose listeners
back off once, quietly, when the process runs out of descriptors.

CPython's `_accept_connection` (3.11 to 3.14, fixed upstream by python/cpython#151616) does
not stop after a failed accept: for each of the `backlog` iterations left it calls the
exception handler (a traceback each with the default one) and schedules one more retry a
second later. Each of those retries re-arms the listener, which fails again `backlog` times:
a `serve` out of descriptors logged "socket.accept() out of system resource" 57,738 times in
20 s. Here each call accepts one connection at a time through the stock method and stops at
the first one that is not accepted (nothing waiting, or a resource error: then exactly one
retry is scheduled, and the handler hears of it once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

# Connections accepted per readiness of a listener (the stock loop takes up to `backlog`,
# 100 or 128): a burst of refused connections then holds fewer descriptors at once.
MAX_ACCEPTS_PER_WAKEUP = 16

Handler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class Loop(asyncio.SelectorEventLoop):
    """`asyncio.SelectorEventLoop` with the bounded accept above."""

    _accepted = False

    def _accept_connection(
        self,
        protocol_factory: Any,
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *rest: Any,
    ) -> None:
        for _ in range(min(backlog, MAX_ACCEPTS_PER_WAKEUP)):
            self._accepted = False
            super()._accept_connection(  # type: ignore[misc]
                protocol_factory, sock, sslcontext, server, 1, *rest
            )
            if not self._accepted:
                return  # nothing waiting, or out of resources (one retry scheduled)

    def _accept_connection2(self, *args: Any, **kwargs: Any) -> Any:
        # Called by the stock `_accept_connection` for each connection it accepted.
        self._accepted = True
        return super()._accept_connection2(*args, **kwargs)  # type: ignore[misc]


def new_loop(handler: Handler) -> Loop:
    """A `Loop` with its exception handler already set: before any server listens on it."""
    loop = Loop()
    loop.set_exception_handler(handler)
    return loop


def compatible() -> bool:
    """The private methods `Loop` wraps are there (checked by the tests)."""
    base = asyncio.selector_events.BaseSelectorEventLoop
    return callable(getattr(base, "_accept_connection", None)) and callable(
        getattr(base, "_accept_connection2", None)
    )
