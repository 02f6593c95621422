"""Message length in GSM 03.38 septets (manual 4.2 "Longueur", contract 5.7).

Basic characters count 1, extension characters 2 (escape + character), a line break 2.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# GSM 03.38 default alphabet in code order 0x00-0x7F (3GPP TS 23.038, 6.2.1). 0x1B is the
# escape to the extension table, not a character: a literal ESC in a message is non-GSM.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Extension table (escape + one septet). The contract lists `^ { } \ [ ] ~ | €`; form feed
# (0x1B 0x0A, "page break") is an extension character of GSM 03.38 too, so it counts 2 and
# raises no warning.
GSM_EXTENSION = "\f^{}\\[~]|€"

# Manual: "Le retour à la ligne est encodé par '\n'. Il compte double dans le calcul de la
# longueur du message." (In real GSM LF is a basic character; the manual's rule wins.)
LINE_BREAK = "\n"

MAX_SEPTETS = 160  # manual: "La longueur du message SMS ne doit pas dépasser 160 caractères"

_GSM_CHARS = (GSM_BASIC.replace("\x1b", "")) + GSM_EXTENSION
# Characters counting 2: extension characters and the line break.
DOUBLE_CHARS = frozenset(GSM_EXTENSION + LINE_BREAK)
DOUBLE_RE = re.compile("[" + re.escape(GSM_EXTENSION + LINE_BREAK) + "]")
NON_GSM_RE = re.compile("[^" + re.escape(_GSM_CHARS) + "]")
# Any character that is not a plain 1-septet GSM character (an extension character, a line
# break, a backslash of a two-character `\n`, or a non-GSM character). Most messages have
# none: one search then settles both the count and the warning (the engine's fast path).
PLAIN_GSM = GSM_BASIC.replace("\x1b", "").replace("\n", "")
SPECIAL_RE = re.compile("[^" + re.escape(PLAIN_GSM) + "]")


class Length(NamedTuple):
    """A message's septet count and whether it holds characters outside GSM 03.38."""

    septets: int
    non_gsm: bool


def count_septets(text: str) -> int:
    """Septets `text` takes: 1 a character, 2 an extension character or a line break.

    Characters outside GSM 03.38 count 1 (contract 5.7: "accepted (counted 1)").
    """
    return len(text) + len(DOUBLE_RE.findall(text))


def has_non_gsm(text: str) -> bool:
    """True when `text` holds a character outside GSM 03.38 (contract 5.7: flagged as a
    formatting warning; manual: "les messages seront ... envoyés avec un formatage incorrect")."""
    return NON_GSM_RE.search(text) is not None


def measure(text: str) -> Length:
    """Septet count and non-GSM flag together."""
    return Length(count_septets(text), has_non_gsm(text))
