"""The French recap of one processed file (manual 4.4, contract 5.11) rendered from typed
values: labels are keyed by the enums of `core.models`, so a new reason or row error cannot
be forgotten silently (a test walks every member)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from mockserver.core.models import (
    Hint,
    HintCode,
    Reason,
    RejectedRow,
    RowError,
    Status,
    Warning_,
    rejected_counts,
)

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
    RowError.HEADER_ROW: "ligne d'en-tête d'un tableur, ignorée",
}

# What to fix, for each reason (the manual's rules, in its words where it has them).
EXPLANATIONS_FR: dict[Reason, str] = {
    Reason.INCORRECT_FILENAME: (
        "Le nom doit avoir la forme <campagne>_<AAAAMMJJHHMMSS>_HQ[_MULT].csv (ou _LC quand "
        "cette qualité est proposée), avec une date et une heure réelles."
    ),
    Reason.NO_VALID_TPOA: (
        "Un expéditeur doit commencer par une lettre, ne contenir que des lettres sans accent, "
        "des chiffres ou des espaces, et compter de 3 à 11 caractères."
    ),
    Reason.EMPTY_FILE: "Aucune ligne ne donne un SMS valide : voir les lignes rejetées.",
    Reason.NOT_ENOUGH_CREDITS: (
        "Les SMS du fichier coûtent plus de crédits que le compte n'en a : rechargez le compte "
        "ou passez en abonnement."
    ),
}

# Warnings on SMS that are still sent (contract 5.7, 5.9).
WARNINGS_FR: dict[Warning_, str] = {
    Warning_.NON_GSM_CHARACTERS: (
        "caractères hors de l'alphabet GSM 03.38 (le SMS est envoyé, leur affichage peut varier)"
    ),
    Warning_.SENDER_NOT_APPLIED: (
        "expéditeur non appliqué, envoyé avec l'expéditeur par défaut : le message vers la "
        "France ne se termine pas par « STOP au 36180 »"
    ),
    Warning_.STOP_MENTION_CASE: (
        "expéditeur non appliqué : la mention doit s'écrire exactement « STOP au 36180 » "
        "(majuscules et minuscules comprises)"
    ),
    Warning_.STOP_MENTION_NOT_SEPARATED: (
        "expéditeur non appliqué : la mention « STOP au 36180 » doit être précédée d'un "
        "espace ou d'un retour à la ligne"
    ),
    Warning_.STOP_MENTION_PUNCTUATION: (
        "expéditeur non appliqué : rien ne doit suivre la mention « STOP au 36180 » "
        "(pas même un point)"
    ),
}

# Contract 5.12: hints, never rule changes (the likely cause of a common mistake).
HINTS_FR: dict[HintCode, str] = {
    HintCode.SEPARATOR_COMMA: (
        "le fichier semble séparé par des virgules : la plateforme ne sépare les colonnes que "
        "par des points-virgules (;)"
    ),
    HintCode.SEPARATOR_TAB: (
        "le fichier semble séparé par des tabulations : la plateforme ne sépare les colonnes "
        "que par des points-virgules (;)"
    ),
    HintCode.HEADER_ROW: (
        "la ligne d'en-tête d'un tableur (les titres des colonnes) ne donne aucun SMS : "
        "retirez-la du fichier"
    ),
    HintCode.LEADING_ZERO_DROPPED: (
        "numéros de 9 chiffres commençant par 6 ou 7, envoyés à l'international (612345678 "
        "part vers le +61) : s'il s'agit de mobiles français dont un tableur a supprimé le 0, "
        "écrivez-les 06… ou 07… (colonne au format texte)"
    ),
    HintCode.DUPLICATE_OF: (
        "contenu identique à celui d'un fichier traité par ce compte il y a moins de 10 "
        "minutes : celui-ci a été traité une seconde fois (et, s'il est accepté, facturé de "
        "nouveau ; un client qui redépose "
        "le fichier après son déplacement par la plateforme, comme rclone sans .tmp, paie deux "
        "fois)"
    ),
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
class SmsWarning:
    """A warning on one SMS that is still sent (its line and the `Warning_` value)."""

    line: int
    warning: str


@dataclass(frozen=True, slots=True)
class RecapFacts:
    """What a recap says about one file. Names are given as they may be shown (one line).
    `now` is when the recap is written: it decides "programmés" or "envoyés"."""

    original_name: str
    final_name: str  # its name in ARCHIVES or INVALIDS
    status: Status
    reason: Reason | None
    sms_count: int
    cost: int
    send_at: datetime | None
    rejected: tuple[RejectedRow, ...]
    now: datetime
    subscription: bool = False
    warnings: tuple[SmsWarning, ...] = ()  # at most MAX_ROWS of them
    warnings_total: int = 0
    hints: tuple[Hint, ...] = ()  # contract 5.12, at most one of each kind
    # Issue 16: the rejected rows not kept in `rejected`, counted by error.
    rejected_more: tuple[tuple[str, int], ...] = ()

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


def _credits(n: int) -> str:
    return f"{n} crédit" if n in (0, 1) else f"{n} crédits"


def _quoted(value: str) -> str:
    return "'" + value + "'"


def rejected_line(row: RejectedRow) -> str:
    """`ligne 4 : numéro invalide : '12'`: the label of its `RowError`, then the value."""
    label = row_error_label(row.error)
    if not row.value:
        return f"ligne {row.line} : {label}"
    if row.error == RowError.MESSAGE_TOO_LONG.value:
        return f"ligne {row.line} : {label} ({row.value} caractères)"
    return f"ligne {row.line} : {label} : {_quoted(row.value)}"


def warning_label(warning: str) -> str:
    try:
        return WARNINGS_FR[Warning_(warning)]
    except (ValueError, KeyError):
        return warning


def hint_label(code: str) -> str:
    try:
        return HINTS_FR[HintCode(code)]
    except (ValueError, KeyError):
        return code


def hint_line(hint: Hint) -> str:
    """`le fichier semble séparé par des virgules … (3 lignes : 1, 2, 3)`: the label of its
    `HintCode`, then the lines it names, or the earlier file of a duplicate."""
    label = hint_label(hint.code)
    if hint.file_id is not None:
        return f"{label} ; fichier précédent : n° {hint.file_id}, {_quoted(hint.file_name)}"
    if not hint.lines:
        return label
    shown = ", ".join(str(n) for n in hint.lines)
    more = " …" if hint.count > len(hint.lines) else ""
    if hint.count == 1:
        return f"{label} (ligne {shown})"
    return f"{label} ({hint.count} lignes : {shown}{more})"


def number_fr(n: int) -> str:
    """`149 990`: thousands separated by a space, as French writes them."""
    return f"{n:,}".replace(",", " ")


def more_rejected_line(rows: tuple[RejectedRow, ...], more: tuple[tuple[str, int], ...]) -> str:
    """Issue 16: `… et 149 990 autres lignes rejetées : 149 980 numéro invalide, 10 message
    vide`: the rejected rows past the listed ones (`rows`, those not listed but kept; `more`,
    those only counted), by error, the most frequent first."""
    counts = rejected_counts(rows, more)
    total = sum(counts.values())
    by_count = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    parts = ", ".join(f"{number_fr(n)} {row_error_label(error)}" for error, n in by_count)
    word = "autre ligne rejetée" if total == 1 else "autres lignes rejetées"
    return f"  … et {number_fr(total)} {word} : {parts}"


def recap_body(facts: RecapFacts) -> str:
    """Manual 4.4: "Un mail récapitulatif sera envoyé au client … dans lequel seront indiqués
    les fichiers traités, le nombre de SMS envoyés, la date d'envoi ainsi que les raisons
    d'échec d'exécution si certains fichiers ne sont pas valides." Contract 5.11: entirely in
    French; SMS "programmés" while the send date is ahead, "envoyés" after; the send date of
    archived files only; the cost debited, or the month-end invoice's for a subscription;
    rejected rows and warnings with their line numbers and reasons. Contract 5.12: the hints,
    each with the lines or the earlier file it names.
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
        scheduled = facts.send_at is not None and facts.send_at > facts.now
        state = "programmés" if scheduled else "envoyés"
        lines.append(f"Nombre de SMS {state} : {facts.sms_count}")
        if facts.send_at is not None:
            lines.append(f"Date d'envoi : {french_date(facts.send_at)}")
        if facts.subscription:
            lines.append(
                f"Coût : {_credits(facts.cost)}, facturés en fin de mois (compte en abonnement)"
            )
        else:
            taken = "débité" if facts.cost <= 1 else "débités"
            lines.append(f"Coût : {_credits(facts.cost)} {taken} du compte")
    else:
        reason = facts.reason.value if facts.reason else ""
        lines.append(f"Résultat : fichier invalide, raison : {reason}")
        if facts.reason is not None:
            lines.append(f"  {REASONS_FR[facts.reason]}")
            lines.append(f"  {EXPLANATIONS_FR[facts.reason]}")
        lines.append("Nombre de SMS envoyés : 0")
        lines.append("Coût : aucun crédit débité")
    rejected = facts.rejected
    if rejected or facts.rejected_more:
        total = len(rejected) + sum(n for _, n in facts.rejected_more)
        lines += ["", f"Lignes rejetées : {number_fr(total)}"]
        lines += [f"  - {rejected_line(row)}" for row in rejected[:MAX_ROWS]]
        if total > min(len(rejected), MAX_ROWS):
            lines.append(more_rejected_line(rejected[MAX_ROWS:], facts.rejected_more))
    if facts.warnings_total:
        lines += ["", f"Avertissements (SMS envoyés malgré tout) : {facts.warnings_total}"]
        lines += [
            f"  - ligne {w.line} : {warning_label(w.warning)}" for w in facts.warnings[:MAX_ROWS]
        ]
        shown = min(len(facts.warnings), MAX_ROWS)
        if facts.warnings_total > shown:
            lines.append(f"  … et {facts.warnings_total - shown} autres")
    if facts.hints:
        lines += ["", "Conseils (causes probables ; le fichier a été traité selon les règles) :"]
        lines += [f"  - {hint_line(h)}" for h in facts.hints]
    lines += ["", "Cordialement,", "L'équipe AllMySMS (serveur de test allmysms-mockserver)", ""]
    return "\n".join(lines)
