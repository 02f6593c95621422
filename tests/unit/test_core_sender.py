"""Sender (TPOA) rules and the STOP-mention rule (manual 4.2, contract 5.9)."""

from __future__ import annotations

import pytest

from mockserver.core.models import Warning_
from mockserver.core.sender import (
    applied_sender,
    has_stop_mention,
    is_valid_sender,
    sender_given,
    stop_mention_warning,
)


@pytest.mark.parametrize(
    "sender",
    ["Abc", "abc", "MaBoutique", "Garage Auto", "A1 2", "Pharma2000", "Z  9", "ABCDEFGHIJK"],
)
def test_valid_senders(sender: str) -> None:
    """Manual 4.2: "Doit commencer par une lettre ; Ne peut contenir que des caractères
    alphanumériques (a-z0-9) et majuscules, ou un espace ; 3 caractères minimum, 11 maximum"."""
    assert is_valid_sender(sender)


@pytest.mark.parametrize(
    "sender",
    [
        "Ab",  # 2 characters
        "ABCDEFGHIJKL",  # 12 characters
        "1abc",  # starts with a digit
        " Abc",  # starts with a space
        "Expéditeur",  # "Pas de caractères accentués" (the manual's own example!)
        "Ma-Boutique",  # "ni de caractères spéciaux"
        "Ma_Bout",
        "Ma.Bout",
        "Abc\n",
        "Ab\tc",
        "ＡＢＣ",  # full-width letters
        "Abc\x00",
        "36180",
    ],
)
def test_invalid_senders(sender: str) -> None:
    """Manual 4.2: "Pas de caractères accentués ou de caractères spéciaux", "Doit commencer
    par une lettre", "3 caractères minimum, 11 maximum"; contract 5.9."""
    assert not is_valid_sender(sender)


@pytest.mark.parametrize(
    ("field", "given"),
    [("", False), (" ", False), ("\t \n", False), ("Abc", True), ("Ab", True), (" A ", True)],
)
def test_an_empty_or_blank_sender_column_is_no_sender(field: str, given: bool) -> None:
    """Manual 4.2: "La troisième colonne contiendra l'expéditeur du message si celui-ci est
    renseigné": an empty or whitespace-only column is "not given"."""
    assert sender_given(field) is given


@pytest.mark.parametrize(
    ("message", "mention"),
    [
        ("Promo -20% STOP au 36180", True),
        ("Promo -20%\nSTOP au 36180", True),  # "précédée d'un espace ou d'un retour à la ligne"
        ("Promo -20%STOP au 36180", False),
        ("Promo -20%\tSTOP au 36180", False),
        ("Promo -20% stop au 36180", False),  # exact text, case-sensitive
        ("Promo -20% STOP AU 36180", False),
        ("Promo -20% STOP au 36180 ", True),  # white space after it is ignored (5.9)
        ("Promo -20% STOP au 36180\n", True),
        ("Promo -20% STOP au 36180 \r\n\t", True),
        ("Promo -20% STOP au 36180.", False),
        ("Promo -20%STOP au 36180 ", False),
        ("Promo STOP au 36180 merci", False),  # must be at the end
        ("STOP au 36180", False),  # nothing precedes it
        ("Promo  STOP au 36180", True),
    ],
)
def test_stop_mention(message: str, mention: bool) -> None:
    """Manual 4.2: "la personnalisation de l'émetteur pour les envois vers la France ne sera
    prise en compte que si la fin du message contient la mention STOP au 36180, précédée d'un
    espace ou d'un retour à la ligne"; exact text at the end; contract 5.9: "white space after
    the mention is ignored"."""
    assert has_stop_mention(message) is mention


@pytest.mark.parametrize(
    ("message", "warning"),
    [
        ("Promo", Warning_.SENDER_NOT_APPLIED),
        ("Promo STOP au 36180 merci", Warning_.SENDER_NOT_APPLIED),
        ("Promo stop au 36180", Warning_.STOP_MENTION_CASE),
        ("Promo STOP AU 36180 ", Warning_.STOP_MENTION_CASE),
        ("Promo\nStop au 36180", Warning_.STOP_MENTION_CASE),
        ("PromoSTOP au 36180", Warning_.STOP_MENTION_NOT_SEPARATED),
        ("Promo\tSTOP au 36180\n", Warning_.STOP_MENTION_NOT_SEPARATED),
        ("STOP au 36180", Warning_.STOP_MENTION_NOT_SEPARATED),  # nothing precedes it
        ("Promo STOP au 36180.", Warning_.STOP_MENTION_PUNCTUATION),
        ("Promo STOP au 36180 !", Warning_.STOP_MENTION_PUNCTUATION),
        ("Promo STOP au 36180!! ", Warning_.STOP_MENTION_PUNCTUATION),
        ("Promo stop au 36180.", Warning_.STOP_MENTION_PUNCTUATION),
    ],
)
def test_stop_mention_near_misses(message: str, warning: Warning_) -> None:
    """Contract 5.9: "otherwise the SMS goes out with the default sender and a warning that
    names the near miss when there is one (case, missing space, punctuation after it)"."""
    assert not has_stop_mention(message)
    assert stop_mention_warning(message) is warning


@pytest.mark.parametrize(
    ("phone", "message", "asked", "applied"),
    [
        ("33612345678", "Promo STOP au 36180", "MaBoutique", "MaBoutique"),
        ("33612345678", "Promo", "MaBoutique", "36180"),  # France without the mention
        ("447911123456", "Promo", "MaBoutique", "MaBoutique"),  # international: applied
        ("33612345678", "Promo STOP au 36180", None, "36180"),  # none asked: default
        ("447911123456", "Promo", None, "36180"),
    ],
)
def test_applied_sender(phone: str, message: str, asked: str | None, applied: str) -> None:
    """Contract 5.9: "For a French number (33…) a given sender is applied only if the message
    ends with STOP au 36180 preceded by a space or a line break; otherwise the SMS goes out
    with the default sender"."""
    assert applied_sender(phone, message, asked, "36180") == applied
