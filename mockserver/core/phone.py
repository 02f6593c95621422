"""Phone numbers: the accepted formats (manual 4.2, contract 5.6) and their normal form."""

from __future__ import annotations

import re
import unicodedata

from mockserver.core.models import RowError

# Manual: "Vers la France, trois formats possibles : 06xxxxxxxx (ou 07xxxxxxxx),
# 336xxxxxxxx (ou 337 xxxxxxxx), +336 xxxxxxxx (ou +337 xxxxxxxx)". Stored as 33 + 9 digits.
# [0-9], not \d: \d would accept Arabic-Indic or full-width digits.
FRENCH_MOBILE_RE = re.compile(r"(?:0|\+?33)([67][0-9]{8})")

# Contract 5.6: "Any other number starting with 0, 33 or +33 is rejected (landline or
# malformed)". A `00` international prefix starts with 0, so it is rejected here too.
FRENCH_PREFIXES = ("0", "33", "+33")

# Manual: "Vers l'international, deux formats possibles : +CCxxxxxxxx, CCxxxxxxxx" with
# "CC ... 1 à 3 chiffres", and "il n'y a pas de vérification effectuée quant à la longueur
# des numéros de téléphones étrangers"; contract 5.6: a country code not starting with 0,
# at least 4 and at most 15 digits in all (E.164), no further length check. Stored without
# the `+`.
INTERNATIONAL_RE = re.compile(r"\+?([1-9][0-9]{3,14})")
INTERNATIONAL_DIGITS = "4 to 15 digits"

# Contract 5.4.2 / 5.12: a spreadsheet's header row. Column 1 of the first non-blank row
# holds no digit and reads as a word or a few ("Téléphone", "N° mobile", "phone_number").
_HEADER_RE = re.compile(r"[^\W\d_][^\W\d]*(?:[ .'’°/()-]+[^\W\d]*)*\.?")


def check_number(raw: str) -> tuple[str, None] | tuple[None, RowError]:
    """(normalised number, None) or (None, why the row is rejected).

    Contract 5.6: "spaces are ignored": only U+0020 is removed, anywhere in the number.
    Any other character (tab inside the number, `.`, `-`, `(`, NUL, a non-breaking space)
    makes the number invalid: the manual's formats have none of them.
    """
    number = raw.replace(" ", "")
    if not number:
        return None, RowError.EMPTY_NUMBER
    m = FRENCH_MOBILE_RE.fullmatch(number)
    if m is not None:
        return "33" + m.group(1), None
    if number.startswith(FRENCH_PREFIXES):
        # Manual: "Tout envoi vers un téléphone fixe ou un numéro ne respectant pas le
        # formatage défini ci-dessus sera rejeté."
        return None, RowError.LANDLINE
    m = INTERNATIONAL_RE.fullmatch(number)
    if m is not None:
        return m.group(1), None
    return None, RowError.BAD_NUMBER


# Words a spreadsheet's phone column is titled with (accents and case ignored). A first row
# whose column 1 reads as words but names none of them ("N/A", "inconnu") is a bad number:
# a real recipient row must never be hidden as a header.
_HEADER_WORDS = frozenset(
    [
        "telephone",
        "telephones",
        "tel",
        "phone",
        "phones",
        "numero",
        "numeros",
        "num",
        "number",
        "numbers",
        "mobile",
        "mobiles",
        "portable",
        "portables",
        "gsm",
        "cellulaire",
        "msisdn",
        "destinataire",
        "destinataires",
        "recipient",
        "recipients",
        "contact",
        "contacts",
    ]
)


def looks_like_header(raw: str) -> bool:
    """Column 1 holds no digit, reads as words, and one of them titles a phone column
    (`Téléphone`, `N° mobile`, `phone_number`): a column title, not a number."""
    text = raw.strip(" \t")
    if _HEADER_RE.fullmatch(text) is None:
        return False
    plain = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(c if c.isalpha() else " " for c in plain if not unicodedata.combining(c))
    return any(word in _HEADER_WORDS for word in letters.split())


def normalise_number(raw: str) -> str | None:
    """The stored form of an accepted number (`33` + 9 digits, or 4-15 digits), else None.

    Idempotent: normalise_number(normalise_number(x)) == normalise_number(x).
    """
    return check_number(raw)[0]
