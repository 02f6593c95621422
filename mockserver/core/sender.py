"""The sender (TPOA) column: who may be named as sender and when it is applied (contract 5.9)."""

from __future__ import annotations

import re

from mockserver.core.models import Warning_

# Manual 4.2: "Doit commencer par une lettre ; Ne peut contenir que des caractères
# alphanumériques (a-z0-9) et majuscules, ou un espace ; Pas de caractères accentués ou de
# caractères spéciaux ; 3 caractères minimum, 11 maximum". ASCII only; inner spaces count.
SENDER_RE = re.compile(r"[A-Za-z][A-Za-z0-9 ]{2,10}")

# Manual 4.2: "la personnalisation de l'émetteur pour les envois vers la France ne sera prise
# en compte que si la fin du message contient la mention STOP au 36180, précédée d'un espace
# ou d'un retour à la ligne." Exact, case-sensitive text with something before it (a message
# that is only the mention fails); contract 5.9: white space after the mention is ignored.
STOP_MENTION = "STOP au 36180"
STOP_ENDINGS = (" " + STOP_MENTION, "\n" + STOP_MENTION)
_STOP_LOWER = STOP_MENTION.lower()
# Punctuation a user may put after the mention ("STOP au 36180." or "!"): a near miss.
_TRAILING_PUNCTUATION = ".!?,;:…)]}\"'»"

SENDER_RULE = (
    "a sender must start with a letter, hold only letters, digits or spaces (no accents) "
    "and be 3 to 11 characters long"
)


def sender_given(field: str) -> bool:
    """An empty or whitespace-only third column means no sender was asked for."""
    return bool(field) and not field.isspace()


def is_valid_sender(sender: str) -> bool:
    """The manual's TPOA rules (contract 5.9)."""
    return SENDER_RE.fullmatch(sender) is not None


def has_stop_mention(message: str) -> bool:
    """The message ends with `STOP au 36180` preceded by a space or a line break, white space
    after it ignored (contract 5.9)."""
    return message.endswith(STOP_ENDINGS) or message.rstrip().endswith(STOP_ENDINGS)


def stop_mention_warning(message: str) -> Warning_:
    """Why a message lacking the mention keeps the default sender, naming the near miss
    (contract 5.9: "case, missing space, punctuation after it"); call it only when
    has_stop_mention(message) is False."""
    text = message.rstrip()
    bare = text.rstrip(_TRAILING_PUNCTUATION).rstrip()
    if bare != text and (bare.endswith(STOP_MENTION) or bare.lower().endswith(_STOP_LOWER)):
        return Warning_.STOP_MENTION_PUNCTUATION
    if text.endswith(STOP_MENTION):
        return Warning_.STOP_MENTION_NOT_SEPARATED
    if text.lower().endswith(_STOP_LOWER):
        return Warning_.STOP_MENTION_CASE
    return Warning_.SENDER_NOT_APPLIED


def is_french(phone: str) -> bool:
    """A normalised French number is `33` + 9 digits; no other normalised number starts
    with 33 (contract 5.6 rejects them)."""
    return phone.startswith("33")


def applied_sender(phone: str, message: str, asked: str | None, default: str) -> str:
    """The sender the SMS goes out with: the asked one, unless France without the mention
    (then stop_mention_warning(message) says why)."""
    if asked is None:
        return default
    if is_french(phone) and not has_stop_mention(message):
        return default
    return asked
