"""A JSON number read as JSON Schema reads it: `5` and `5.0` are the same whole number (the
OpenAPI document's `"type": "integer"`, which a client generated from it may send as `5.0`);
`true` is no number at all, although Python's `bool` is an `int`. Pure and stdlib only."""

from __future__ import annotations

import math
from typing import Any


def whole_number(value: Any) -> int | None:
    """`value` as an `int` when it is a JSON whole number (`5`, `5.0`, `-0.0`); None for
    anything else (`5.5`, `true`, `"5"`, `null`, a non-finite float)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None
