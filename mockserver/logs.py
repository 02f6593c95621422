"""Logging set-up for the whole program: one readable line per event (`text`) or one JSON
object per line (`json`), both carrying the structured fields a log call passes as
`extra={"fields": {...}}` (e.g. the processor's `login=alice file=X verdict=archived`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("text", "json")

# A marker on the handlers we install, so a second call replaces them instead of stacking.
_OURS = "_allmysms_mock_handler"


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields attached to a record (empty when there are none)."""
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """`2024-05-01 12:00:00,123 INFO mockserver.processor: login=alice file=X ...`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, then the
    record's structured fields as top-level keys (they never override the four above)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in fields_of(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(
    format: str = "text",
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the `mockserver` loggers to `stream` (stderr by default) in `format`.

    Idempotent: calling it again replaces the handler it installed before.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown log format {format!r} (choose text or json)")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    setattr(handler, _OURS, True)
    logger = logging.getLogger("mockserver")
    for old in list(logger.handlers):
        if getattr(old, _OURS, False):
            logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    # Our handler prints everything once; the root logger must not print it again.
    logger.propagate = False
    return handler
