"""The French recap of one processed file (manual 4.4, contract 5.11) rendered from typed
values: labels are keyed by the enums of `core.models`, so a new reason or row error cannot
be forgotten silently (a test walks every member)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from mockserver.core.models import Reason, RejectedRow, RowError, Status

PARIS = ZoneInfo("Europe/Paris")
MAX_ROWS = 100  # rejected rows listed in one recap; the rest are counted

# Manual 4.3, word for word: what each reason in an invalid file's name means.
REASONS_FR: dict[Reason, str] = {
    Reason.NOT_ENOUGH_CREDITS: (
        "Le compte n'est pas en abonnement et n'a pas suffisamment de crédits"
    ),
    Reason.EMPTY_FILE: "Fichier vide ou ne contenant aucun numéro valide",
    Reason.INCORRECT_FILENAME: "Nom de fichier incorrect",
    Reason.NO_VALID_TPOA: "L'expéditeur ne respecte pas les conditions d'utilisations",
}

ROW_ERRORS_FR: dict[RowError, str] = {
    RowError.TOO_FEW_COLUMNS: "moins de 2 colonnes",
    RowError.EMPTY_NUMBER: "numéro absent",
    RowError.BAD_NUMBER: "numéro invalide",
    RowError.LANDLINE: "numéro fixe ou numéro français mal formé",
    RowError.EMPTY_MESSAGE: "message vide",
    RowError.MESSAGE_TOO_LONG: "message de plus de 160 caractères",
    RowError.NOT_UTF8: "texte non encodé en UTF-8",
    RowError.UNTERMINATED_QUOTE: "guillemet non fermé",
    RowError.MALFORMED_ROW: "ligne mal formée",
    RowError.INVALID_SENDER: "expéditeur invalide",
    RowError.DUPLICATE: "numéro en double (le dernier message est envoyé)",
}

_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


@dataclass(frozen=True, slots=True)
class RecapFacts:
    """What a recap says about one file. Names are given as they may be shown (one line)."""

    original_name: str
    final_name: str  # its name in ARCHIVES or INVALIDS
    status: Status
    reason: Reason | None
    detail: str
    sms_count: int
    cost: int
    send_at: datetime | None
    rejected: tuple[RejectedRow, ...]

    @property
    def archived(self) -> bool:
        return self.status is Status.ARCHIVED


def french_date(moment: datetime) -> str:
    """`mardi 16 juillet 2013 à 12:00:00 (heure de Paris)`, whatever the locale."""
    local = moment.astimezone(PARIS)
    return (
        f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"
        f" à {local:%H:%M:%S} (heure de Paris)"
    )


def reason_of(text: str | None) -> Reason | None:
    """The `Reason` a stored reason names, or None (no reason, or one this version ignores)."""
    try:
        return Reason(text) if text else None
    except ValueError:
        return None


def row_error_label(error: str) -> str:
    try:
        return ROW_ERRORS_FR[RowError(error)]
    except ValueError:
        return error


def recap_subject(facts: RecapFacts) -> str:
    if facts.archived:
        return f"[AllMySMS] Fichier traité : {facts.original_name}"
    reason = facts.reason.value if facts.reason else "None"
    return f"[AllMySMS] Fichier invalide : {facts.original_name} ({reason})"


def recap_body(facts: RecapFacts) -> str:
    """Manual 4.4: "Un mail récapitulatif sera envoyé au client … dans lequel seront indiqués
    les fichiers traités, le nombre de SMS envoyés, la date d'envoi ainsi que les raisons
    d'échec d'exécution si certains fichiers ne sont pas valides."
    """
    folder = "ARCHIVES" if facts.archived else "INVALIDS"
    lines = [
        "Bonjour,",
        "",
        "Voici le récapitulatif du traitement de votre fichier déposé sur l'API FTP/SFTP.",
        "",
        f"Fichier traité : {facts.original_name}",
        f"Nom après traitement : {folder}/{facts.final_name}",
    ]
    if facts.archived:
        lines.append("Résultat : fichier traité avec succès (archivé)")
    else:
        reason = facts.reason.value if facts.reason else ""
        lines.append(f"Résultat : fichier invalide, raison : {reason}")
        lines.append(f"  {REASONS_FR[facts.reason] if facts.reason else reason}")
        if facts.detail:
            lines.append(f"  Détail : {facts.detail}")
    lines.append(f"Nombre de SMS envoyés : {facts.sms_count if facts.archived else 0}")
    if facts.archived:
        # The file's cost; a subscription account is billed at month end instead of debited.
        lines.append(f"Coût : {facts.cost} crédit(s)")
    if facts.send_at is not None:
        lines.append(f"Date d'envoi : {french_date(facts.send_at)}")
    else:
        lines.append("Date d'envoi : aucune (nom de fichier incorrect)")
    rejected = facts.rejected
    if rejected:
        lines += ["", f"Lignes rejetées : {len(rejected)}"]
        for row in rejected[:MAX_ROWS]:
            detail = f" ({row.detail})" if row.detail else ""
            lines.append(f"  - ligne {row.line} : {row_error_label(row.error)}{detail}")
        if len(rejected) > MAX_ROWS:
            lines.append(f"  … et {len(rejected) - MAX_ROWS} autres")
    lines += ["", "Cordialement,", "L'équipe AllMySMS (serveur de test allmysms-mockserver)", ""]
    return "\n".join(lines)
