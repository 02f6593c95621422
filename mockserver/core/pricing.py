"""What an SMS costs, in credits (contract 3 `[pricing]`, 5.4.4): by quality, then by the
destination's country calling code (the longest prefix of the normalised number wins), with a
default. AllMySMS bills in credits, a French SMS costing 15 (its HTTP API answers
`creditsUsed: 15` for one SMS; its credits-by-country call gives `FR: 15`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

FRENCH_SMS_CREDITS = 15


def _frozen(table: Mapping[str, Mapping[str, int]]) -> Mapping[str, Mapping[str, int]]:
    return MappingProxyType({q: MappingProxyType(dict(p)) for q, p in table.items()})


@dataclass(frozen=True)
class PriceTable:
    """`{quality: {"default": credits, "<calling code>": credits, ...}}`. Every quality has
    a `default`; prefixes are digits (a calling code, or a longer prefix of one)."""

    table: Mapping[str, Mapping[str, int]] = field(
        default_factory=lambda: _frozen(
            {
                "HQ": {"default": FRENCH_SMS_CREDITS, "33": FRENCH_SMS_CREDITS},
                "LC": {"default": FRENCH_SMS_CREDITS},
            }
        )
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", _frozen(self.table))

    @property
    def key_length(self) -> int:
        """How many leading digits of a number can decide its price (the longest prefix)."""
        return max((len(p) for q in self.table.values() for p in q if p != "default"), default=0)

    def price(self, quality: str, phone: str) -> int:
        """The credits one SMS of `quality` to the normalised number `phone` costs: the entry
        of the longest prefix of `phone`, else the quality's `default`."""
        prices = self.table[quality]
        for size in range(min(self.key_length, len(phone)), 0, -1):
            found = prices.get(phone[:size])
            if found is not None:
                return found
        return prices["default"]


DEFAULT_PRICES = PriceTable()
