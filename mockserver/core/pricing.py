"""What an SMS costs, in credits (contract 3 `[pricing]`, 5.4.4): by quality, then by the
destination's country calling code (the longest prefix of the normalised number wins), with a
default. AllMySMS bills in credits, a French SMS costing 15 (its HTTP API answers
`creditsUsed: 15` for one SMS; its credits-by-country call gives `FR: 15`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

FRENCH_SMS_CREDITS = 15
DEFAULT_KEY = "default"


def _frozen(table: Mapping[str, Mapping[str, int]]) -> Mapping[str, Mapping[str, int]]:
    return MappingProxyType({q: MappingProxyType(dict(p)) for q, p in table.items()})


def _problem(table: Mapping[str, Mapping[str, int]]) -> str | None:
    """Why `table` is not a price table, or None."""
    for quality, prices in table.items():
        if DEFAULT_KEY not in prices:
            return f"pricing.{quality}: no `default` price"
        for key, credits in prices.items():
            if key != DEFAULT_KEY and not (key.isascii() and key.isdigit()):
                return f"pricing.{quality}.{key}: a prefix is digits (a calling code)"
            if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
                return f"pricing.{quality}.{key}: a price is a whole number of credits, 0 or more"
    return None


@dataclass(frozen=True)
class PriceTable:
    """`{quality: {"default": credits, "<calling code>": credits, ...}}`. Every quality has
    a `default`; prefixes are digits (a calling code, or a longer prefix of one); prices are
    whole numbers of credits, 0 or more (a bad table raises ValueError when built)."""

    table: Mapping[str, Mapping[str, int]] = field(
        default_factory=lambda: _frozen(
            {
                "HQ": {DEFAULT_KEY: FRENCH_SMS_CREDITS, "33": FRENCH_SMS_CREDITS},
                "LC": {DEFAULT_KEY: FRENCH_SMS_CREDITS},
            }
        )
    )
    key_length: int = field(init=False, compare=False, repr=False, default=0)
    """How many leading digits of a number can decide its price (the longest prefix)."""

    def __post_init__(self) -> None:
        problem = _problem(self.table)
        if problem is not None:
            raise ValueError(problem)
        object.__setattr__(self, "table", _frozen(self.table))
        longest = max(
            (len(p) for q in self.table.values() for p in q if p != DEFAULT_KEY), default=0
        )
        object.__setattr__(self, "key_length", longest)
        # Per quality, the prefix lengths its table really has, longest first: a price is
        # found in at most that many lookups, however long the longest prefix is.
        lengths = {
            quality: tuple(sorted({len(p) for p in prices if p != DEFAULT_KEY}, reverse=True))
            for quality, prices in self.table.items()
        }
        object.__setattr__(self, "_lengths", lengths)

    def flat_price(self, quality: str) -> int | None:
        """The one price every SMS of `quality` costs when its table has a single value
        (the default table: 15 everywhere), else None (the number decides)."""
        prices = self.table.get(quality)
        if prices is None:
            return FRENCH_SMS_CREDITS
        values = set(prices.values())
        return values.pop() if len(values) == 1 else None

    def price(self, quality: str, phone: str) -> int:
        """The credits one SMS of `quality` to the normalised number `phone` costs: the entry
        of the longest prefix of `phone`, else the quality's `default`. A quality the table
        does not list costs FRENCH_SMS_CREDITS (the rule engine never raises)."""
        prices = self.table.get(quality)
        if prices is None:
            return FRENCH_SMS_CREDITS
        lengths: dict[str, tuple[int, ...]] = self._lengths  # type: ignore[attr-defined]
        for size in lengths[quality]:
            if size <= len(phone):
                found = prices.get(phone[:size])
                if found is not None:
                    return found
        return prices[DEFAULT_KEY]


DEFAULT_PRICES = PriceTable()
