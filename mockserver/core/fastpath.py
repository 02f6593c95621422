"""The rule engine's fast path (`core.judge`): the one regular expression a plain row costs, and
the shared warning tuples its SMS carry. Pure: standard library only.
"""

from __future__ import annotations

import re

from mockserver.core.length import DOUBLE_CHARS, PLAIN_GSM
from mockserver.core.models import Warning_
from mockserver.core.phone import FRENCH_MOBILE_RE
from mockserver.core.reader import END_PATTERN, EXTRA_PATTERN, FIELD_PATTERN

# Warnings are shared tuples (150,000 SMS must not each carry a fresh one) of the plain
# Warning_ values, which is what the store and the JSON views keep.
NO_WARNING: tuple[str, ...] = ()
NON_GSM: tuple[str, ...] = (Warning_.NON_GSM_CHARACTERS.value,)
# Contract 5.9: the sender was not applied, and why (the near miss, when there is one).
NOT_APPLIED: dict[Warning_, tuple[str, ...]] = {
    w: (w.value,) for w in Warning_ if w is not Warning_.NON_GSM_CHARACTERS
}
NON_GSM_NOT_APPLIED: dict[Warning_, tuple[str, ...]] = {
    w: (Warning_.NON_GSM_CHARACTERS.value, w.value) for w in NOT_APPLIED
}

# The engine's own fast-path record regex: reader.RECORD_RE with two shortcuts that give
# the same results as the general rules, checked by a reference-model test:
# - column 1 tries the French mobile formats first (phone.FRENCH_MOBILE_RE, contract 5.6),
#   quoted or not, without inner spaces: the group holds the 9 digits after 0/33/+33;
# - column 2, quoted, tries "only plain 1-septet GSM characters" first (length.SPECIAL_RE's
#   complement): such a message needs no septet or warning computation; then "1-septet
#   characters only" (below).
# Alternatives backtrack, so a field that fails a shortcut falls to the general form.
_FRENCH = FRENCH_MOBILE_RE.pattern
_PLAIN_QUOTED = "[" + re.escape(PLAIN_GSM.replace('"', "")) + "]*+"
_PHONE_FIELD = (
    r'[ \t]*+(?:"' + _FRENCH + r'"[ \t]*+|' + _FRENCH + r'[ \t]*+|"([^"\n]*+)"[ \t]*+|([^;"\n]*+))'
)
# Issue 15: then "1-septet characters only, some outside GSM 03.38" (no extension character,
# no backslash, no line break: the complement of length.DOUBLE_CHARS): such a message counts
# its length and carries the non-GSM warning, with no search a row (French accents such as
# ê, â, ç, î, ô are outside GSM 03.38). Reached only when the plain form failed, so it
# holds at least one non-GSM character.
_SINGLE_QUOTED = '[^"' + re.escape("".join(sorted(DOUBLE_CHARS))) + "]*+"
_MESSAGE_FIELD = (
    r'[ \t]*+(?:"(' + _PLAIN_QUOTED + r')"[ \t]*+|"(' + _SINGLE_QUOTED + r')"[ \t]*+'
    r'|"([^"\n]*+)"[ \t]*+|([^;"\n]*+))'
)
RECORD_RE = re.compile(
    _PHONE_FIELD
    + ";"
    + _MESSAGE_FIELD
    + "(?:;"
    + FIELD_PATTERN
    + ")?+"
    + EXTRA_PATTERN
    + END_PATTERN
)
