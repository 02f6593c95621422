"""Drop-file names: temporary names, valid campaigns, final names (manual 4.2/4.3, contract 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.core.filename import (
    PARIS,
    check_filename,
    final_name,
    is_temporary,
    parse_filename,
)
from mockserver.core.models import Campaign, Reason


@pytest.mark.parametrize(
    ("name", "campaign", "when", "mult"),
    [
        # The manual's own example: "CampagneFtp_20130716120000_HQ_MULT.csv".
        ("CampagneFtp_20130716120000_HQ_MULT.csv", "CampagneFtp", (2013, 7, 16, 12, 0, 0), True),
        ("Envoiftp_20131002100000_HQ.csv", "Envoiftp", (2013, 10, 2, 10, 0, 0), False),
        ("A_20240229235959_HQ.csv", "A", (2024, 2, 29, 23, 59, 59), False),
        ("0_20000101000000_HQ.csv", "0", (2000, 1, 1, 0, 0, 0), False),
        ("abcXYZ09_99991231235959_HQ_MULT.csv", "abcXYZ09", (9999, 12, 31, 23, 59, 59), True),
    ],
)
def test_valid_names(name: str, campaign: str, when: tuple[int, ...], mult: bool) -> None:
    """Manual 4.2: "Le nom de fichier doit correspondre au formalisme suivant, séparé par des
    _ : Nom de la campagne ..., Date d'envoi ..., Qualité de l'envoi (HQ ...), Option d'envoi
    multiple (MULT ...)"; contract 5.10: the date is Europe/Paris time."""
    parsed = parse_filename(name)
    assert parsed == Campaign(campaign, datetime(*when, tzinfo=PARIS), mult)
    assert parsed is not None
    assert parsed.send_at.tzinfo is PARIS


@pytest.mark.parametrize(
    "name",
    [
        "CampagneFtp_20130716120000_HQ.CSV",  # extension is case-sensitive
        "CampagneFtp_20130716120000_hq.csv",
        "CampagneFtp_20130716120000_HQ_mult.csv",
        "CampagneFtp_20130716120000_HQ_MULT_MULT.csv",
        "CampagneFtp_20130716120000_LQ.csv",
        "CampagneFtp_20130716120000.csv",
        "_20130716120000_HQ.csv",  # no campaign name
        "Campagne Ftp_20130716120000_HQ.csv",  # "sans espace"
        "Campagne-Ftp_20130716120000_HQ.csv",  # "ni caractère spécial"
        "Campagne_Ftp_20130716120000_HQ.csv",
        "Campagné_20130716120000_HQ.csv",  # "composé uniquement de lettres et de chiffres"
        "Campagne_2013071612000_HQ.csv",  # 13 digits
        "Campagne_201307161200000_HQ.csv",  # 15 digits
        "Campagne_130716120000_HQ.csv",  # the manual's "YYMMDDHHISS" label, 12 digits
        "Campagne_2013071612000٠_HQ.csv",  # an Arabic-Indic digit is not a digit here
        "Campagne_20130716120000_HQ.csv\n",  # a trailing newline is not accepted
        "Campagne_20130716120000_HQ.csv.tmp",
        " Campagne_20130716120000_HQ.csv",
        "Campagne_20130716120000_HQ.csv ",
        "sub/Campagne_20130716120000_HQ.csv",
        "",
    ],
)
def test_incorrect_names(name: str) -> None:
    """Manual 4.2: "Si le nom de fichier ne correspond pas au bon format et n'est pas un fichier
    temporaire, le fichier sera déclaré invalide"; contract 5.4.1 pattern
    `^[A-Za-z0-9]+_\\d{14}_HQ(_MULT)?\\.csv$` (case-sensitive, no trailing newline)."""
    assert parse_filename(name) is None
    assert isinstance(check_filename(name), str)


@pytest.mark.parametrize(
    "digits",
    [
        "20131316120000",  # month 13
        "20130016120000",  # month 0
        "20130732120000",  # 32 July
        "20130431120000",  # 31 April
        "20130229120000",  # 29 February of a common year
        "21000229120000",  # 2100 is not a leap year
        "20130716240000",  # hour 24
        "20130716126000",  # minute 60
        "20130716120060",  # second 60 (no leap seconds)
        "00000101000000",  # year 0
        "00010101000000",  # before UTC's minimum once converted from Paris local mean time
    ],
)
def test_dates_must_be_real(digits: str) -> None:
    """Contract 5.4.1: Incorrect_FileName when "the 14 digits are not a real date-time
    YYYYMMDDHHMMSS"."""
    name = f"Camp_{digits}_HQ.csv"
    assert parse_filename(name) is None
    assert check_filename(name) == f"{digits} is not a real date-time YYYYMMDDHHMMSS"


def test_leap_day_of_a_leap_year_is_real() -> None:
    """Contract 5.4.1: a real calendar date, leap years included (2000 is a leap year)."""
    assert parse_filename("Camp_20000229000000_HQ.csv") is not None


@pytest.mark.parametrize(
    ("digits", "utc"),
    [
        ("20240115120000", datetime(2024, 1, 15, 11, 0, tzinfo=UTC)),  # winter: UTC+1
        ("20240715120000", datetime(2024, 7, 15, 10, 0, tzinfo=UTC)),  # summer: UTC+2
        # Spring-forward gap: 02:30 does not exist; fold=0 keeps the winter offset.
        ("20240331023000", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),
        # Autumn fold: 02:30 happens twice; fold=0 is the first (summer) occurrence.
        ("20241027023000", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
    ],
)
def test_send_date_is_paris_time(digits: str, utc: datetime) -> None:
    """Contract 5.10: "Send date: the 14 digits, Europe/Paris time." A wall time in the DST gap
    or fold is accepted and resolved with zoneinfo's fold=0."""
    campaign = parse_filename(f"Camp_{digits}_HQ.csv")
    assert campaign is not None
    # Compared in UTC: PEP 495 makes `==` across zones False for a gap or fold time.
    assert campaign.send_at.astimezone(UTC) == utc
    assert campaign.send_at - utc == timedelta(0)


@pytest.mark.parametrize(
    ("name", "temporary"),
    [
        ("Camp_20130716120000_HQ.csv.tmp", True),
        ("Camp_20130716120000_HQ.tmp", True),
        ("anything.tmp", True),
        (".tmp", True),
        ("Camp_20130716120000_HQ.csv", False),
        ("Camp.TMP", False),
        ("Camp.tmp.csv", False),
        ("Camp.tmp ", False),
    ],
)
def test_temporary_names(name: str, temporary: bool) -> None:
    """Contract 5.1: "A file in SEND_SMS whose name ends in .tmp is never touched"; manual 4.2:
    "uploader des fichiers temporaires, avec extension .tmp". Case-sensitive."""
    assert is_temporary(name) is temporary


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (None, "TreatedByMSI_Envoiftp_20131002100000_HQ.csv"),
        (
            Reason.INCORRECT_FILENAME,
            "TreatedByMSI_Incorrect_FileName_Envoiftp_20131002100000_HQ.csv",
        ),
        (Reason.EMPTY_FILE, "TreatedByMSI_Empty_File_Envoiftp_20131002100000_HQ.csv"),
        (Reason.NO_VALID_TPOA, "TreatedByMSI_No_valid_TPOA_Envoiftp_20131002100000_HQ.csv"),
        (
            Reason.NOT_ENOUGH_CREDITS,
            "TreatedByMSI_Not_enough_credits_Envoiftp_20131002100000_HQ.csv",
        ),
    ],
)
def test_final_names(reason: Reason | None, expected: str) -> None:
    """Manual 4.3: "Exemple de fichier traité et archivé : TreatedByMSI_Envoiftp_20131002100000
    _HQ.csv" and "TreatedByMSI_Incorrect_FileName_Envoiftp_20131002100000_HQ.csv"."""
    assert final_name("Envoiftp_20131002100000_HQ.csv", reason) == expected


@given(st.text())
def test_check_filename_never_raises(name: str) -> None:
    """Any name gets an answer: a campaign or one sentence (contract 5.4.1)."""
    result = check_filename(name)
    assert isinstance(result, Campaign | str)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("Camp_20130716120000_HQ.CSV", "case-sensitive"),
        ("Camp_20130716120000_hq_mult.csv", "case-sensitive"),
        ("Camp-1_20130716120000_HQ.csv", "only letters and digits"),
        ("Camp_130716120000_HQ.csv", "14 digits"),
        ("readme.txt", "_HQ[_MULT].csv"),
    ],
)
def test_incorrect_names_say_what_to_fix(name: str, hint: str) -> None:
    """Manual 4.2 (the name's parts) and contract 2 (`check` prints the verdict): the reason
    names the near miss, so the user knows what to change."""
    reason = check_filename(name)
    assert isinstance(reason, str)
    assert hint in reason
