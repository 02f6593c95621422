"""Reading the ledger for the API and tests: processed files and recorded SMS, filtered and
paged in SQL, returned as typed rows."""

from __future__ import annotations

from typing import Any

from mockserver.core.models import Status
from mockserver.core.text import printable_name
from mockserver.store.database import Database
from mockserver.store.rows import (
    FILE_COLUMNS,
    SMS_COLUMNS,
    FileRecord,
    SmsRecord,
    file_record,
    sms_record,
)


def _name_match(column_prefix: str, name: str) -> tuple[str, list[Any]]:
    """A file's original, stored or final name (names are stored in their printable form)."""
    p = column_prefix
    text = printable_name(name)
    return (
        f"({p}original_name = ? OR {p}stored_name = ? OR {p}final_name = ?)",
        [text, text, text],
    )


class Queries(Database):
    """The reading half of `Store`."""

    def files(
        self,
        login: str | None = None,
        status: str | None = None,
        name: str | None = None,
        *,
        campaign: str | None = None,
        after_id: int | None = None,
        include_pending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[FileRecord]:
        """Processed files, oldest first (contract 6, `GET /api/files`).

        `name` matches the original name or the final name; `after_id` keeps the files whose
        id is above it (those recorded after a `last_file_id()` reading). Files still being
        finished (moved, recap) are left out unless `include_pending`.
        """
        where: list[str] = []
        params: list[Any] = []
        if login is not None:
            where.append("login = ?")
            params.append(login)
        if status is not None:
            where.append("status = ?")
            params.append(Status(status).value)
        if name is not None:
            clause, args = _name_match("", name)
            where.append(clause)
            params += args
        if campaign is not None:
            where.append("campaign = ?")
            params.append(campaign)
        if after_id is not None:
            where.append("id > ?")
            params.append(int(after_id))
        if not include_pending:
            where.append("done = 1")
        sql = f"SELECT {FILE_COLUMNS} FROM files"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [int(limit), int(offset)]
        return [file_record(r) for r in self._reader().execute(sql, params)]

    def last_file_id(self) -> int:
        """The highest id of a file the store holds, being finished or done (0 when none):
        every file recorded after this reading has a higher id."""
        row = self._reader().execute("SELECT COALESCE(MAX(id), 0) FROM files").fetchone()
        return int(row[0])

    def messages(
        self,
        login: str | None = None,
        campaign: str | None = None,
        phone: str | None = None,
        file: str | None = None,
        *,
        file_id: int | None = None,
        sent_by: float | None = None,
        scheduled_after: float | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[SmsRecord]:
        """Recorded SMS, in file then line order (contract 6, `GET /api/messages`).

        `phone` is a normalised number (`core.phone.normalise_number`); `file` matches the
        file's original or final name. `sent_by` keeps the SMS whose send time (a POSIX
        timestamp) is at or before it; `scheduled_after` those after it: the caller decides
        what "now" is (contract 5.10)."""
        where: list[str] = []
        params: list[Any] = []
        if login is not None:
            where.append("f.login = ?")
            params.append(login)
        if campaign is not None:
            where.append("f.campaign = ?")
            params.append(campaign)
        if phone is not None:
            where.append("s.phone = ?")
            params.append(phone)
        if file is not None:
            clause, args = _name_match("f.", file)
            where.append(clause)
            params += args
        if file_id is not None:
            where.append("f.id = ?")
            params.append(int(file_id))
        if sent_by is not None:
            where.append("f.send_ts <= ?")
            params.append(sent_by)
        if scheduled_after is not None:
            where.append("f.send_ts > ?")
            params.append(scheduled_after)
        # Files outer, each one's SMS by id range: ordered by (file, SMS) without a sort.
        sql = (
            f"SELECT {SMS_COLUMNS}"
            " FROM files f JOIN sms s ON s.id BETWEEN f.sms_first AND f.sms_last"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY f.id, s.id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [int(limit), int(offset)]
        return [sms_record(r) for r in self._reader().execute(sql, params)]

    def sms_warnings(self, file_id: int, limit: int) -> tuple[list[tuple[int, str]], int]:
        """The first `limit` (line, warning) pairs of a file's SMS, in line order, and how many
        pairs there are in all (a recap lists a bounded number, whatever the file)."""
        reader = self._reader()
        row = reader.execute(
            "SELECT sms_first, sms_last, warnings_total FROM files WHERE id = ?", (file_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return [], 0
        span = row[:2]
        where = "id BETWEEN ? AND ? AND warnings != ''"
        if row[2] is not None:
            total = int(row[2])  # counted when recorded (schema 5)
        else:
            # A file recorded before schema 5: warnings, not SMS, one SMS may carry two.
            total = int(
                reader.execute(
                    "SELECT COALESCE(SUM(LENGTH(warnings) - LENGTH(REPLACE(warnings, ',', ''))"
                    f" + 1), 0) FROM sms WHERE {where}",
                    span,
                ).fetchone()[0]
            )
        pairs: list[tuple[int, str]] = []
        rows = reader.execute(
            f"SELECT line, warnings FROM sms WHERE {where} ORDER BY id LIMIT ?", (*span, limit)
        )
        for line, warnings in rows:
            pairs += [(int(line), w) for w in str(warnings).split(",")]
        return pairs[:limit], total

    def count_messages(self, login: str | None = None) -> int:
        reader = self._reader()
        if login is None:
            return int(reader.execute("SELECT COUNT(*) FROM sms").fetchone()[0])
        return int(
            reader.execute(
                "SELECT COALESCE(SUM(sms_count), 0) FROM files WHERE login = ?"
                " AND sms_first IS NOT NULL",
                (login,),
            ).fetchone()[0]
        )
