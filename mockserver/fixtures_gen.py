"""Realistic, deterministic drop files (Faker fr_FR) for every documented case, each with what
the platform should make of it (`Fixture.expectations`, written to `expected.json`).

Importable by tests and benchmarks; `allmysms-mock fixtures` is its command-line face.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from faker import Faker

from mockserver.core.models import DEFAULT_SENDER, PREFIX, Reason, RowError, Status, Warning_

DEFAULT_SEED = 0
DEFAULT_ROWS = 10
DEFAULT_MAX_BYTES = 8_000_000  # contract 3: limits.max_file_bytes, the manual's "8 Mo"
MIN_MAX_BYTES = 200  # the large kind needs room for at least one row
SMS_DETAIL_LIMIT = 100  # expectations list each SMS only for files this small

# GSM 03.38 default alphabet (the 128 basic characters, ESC excluded) and its extension table.
# Kept here, apart from the rule engine, so the expectations are computed independently of it.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[]~|€")

# What ordinary messages are made of: GSM basic characters a French text needs, nothing that
# costs two septets or draws a warning, and no double quote (only the cases about quoting use it).
_PLAIN = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#%&'()*+,-./:;<=>?éèàùÉ"
)
_TRANSLITERATE = {
    "œ": "oe",
    "Œ": "OE",
    "æ": "ae",
    "Æ": "AE",
    "’": "'",
    "«": "",
    "»": "",
    "…": "...",
}

STOP_MENTION = "STOP au 36180"


def septets(message: str) -> int:
    """Contract 5.7: basic characters 1, extension characters 2, a line break 2, others 1."""
    return sum(2 if c in GSM_EXTENSION or c == "\n" else 1 for c in message)


def is_gsm(message: str) -> bool:
    return all(c in GSM_BASIC or c in GSM_EXTENSION for c in message)


def plain(text: str, allowed: frozenset[str] = _PLAIN) -> str:
    """`text` reduced to `allowed` characters: accents outside the set are stripped, the rest
    dropped (Faker's French names and cities carry ç, ô, ë... that would draw warnings)."""
    out: list[str] = []
    for char in text:
        if char in allowed:
            out.append(char)
            continue
        for sub in _TRANSLITERATE.get(char, unicodedata.normalize("NFKD", char)):
            if sub in allowed:
                out.append(sub)
    return " ".join("".join(out).split())


def ascii_only(text: str) -> str:
    return plain(text, frozenset(c for c in _PLAIN if c.isascii()))


def shorten(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, on a word boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-")


class Outcome(NamedTuple):
    """What one record should become (contract 5.5 to 5.9)."""

    phone: str | None = None  # normalised number; None when the row is rejected
    message: str = ""  # as stored: real line breaks
    sender_asked: str | None = None
    sender_applied: str = DEFAULT_SENDER
    warnings: tuple[str, ...] = ()
    error: str | None = None  # a RowError value when the row is rejected
    bad_sender: bool = False  # the row gives a sender that breaks the rules (No_valid_TPOA)


class Record(NamedTuple):
    raw: bytes  # the record as written, line terminator included
    outcome: Outcome | None  # None: a blank line, not a row


@dataclass(frozen=True)
class Expectation:
    """What `check` should say about a fixture; a field left None is not pinned by the contract."""

    args: tuple[str, ...]  # extra `check` options (account settings), e.g. ("--credits", "0")
    status: Status
    reason: Reason | None
    final_name: str
    sms_count: int
    rows: int | None = None
    rejected: tuple[tuple[int, str], ...] | None = None  # (line, RowError value)
    sms: tuple[dict[str, Any], ...] | None = None  # sorted by line

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "args": list(self.args),
            "status": self.status.value,
            "reason": self.reason.value if self.reason else None,
            "final_name": self.final_name,
            "sms_count": self.sms_count,
        }
        if self.rows is not None:
            out["rows"] = self.rows
        if self.rejected is not None:
            out["rejected_count"] = len(self.rejected)
            out["rejected"] = [{"line": line, "error": error} for line, error in self.rejected]
        if self.sms is not None:
            out["sms"] = list(self.sms)
        return out


@dataclass(frozen=True)
class Fixture:
    kind: str
    name: str
    data: bytes
    description: str
    expectations: tuple[Expectation, ...]

    def cases(self) -> list[dict[str, Any]]:
        """The `expected.json` entries of this file (one per set of `check` options)."""
        return [
            {"kind": self.kind, "file": self.name, "description": self.description} | e.to_dict()
            for e in self.expectations
        ]


@dataclass
class _Context:
    kind: str
    seed: int
    rows: int
    max_bytes: int
    stamp: str  # YYYYMMDDHHMMSS, fixed for a seed
    fake: Faker
    rng: random.Random
    used: set[str] = field(default_factory=set)  # normalised numbers handed out so far

    # --- numbers -------------------------------------------------------------------------
    def mobile(self) -> str:
        """A fresh French mobile number, national significant part: 6/7 + 8 digits."""
        while True:
            nsn = self.rng.choice("67") + f"{self.rng.randrange(10**8):08d}"
            if "33" + nsn not in self.used:
                self.used.add("33" + nsn)
                return nsn

    # --- messages ------------------------------------------------------------------------
    def message(self, limit: int = 130) -> str:
        """A realistic French SMS made only of plain GSM characters."""
        f, r = self.fake, self.rng
        day = datetime.strptime(self.stamp, "%Y%m%d%H%M%S") + timedelta(days=r.randrange(1, 28))
        templates: list[Callable[[], str]] = [
            lambda: (
                f"Bonjour {f.first_name()}, votre commande {r.randrange(10**5, 10**6)} "
                f"est arrivée. Retrait au magasin de {f.city()} dès demain 10h."
            ),
            lambda: (
                f"{f.first_name()}, votre rendez-vous du {day:%d/%m} à {r.randrange(8, 19)}h"
                f"{r.choice(['00', '15', '30', '45'])} chez {f.company()} est confirmé."
            ),
            lambda: (
                f"Rappel : votre colis {r.randrange(10**7, 10**8)} sera livré le {day:%d/%m} "
                f"entre {r.randrange(8, 12)}h et {r.randrange(13, 19)}h au {f.street_address()}."
            ),
            lambda: (
                f"Votre code de confirmation {f.company()} : {r.randrange(10**5, 10**6)}. "
                "Il expire dans 10 minutes."
            ),
            lambda: (
                f"{f.company()} : -{r.choice([10, 20, 30, 40, 50])}% sur tout le magasin de "
                f"{f.city()} ce week-end ! Offre valable jusqu'au {day:%d/%m}."
            ),
            lambda: (
                f"Bonjour {f.first_name()} {f.last_name()}, votre facture de "
                f"{r.randrange(20, 900)},{r.randrange(100):02d} EUR est disponible en ligne."
            ),
        ]
        return shorten(plain(r.choice(templates)()), limit)

    def sender(self) -> str:
        """A valid sender (contract 5.9): a letter first, letters only, 3 to 11 characters."""
        name = ascii_only(self.fake.last_name()).replace(" ", "").replace("-", "")
        name = "".join(c for c in name if c.isalpha())[:11]
        return name if len(name) >= 3 else "Boutique"


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _row(fields: Sequence[str], eol: str = "\n") -> str:
    return ";".join(_quote(v) for v in fields) + eol


def _french(nsn: str, variant: int) -> str:
    """One of the manual's three French formats (contract 5.6), spaced or not."""
    spaced = f"{nsn[0]} {nsn[1:3]} {nsn[3:5]} {nsn[5:7]} {nsn[7:9]}"
    return ["0" + nsn, "33" + nsn, "+33" + nsn, "0" + spaced, "+33 " + spaced][variant % 5]


def _ok(
    raw: str | bytes,
    phone: str,
    message: str,
    sender: str | None = None,
    *,
    applied: str | None = None,
) -> Record:
    """A record expected to yield an SMS; the warnings follow from the message and sender."""
    warnings: list[str] = []
    if not is_gsm(message):
        warnings.append(Warning_.NON_GSM_CHARACTERS.value)
    if applied is None:
        applied = sender or DEFAULT_SENDER
    if sender is not None and applied != sender:
        warnings.append(Warning_.SENDER_NOT_APPLIED.value)
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    return Record(data, Outcome(phone, message, sender, applied, tuple(warnings)))


def _rejected(raw: str | bytes, error: RowError) -> Record:
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    return Record(data, Outcome(error=error.value))


def _valid(ctx: _Context, i: int, *, sender: str | None = None, stop: str = "") -> Record:
    """An ordinary valid row: French mobile in format `i`, plain message, optional sender.
    `stop` is the separator put before the STOP mention ("" = no mention)."""
    nsn = ctx.mobile()
    if not stop:
        text = ctx.message()
        fields = [_french(nsn, i), text] if sender is None else [_french(nsn, i), text, sender]
        applied = None if sender is None else DEFAULT_SENDER
        return _ok(_row(fields), "33" + nsn, text, sender, applied=applied)
    body = ctx.message(160 - len(STOP_MENTION) - 2)
    raw_text = f"{body}{stop}{STOP_MENTION}"
    stored = raw_text.replace("\\n", "\n")
    fields = [_french(nsn, i), raw_text] + ([sender] if sender else [])
    return _ok(_row(fields), "33" + nsn, stored, sender)


# --- file-level expectations -----------------------------------------------------------------


def _expect(
    name: str,
    records: Sequence[Record],
    *,
    name_ok: bool,
    mult: bool,
    accounts: Sequence[tuple[tuple[str, ...], int | None]] = (((), None),),
) -> tuple[Expectation, ...]:
    """Contract 5.3/5.4/5.8 applied to what each record was built to be.

    `accounts` lists (check options, credits) pairs; credits None means "enough".
    """
    line = 1
    rows = 0
    placed: list[tuple[int, Outcome]] = []
    for record in records:
        if record.outcome is not None:
            rows += 1
            placed.append((line, record.outcome))
        line += record.raw.count(b"\n")

    def invalid(reason: Reason, **kw: Any) -> Expectation:
        final = f"{PREFIX}{reason.value}_{name}"
        return Expectation((), Status.INVALID, reason, final, 0, **kw)

    if not name_ok:  # contract 5.4.1: checked first; what is read after is not pinned
        return (invalid(Reason.INCORRECT_FILENAME),)
    if any(o.bad_sender for _, o in placed):  # 5.4.2
        return (invalid(Reason.NO_VALID_TPOA, rows=rows),)

    rejected: list[tuple[int, str]] = []
    kept: dict[str, tuple[int, Outcome]] = {}
    multi: list[tuple[int, Outcome]] = []
    for at, outcome in placed:
        if outcome.phone is None:
            rejected.append((at, outcome.error or ""))
        elif mult:  # 5.8: with _MULT every row is an SMS
            multi.append((at, outcome))
        else:  # 5.8: one SMS per normalised number, the last row wins
            previous = kept.pop(outcome.phone, None)
            if previous is not None:
                rejected.append((previous[0], RowError.DUPLICATE.value))
            kept[outcome.phone] = (at, outcome)
    sms = sorted(multi if mult else kept.values(), key=lambda p: p[0])
    rejected.sort()
    detail = None
    if len(sms) <= SMS_DETAIL_LIMIT:
        detail = tuple(
            {
                "line": at,
                "phone": o.phone,
                "message": o.message,
                "sender_asked": o.sender_asked,
                "sender_applied": o.sender_applied,
                "septets": septets(o.message),
                "warnings": list(o.warnings),
            }
            for at, o in sms
        )
    if not sms:  # 5.4.3
        return (invalid(Reason.EMPTY_FILE, rows=rows, rejected=tuple(rejected), sms=()),)
    out: list[Expectation] = []
    for args, credits in accounts:
        if credits is not None and credits < len(sms):  # 5.4.4
            exp = invalid(Reason.NOT_ENOUGH_CREDITS, rows=rows, rejected=tuple(rejected), sms=())
            out.append(replace(exp, args=args))
        else:
            out.append(
                Expectation(
                    args,
                    Status.ARCHIVED,
                    None,
                    PREFIX + name,
                    len(sms),
                    rows=rows,
                    rejected=tuple(rejected),
                    sms=detail,
                )
            )
    return tuple(out)


def _fixture(
    ctx: _Context,
    campaign: str,
    description: str,
    records: Sequence[Record],
    *,
    mult: bool = False,
    name: str | None = None,
    prefix: bytes = b"",
    accounts: Sequence[tuple[tuple[str, ...], int | None]] = (((), None),),
) -> Fixture:
    name_ok = name is None
    if name is None:
        name = f"{campaign}_{ctx.stamp}_HQ{'_MULT' if mult else ''}.csv"
    data = prefix + b"".join(r.raw for r in records)
    expectations = _expect(name, records, name_ok=name_ok, mult=mult, accounts=accounts)
    return Fixture(ctx.kind, name, data, description, expectations)


# --- the cases -------------------------------------------------------------------------------


def _build_valid(ctx: _Context) -> Fixture:
    records = [_valid(ctx, i) for i in range(ctx.rows)]
    return _fixture(ctx, "Valid", "valid French mobiles in every documented format", records)


def _build_mult(ctx: _Context) -> Fixture:
    numbers = [ctx.mobile() for _ in range((ctx.rows + 1) // 2)]
    records = []
    for i in range(ctx.rows):
        nsn = numbers[i % len(numbers)]
        text = ctx.message()
        records.append(_ok(_row([_french(nsn, i), text]), "33" + nsn, text))
    return _fixture(ctx, "Mult", "_MULT: every row is an SMS, numbers repeated", records, mult=True)


def _build_sender(ctx: _Context) -> Fixture:
    # "la fin du message contient la mention STOP au 36180, précédée d'un espace ou d'un retour
    # à la ligne": a space, a real line break in quotes, and the two characters \n.
    stops = [" ", "\n", "\\n"]
    sender = ctx.sender()
    records = [_valid(ctx, i, sender=sender, stop=stops[i % 3]) for i in range(ctx.rows)]
    records.append(_valid(ctx, ctx.rows, sender="Ma Boutique", stop=" "))
    return _fixture(ctx, "Sender", "senders applied: messages end with STOP au 36180", records)


def _build_sender_no_stop(ctx: _Context) -> Fixture:
    sender = ctx.sender()
    records = [_valid(ctx, i, sender=sender) for i in range(ctx.rows)]
    # The mention must end the message and follow a space or a line break.
    for text in (
        f"Soldes chez {sender} ! {STOP_MENTION} merci",
        f"Soldes chez {sender} !{STOP_MENTION}",
    ):
        nsn = ctx.mobile()
        records.append(
            _ok(_row(["0" + nsn, text, sender]), "33" + nsn, text, sender, applied=DEFAULT_SENDER)
        )
    # Contract 5.9: the STOP rule is for French numbers only; abroad the sender is applied.
    text = ctx.message()
    records.append(_ok(_row(["+447700900123", text, sender]), "447700900123", text, sender))
    return _fixture(
        ctx,
        "SenderNoStop",
        "sender without the STOP mention: default sender and a warning (French numbers)",
        records,
    )


def _build_invalid_sender(ctx: _Context) -> Fixture:
    records = [_valid(ctx, i, sender=ctx.sender(), stop=" ") for i in range(ctx.rows)]
    # One row is enough to make the whole file No_valid_TPOA (contract 5.4.2); each breaks
    # another rule of "Doit commencer par une lettre ... 3 caractères minimum, 11 maximum".
    bad = {
        "1Promo": "starts with a digit",
        "AB": "too short",
        "SuperPromotion": "too long",
        "Soldes!": "special character",
        "Réduction": "accent",
    }
    badname = ctx.rng.choice(sorted(bad))
    nsn = ctx.mobile()
    text = f"{ctx.message(120)} {STOP_MENTION}"
    raw = _row(["0" + nsn, text, badname]).encode()
    records.insert(ctx.rows // 2, Record(raw, Outcome("33" + nsn, text, badname, bad_sender=True)))
    return _fixture(
        ctx, "BadSender", f"one sender breaks the rules ({bad[badname]}): No_valid_TPOA", records
    )


def _build_empty(ctx: _Context) -> Fixture:
    return _fixture(ctx, "Empty", "a 0-byte file: Empty_File", [])


def _build_bad_name(ctx: _Context) -> Fixture:
    records = [_valid(ctx, i) for i in range(ctx.rows)]
    # "Nom de la campagne, composé uniquement de lettres et de chiffres": no hyphen.
    return _fixture(
        ctx,
        "",
        "campaign name with a hyphen: Incorrect_FileName",
        records,
        name=f"Promo-Noel_{ctx.stamp}_HQ.csv",
    )


def _build_bad_date(ctx: _Context) -> Fixture:
    records = [_valid(ctx, i) for i in range(ctx.rows)]
    # Contract 5.4.1: the 14 digits must be a real date-time; there is no 31 February.
    return _fixture(
        ctx,
        "",
        "14 digits that are not a real date (31 February): Incorrect_FileName",
        records,
        name=f"Rappel_{ctx.stamp[:4]}0231{ctx.stamp[8:]}_HQ.csv",
    )


def _build_duplicates(ctx: _Context) -> Fixture:
    unique = max(1, ctx.rows - ctx.rows // 3)
    numbers = [ctx.mobile() for _ in range(unique)]
    records = []
    for i in range(ctx.rows):
        nsn = numbers[i] if i < unique else numbers[(i - unique) * 2 % unique]
        text = ctx.message()
        records.append(_ok(_row([_french(nsn, i + 1), text]), "33" + nsn, text))
    return _fixture(
        ctx,
        "Duplicates",
        "same numbers in other formats, no _MULT: one SMS per number, the last row wins",
        records,
    )


def _landline(ctx: _Context, i: int) -> str:
    """French numbers the contract rejects (5.6): landlines, special numbers, wrong lengths."""
    digits = "".join(str(ctx.rng.randrange(10)) for _ in range(8))
    first = "123459"[i % 6]
    spaced = f"{digits[0:2]} {digits[2:4]} {digits[4:6]} {digits[6:8]}"
    forms = [
        f"0{first}{digits}",
        f"0{first} {spaced}",
        f"33{first}{digits}",
        f"+33 {first} {spaced}",
        f"08{digits}",
        f"06{digits[:7]}",  # 9 digits
        f"+336{digits}0",  # one digit too many
    ]
    return forms[i % len(forms)]


def _build_landlines(ctx: _Context) -> Fixture:
    records = [_valid(ctx, i) for i in range(ctx.rows)]
    for i in range(7):
        records.insert(
            1 + 2 * i, _rejected(_row([_landline(ctx, i), ctx.message()]), RowError.LANDLINE)
        )
    return _fixture(
        ctx, "Landlines", "landlines and malformed French numbers: rows rejected", records
    )


def _build_too_long(ctx: _Context) -> Fixture:
    records = [_valid(ctx, i) for i in range(ctx.rows)]

    # "La longueur du message SMS ne doit pas dépasser 160 caractères" (contract 5.7: septets).
    specials: list[tuple[int, str, int, bool]] = [  # words, middle, words, accepted
        (160, "", 0, True),  # exactly 160
        (161, "", 0, False),
        (80, "€€", 76, True),  # 156 characters + 2 extension characters of 2 septets = 160
        (80, "€€", 77, False),  # 159 characters, 161 septets
        (80, "\n", 78, True),  # a line break counts 2
        (80, "\\n", 79, False),  # typed as the two characters \n: still a line break
    ]
    for j, (before, middle, after, ok) in enumerate(specials):
        raw_text = _filler(ctx, before) + middle + (_filler(ctx, after) if after else "")
        stored = raw_text.replace("\\n", "\n")
        nsn = ctx.mobile()
        raw = _row(["0" + nsn, raw_text])
        rec = _ok(raw, "33" + nsn, stored) if ok else _rejected(raw, RowError.MESSAGE_TOO_LONG)
        records.insert(1 + 2 * j, rec)
    return _fixture(
        ctx, "TooLong", "messages over 160 septets rejected; exactly 160 accepted", records
    )


def _filler(ctx: _Context, n: int) -> str:
    """Exactly `n` plain ASCII characters of French words, not ending in a space."""
    words: list[str] = []
    size = -1  # length of " ".join(words)
    while size < n:
        word = ascii_only(ctx.fake.word()) or "texte"
        words.append(word)
        size += len(word) + 1
    text = " ".join(words)[:n]
    return text[:-1] + "." if text.endswith(" ") else text


def _build_latin1(ctx: _Context) -> Fixture:
    records: list[Record] = []
    for i in range(ctx.rows):
        nsn = ctx.mobile()
        if i % 2:
            # "Si le message ... n'est pas encodé en UTF-8 ... les messages seront rejetés"
            text = shorten(f"Été : {ctx.message(100)} à très bientôt", 150)
            records.append(
                _rejected(_row(["0" + nsn, text]).encode("latin-1", "replace"), RowError.NOT_UTF8)
            )
        else:
            text = ascii_only(ctx.message())
            records.append(_ok(_row(["0" + nsn, text]).encode("latin-1"), "33" + nsn, text))
    return _fixture(
        ctx,
        "Latin1",
        "a Latin-1 file: rows with accents are rejected, plain ASCII rows pass",
        records,
    )


def _build_large(ctx: _Context) -> Fixture:
    """Valid rows up to exactly `max_bytes` (contract 3: a larger upload is refused)."""
    pool = [ctx.message() for _ in range(200)]
    rng = ctx.rng
    start, stride = rng.randrange(10**8), rng.randrange(1, 10**7) * 10 + rng.choice([1, 3, 7, 9])
    chunks: list[bytes] = []
    phones: list[str] = []
    size = 0

    def number(i: int) -> str:
        # stride is odd and not a multiple of 5: i -> start + i*stride (mod 10^8) never repeats
        return "67"[i % 2] + f"{(start + i * stride) % 10**8:08d}"

    def add(text: str) -> None:
        nonlocal size
        nsn = number(len(phones))
        row = f'"0{nsn}";"{text}"\n'.encode()
        chunks.append(row)
        phones.append(nsn)
        size += len(row)

    overhead = len('"0612345678";""\n')
    while size + 400 < ctx.max_bytes:
        text = pool[len(phones) % len(pool)]
        if size + overhead + len(text.encode()) + 400 > ctx.max_bytes:
            break
        add(text)
    # Finish with rows sized to land exactly on the limit: the boundary itself is accepted.
    while (remaining := ctx.max_bytes - size) > 0:
        if remaining - overhead <= 160:
            add(_filler(ctx, remaining - overhead))
        else:
            add(_filler(ctx, min(160, remaining - overhead - 60)))
    data = b"".join(chunks)
    name = f"Large_{ctx.stamp}_HQ.csv"
    exp = Expectation(
        (), Status.ARCHIVED, None, PREFIX + name, len(phones), rows=len(phones), rejected=()
    )
    return Fixture(
        ctx.kind, name, data, f"{len(phones)} valid rows, exactly {ctx.max_bytes} bytes", (exp,)
    )


def _build_international(ctx: _Context) -> Fixture:
    sender = ctx.sender()
    # "+CCxxxxxxxx / CCxxxxxxxx ... il n'y a pas de vérification effectuée quant à la longueur"
    numbers = [
        ("+44 7700 900123", "447700900123"),
        ("32471234567", "32471234567"),
        ("+1 415 555 2671", "14155552671"),
        ("+4915112345678", "4915112345678"),
        ("41791234567", "41791234567"),
        ("+212 612 345 678", "212612345678"),
    ]
    records: list[Record] = []
    for i, (raw_number, normalised) in enumerate(numbers):
        text = ctx.message()
        if i % 2:
            records.append(_ok(_row([raw_number, text, sender]), normalised, text, sender))
        else:
            records.append(_ok(_row([raw_number, text]), normalised, text))
    # 8 to 15 digits in all (contract 5.6)
    records.insert(2, _rejected(_row(["+3212345", ctx.message()]), RowError.BAD_NUMBER))
    records.insert(5, _rejected(_row(["+1234567890123456", ctx.message()]), RowError.BAD_NUMBER))
    records += [_valid(ctx, i) for i in range(max(0, ctx.rows - len(numbers)))]
    return _fixture(
        ctx,
        "International",
        "foreign numbers (+CC and CC), sender applied abroad without STOP, bad lengths rejected",
        records,
    )


def _build_bom_crlf(ctx: _Context) -> Fixture:
    """Contract 5.5: a BOM is ignored, CRLF accepted, blank lines skipped, white space around a
    field outside its quotes ignored (the manual's own `"33671717171";"Contenu du SMS" ;"..."`)."""
    records: list[Record] = []
    sender = ctx.sender()
    for i in range(ctx.rows):
        nsn = ctx.mobile()
        text = ctx.message()
        if i % 4 == 0:
            body = ctx.message(120)
            text = f"{body} {STOP_MENTION}"
            raw = f"{_quote('33' + nsn)};{_quote(text)} ;{_quote(sender)}\r\n"
            records.append(_ok(raw, "33" + nsn, text, sender))
        elif i % 4 == 1:
            raw = f" {_quote(_french(nsn, 0))} ; {_quote(text)}\r\n"
            records.append(_ok(raw, "33" + nsn, text))
        elif i % 4 == 2:
            records.append(Record(b"\r\n", None))
            records.append(_ok(_row([_french(nsn, 2), text], "\r\n"), "33" + nsn, text))
        else:  # unquoted fields are plain CSV too
            text = text.replace(";", ",")
            records.append(_ok(f"{_french(nsn, 1)};{text}\r\n", "33" + nsn, text))
    return _fixture(
        ctx,
        "BomCrlf",
        "UTF-8 BOM, CRLF, blank lines, spaces around fields, unquoted fields",
        records,
        prefix=b"\xef\xbb\xbf",
    )


def _build_line_breaks(ctx: _Context) -> Fixture:
    """Contract 5.7: a line break inside quotes or typed `\\n` is a line break, 2 septets."""
    records: list[Record] = []
    for i in range(ctx.rows):
        nsn = ctx.mobile()
        first, second = ctx.message(60), ctx.message(60)
        if i % 3 == 0:
            text = f"{first}\n{second}"
            records.append(_ok(_row(["0" + nsn, text]), "33" + nsn, text))
        elif i % 3 == 1:
            raw_text = f"{first}\\n{second}"
            records.append(_ok(_row(["0" + nsn, raw_text]), "33" + nsn, f"{first}\n{second}"))
        else:  # a quote inside a quoted field is doubled
            text = f'Le code "{ctx.rng.randrange(1000, 10000)}" : {first}\n\n{second}'
            records.append(_ok(_row(["0" + nsn, text]), "33" + nsn, text))
    return _fixture(ctx, "LineBreaks", "line breaks in quotes, typed \\n, doubled quotes", records)


def _build_non_gsm(ctx: _Context) -> Fixture:
    """Contract 5.7: characters outside GSM 03.38 are accepted, count 1, and draw a warning;
    extension characters count 2 without a warning."""
    extras = [
        "Fête de l'été : entrée gratuite, à bientôt ! Cœur sur vous.",
        "Votre rendez-vous est confirmé, n’oubliez pas votre carte Vitale.",
        "Merci pour votre achat 😀 À très vite !",
        "Offre spéciale : 15€ de remise sur [tout] le rayon {jardin} ~ ce week-end | ^_^",
        "Réservez vite : îles, forêts et châteaux à prix doux.",
    ]
    records = [_valid(ctx, i) for i in range(ctx.rows)]
    for j, text in enumerate(extras):
        nsn = ctx.mobile()
        records.insert(1 + 2 * j, _ok(_row(["0" + nsn, text]), "33" + nsn, text))
    return _fixture(
        ctx,
        "NonGsm",
        "characters outside GSM 03.38 (warning) and extension characters (2 septets)",
        records,
    )


def _build_bad_rows(ctx: _Context) -> Fixture:
    """Contract 5.5: fewer than 2 columns, an empty message, no number, an unterminated
    quote are reported rows, never fatal to the file; extra columns are ignored."""
    records = [_valid(ctx, i) for i in range(ctx.rows)]
    nsn = ctx.mobile()
    records.insert(1, _rejected(_row(["0" + ctx.mobile()]), RowError.TOO_FEW_COLUMNS))
    records.insert(3, _rejected(_row(["0" + ctx.mobile(), ""]), RowError.EMPTY_MESSAGE))
    records.insert(5, _rejected(_row(["", ctx.message()]), RowError.EMPTY_NUMBER))
    text = ctx.message()
    records.insert(7, _ok(_row(["0" + nsn, text, "", "colonne en trop", "42"]), "33" + nsn, text))
    # Last, so the rows before it are not swallowed: a quote opened and never closed.
    records.append(_rejected(f'"0{ctx.mobile()}";"{ctx.message()}\n', RowError.UNTERMINATED_QUOTE))
    return _fixture(
        ctx, "BadRows", "rows with too few columns, no message, no number, an open quote", records
    )


def _build_no_valid_number(ctx: _Context) -> Fixture:
    records = [
        _rejected(_row([_landline(ctx, i), ctx.message()]), RowError.LANDLINE)
        for i in range(ctx.rows)
    ]
    # "Empty_File : Fichier vide ou ne contenant aucun numéro valide"
    return _fixture(ctx, "Fixes", "only landlines: no valid number, Empty_File", records)


def _build_credits(ctx: _Context) -> Fixture:
    records = [_valid(ctx, i) for i in range(ctx.rows)]
    n = ctx.rows
    # Contract 5.4.4: Not_enough_credits when subscription = false and credits < SMS count.
    # Credits are an account setting: `check --credits N [--subscription]` emulates it.
    accounts: list[tuple[tuple[str, ...], int | None]] = [
        ((), None),
        (("--credits", str(n - 1)), n - 1),
        (("--credits", str(n)), n),
        (("--credits", "0", "--subscription"), None),
    ]
    return _fixture(
        ctx,
        "Credits",
        f"{n} SMS: Not_enough_credits with --credits {n - 1}, archived with --credits {n} "
        "or --subscription",
        records,
        accounts=accounts,
    )


_Builder = Callable[[_Context], Fixture]

KINDS: dict[str, tuple[_Builder, str]] = {
    "valid": (_build_valid, "valid French mobiles in every documented format"),
    "mult": (_build_mult, "_MULT option: several SMS to one number"),
    "sender": (_build_sender, "sender applied: message ends with STOP au 36180"),
    "sender_no_stop": (_build_sender_no_stop, "sender without STOP mention: default sender"),
    "invalid_sender": (_build_invalid_sender, "a sender breaking the rules: No_valid_TPOA"),
    "empty": (_build_empty, "a 0-byte file: Empty_File"),
    "bad_name": (_build_bad_name, "campaign name with a hyphen: Incorrect_FileName"),
    "bad_date": (_build_bad_date, "not a real date in the name: Incorrect_FileName"),
    "duplicates": (_build_duplicates, "duplicate numbers without _MULT: last row wins"),
    "landlines": (_build_landlines, "landlines and malformed French numbers rejected"),
    "too_long": (_build_too_long, "messages over 160 septets rejected"),
    "latin1": (_build_latin1, "non-UTF-8 (Latin-1) rows rejected"),
    "international": (_build_international, "foreign numbers, bad lengths rejected"),
    "bom_crlf": (_build_bom_crlf, "BOM, CRLF, blank lines, spaces around fields"),
    "line_breaks": (_build_line_breaks, "line breaks in quotes and typed \\n"),
    "non_gsm": (_build_non_gsm, "characters outside GSM 03.38: warnings"),
    "bad_rows": (_build_bad_rows, "malformed rows reported with their line"),
    "no_valid_number": (_build_no_valid_number, "no valid number at all: Empty_File"),
    "credits": (_build_credits, "use with check --credits N: Not_enough_credits"),
    "large": (_build_large, "valid rows up to the size limit (8,000,000 bytes)"),
}
SMALL_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k != "large")


def send_stamp(seed: int) -> str:
    """The send date put in every name for `seed`: fixed (never today), in 2030, 8h-19h Paris
    time (clear of the DST gap), so the same seed always gives the same names."""
    rng = random.Random(f"allmysms-fixtures-date:{seed}")
    when = datetime(2030, 1, 1, 8) + timedelta(
        days=rng.randrange(365), hours=rng.randrange(12), minutes=15 * rng.randrange(4)
    )
    return when.strftime("%Y%m%d%H%M%S")


def generate(
    kind: str,
    *,
    seed: int = DEFAULT_SEED,
    rows: int = DEFAULT_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Fixture:
    """One fixture; the same arguments always give the same bytes (for one Faker version)."""
    if kind not in KINDS:
        raise ValueError(f"unknown fixture kind {kind!r}; known: {', '.join(KINDS)}")
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if max_bytes < MIN_MAX_BYTES:
        raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}")
    fake = Faker("fr_FR")
    # A seed per kind: `--kind X` alone gives the same file as X within the full set.
    fake.seed_instance(f"{seed}:{kind}")
    ctx = _Context(kind, seed, rows, max_bytes, send_stamp(seed), fake, fake.random)
    return KINDS[kind][0](ctx)


def generate_many(
    kinds: Iterable[str],
    *,
    seed: int = DEFAULT_SEED,
    rows: int = DEFAULT_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Fixture]:
    return [generate(k, seed=seed, rows=rows, max_bytes=max_bytes) for k in kinds]


def expected_document(fixtures: Sequence[Fixture], *, seed: int, rows: int) -> dict[str, Any]:
    """The `expected.json` content: how the files were made and what each should become."""
    import faker

    return {
        "generator": "allmysms-mock fixtures",
        "seed": seed,
        "rows": rows,
        "faker_version": faker.VERSION,
        "note": (
            "Expected verdicts follow the contract, computed from what each row was built to be, "
            "not from the rule engine. A missing key is not pinned by the contract. 'args' are "
            "extra `allmysms-mock check` options (account settings)."
        ),
        "cases": [case for fx in fixtures for case in fx.cases()],
    }
