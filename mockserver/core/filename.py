"""Drop-file names: which names are temporary, which are valid campaigns, and the final names.

Manual 4.2: "Nom de la campagne ... Date d'envoi ... Qualité de l'envoi (HQ) ... Option MULT".
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from mockserver.core.models import PREFIX, Campaign, Reason

# Contract 5.4.1: `^[A-Za-z0-9]+_\d{14}_(HQ|LC)(_MULT)?\.csv$`, the quality being one that
# `processing.qualities` lists (HQ only by default). Used with fullmatch (a `$` would
# accept a trailing newline) and with [0-9] rather than \d (which matches any Unicode digit).
# Case-sensitive: `.CSV`, `_hq`, `_lc` or `_mult` are Incorrect_FileName.
_NAME_RE = re.compile(r"([A-Za-z0-9]+)_([0-9]{14})_(HQ|LC)(_MULT)?\.csv")

# Contract 5.10: "Send date: the 14 digits, Europe/Paris time."
PARIS = ZoneInfo("Europe/Paris")

# Contract 3 `processing.qualities`: HQ only unless the configuration adds LC.
DEFAULT_QUALITIES: tuple[str, ...] = ("HQ",)


def expected_form(qualities: Collection[str] = DEFAULT_QUALITIES) -> str:
    """The name grammar in words, with the qualities offered (`_HQ`, or `_<HQ|LC>`)."""
    offered = [q for q in ("HQ", "LC") if q in qualities] or ["HQ"]
    quality = offered[0] if len(offered) == 1 else "<" + "|".join(offered) + ">"
    return f"<campaign>_<YYYYMMDDHHMMSS>_{quality}[_MULT].csv"


EXPECTED_FORM = expected_form()

# Near misses, to tell the user what to fix.
_ANY_CASE_RE = re.compile(_NAME_RE.pattern, re.IGNORECASE)
_DIGIT_COUNT_RE = re.compile(r".*_[0-9]+_(HQ|LC)(_MULT)?\.csv")
_CAMPAIGN_RE = re.compile(r".*_[0-9]{14}_(HQ|LC)(_MULT)?\.csv")


def _offered(qualities: Collection[str]) -> str:
    return f"processing.qualities: {', '.join(qualities) or 'none'}"


def _hint(name: str, qualities: Collection[str]) -> str:
    m = _ANY_CASE_RE.fullmatch(name)
    if m is not None:
        quality = m.group(3).upper()
        if quality not in qualities:
            # e.g. `_lc` where only HQ is offered: fixing the case would not be enough.
            return (
                f" (the quality {quality} is not offered ({_offered(qualities)}); "
                "HQ, LC, MULT and .csv are case-sensitive)"
            )
        if m.group(3) != quality:
            return (
                f" (write the quality {quality} in capitals: "
                "HQ, LC, MULT and .csv are case-sensitive)"
            )
        return " (HQ, LC, MULT and .csv are case-sensitive)"
    if _CAMPAIGN_RE.fullmatch(name):
        return " (the campaign name holds only letters and digits, without spaces or _)"
    if _DIGIT_COUNT_RE.fullmatch(name):
        return " (the send date has 14 digits, YYYYMMDDHHMMSS)"
    return ""


def is_temporary(name: str) -> bool:
    """Contract 5.1: a name ending in `.tmp` (case-sensitive) is never touched.

    Manual 4.2: "il est conseillé d'uploader des fichiers temporaires, avec extension .tmp".
    """
    return name.endswith(".tmp")


def check_filename(name: str, qualities: Collection[str] = DEFAULT_QUALITIES) -> Campaign | str:
    """The campaign a valid name announces, or one sentence saying why the name is incorrect.

    Manual 4.2: "Si le nom de fichier ne correspond pas au bon format et n'est pas un fichier
    temporaire, le fichier sera déclaré invalide". The 14 digits must be a real calendar
    date-time YYYYMMDDHHMMSS (contract 5.4.1). The wall time is read in Europe/Paris with
    zoneinfo's fold=0: a time in the spring-forward gap (e.g. 02:30 on the last Sunday of
    March) keeps the winter offset (+01:00), an ambiguous autumn time is its first (summer)
    occurrence. A date-time that cannot also be expressed in UTC (0001-01-01 before 00:09:21,
    Paris then being UTC+00:09:21) is rejected too, so callers may always convert it.
    """
    m = _NAME_RE.fullmatch(name)
    if m is None:
        return f"the name does not have the form {expected_form(qualities)}{_hint(name, qualities)}"
    campaign, digits, quality, mult = m.groups()
    if quality not in qualities:
        # Manual 2.1: "HQ ..., seule qualité disponible"; LC only where
        # `processing.qualities` lists it (contract 3, 5.4.1).
        return f"the quality {quality} is not offered ({_offered(qualities)})"
    try:
        send_at = datetime(
            int(digits[0:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            int(digits[12:14]),
            tzinfo=PARIS,
        )
        send_at.astimezone(UTC)
    except (ValueError, OverflowError):
        return f"{digits} is not a real date-time YYYYMMDDHHMMSS"
    return Campaign(name=campaign, send_at=send_at, mult=mult is not None, quality=quality)


def parse_filename(name: str, qualities: Collection[str] = DEFAULT_QUALITIES) -> Campaign | None:
    """The campaign of a valid drop-file name, None for an incorrect one (see check_filename)."""
    checked = check_filename(name, qualities)
    return checked if isinstance(checked, Campaign) else None


def final_name(name: str, reason: Reason | None) -> str:
    """Manual 4.3: `TreatedByMSI_<name>` when archived, `TreatedByMSI_<Reason>_<name>` when
    invalid ("TreatedByMSI_Incorrect_FileName_Envoiftp_20131002100000_HQ.csv"). No collision
    suffix here (contract 5.3 is the spool's job)."""
    if reason is None:
        return f"{PREFIX}{name}"
    return f"{PREFIX}{reason.value}_{name}"
