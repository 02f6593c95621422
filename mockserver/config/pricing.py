"""The `[pricing]` tables (contract 3): credits an SMS costs, by quality and by the destination's
country calling code, validated into a `core.pricing.PriceTable`.

`[pricing]` is a table of tables (`[pricing.HQ]`, `[pricing.LC]`) with keys chosen by the user
(calling codes), so it is not a `SECTION_KEY` setting: like `[[accounts]]`, the TOML file holds
it, one JSON environment variable (`ALLMYSMS_MOCK_PRICING_JSON`) replaces it, and the library
takes it whole (`MockServer(pricing={...})`, `overrides={"pricing": ...}`).

Each source (the file, the environment, an override) is applied over the table before it, one
quality at a time: a quality it names gets exactly the prices it lists, keeping the earlier
`default` when it gives none; a quality it does not name is left as it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mockserver.config.checks import as_int, config_error
from mockserver.core.pricing import DEFAULT_PRICES, PriceTable
from mockserver.core.text import quote_value as show

ENV_PRICING = "ALLMYSMS_MOCK_PRICING_JSON"
QUALITIES = ("HQ", "LC")
MAX_PRICE = 1_000_000  # credits for one SMS; a larger value is surely a typo
_CALLING_CODE = re.compile(r"[0-9]{1,15}")
_PRICE = f"an integer 0-{MAX_PRICE}"


def _key_name(where: str, key: Any) -> str:
    """`pricing.HQ.default`, or `pricing.HQ."33"` for a calling code (TOML's spelling)."""
    if key == "default":
        return f"{where}.default"
    text = str(key).replace("\\", "\\\\").replace('"', '\\"')
    return f'{where}."{text}"'


def _quality(body: Any, where: str, before: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(body, Mapping):
        raise config_error(where, f"must be a table of prices, like [{where}], got {show(body)}")
    prices: dict[str, int] = {"default": before["default"]}
    for key, value in body.items():
        name = _key_name(where, key)
        if not isinstance(key, str) or (key != "default" and not _CALLING_CODE.fullmatch(key)):
            raise config_error(
                name, 'unknown key (expected "default" or a calling code of 1-15 digits)'
            )
        try:
            prices[key] = as_int(value, 0, MAX_PRICE, _PRICE)
        except ValueError as exc:
            raise config_error(name, str(exc)) from None
    return prices


def apply_pricing(before: PriceTable, given: Any, where: str) -> PriceTable:
    """`before` with the qualities of `given` (a `{quality: {key: credits}}` mapping, or a
    `PriceTable`) replaced; ConfigError naming the key (`pricing.HQ."3x"`) on a bad one."""
    if isinstance(given, PriceTable):
        return given
    if not isinstance(given, Mapping):
        raise config_error(where, f"must be a table of quality tables, got {show(given)}")
    table = {quality: dict(prices) for quality, prices in before.table.items()}
    for quality, body in given.items():
        if quality not in QUALITIES:
            raise config_error(
                f"{where}.{quality}", f"unknown quality (expected one of {', '.join(QUALITIES)})"
            )
        table[quality] = _quality(body, f"{where}.{quality}", table[quality])
    return PriceTable(table=table)


__all__ = ["DEFAULT_PRICES", "ENV_PRICING", "QUALITIES", "apply_pricing"]
