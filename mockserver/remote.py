"""`MockClient`: a running mock (a container, `serve`, a compose service) steered over its HTTP
control API (contract 6) with the methods and answers of the in-process `MockServer`: files,
messages, mail, accounts, `wait_for_file`, `reset`, `faults`, `clock`, manual mode. Stdlib only.

>>> mock = MockClient("http://127.0.0.1:8021")
>>> mark = mock.last_file_id            # before the upload
>>> mock.wait_for_file("Promo_20301231120000_HQ.csv", timeout=30, after_id=mark)["status"]
'archived'
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

WAIT_CAP = 300.0  # the longest `wait=` the server accepts in one call (docs/api.md)
PAGE = 10_000  # SMS or files fetched per call when a list is read whole


class ApiError(RuntimeError):
    """The API refused a call: `status` and the server's one-sentence `message`."""

    def __init__(self, status: int, message: str, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body = dict(body or {})


class BadRequest(ApiError, ValueError):
    """A 400: a bad filter, rule or body (`MockServer` raises a ValueError there too)."""


class NotFound(ApiError, LookupError):
    """A 404: an unknown login, rule id, or no waiting file of that name."""


class MockClient:
    """The platform of a mock at `url` (`http://host:port`), as `MockServer` offers it.

    `token` is `server.api_token` when the mock has one; `timeout` bounds each call (a
    `wait_for_file` call waits longer: its own timeout, plus this)."""

    def __init__(self, url: str, *, token: str = "", timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the mock's HTTP address is http://host:port, got {url!r}")
        self.url = f"http://{parts.netloc}"
        self._host = parts.hostname
        self._port = parts.port or 80
        self._token = token
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"MockClient({self.url!r})"

    # -- the platform's state ----------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """`GET /health`: `{"status": "ok", "ftp_port": …}`; ApiError (503) while starting."""
        return self._call("GET", "/health")

    def accounts(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/accounts")["accounts"])

    def account(self, login: str) -> dict[str, Any] | None:
        """The account, or None for an unknown login."""
        try:
            return self._call("GET", f"/api/accounts/{_segment(login)}")
        except NotFound:
            return None

    def add_account(
        self,
        login: str,
        password: str,
        credits: int = 100,
        *,
        subscription: bool = False,
        email: str | None = None,
    ) -> dict[str, Any]:
        """Create an account (and its folders): it can log in at once."""
        body: dict[str, Any] = {"login": login, "password": password, "credits": credits}
        body["subscription"] = subscription
        if email is not None:
            body["email"] = email
        return self._call("POST", "/api/accounts", body)

    def set_credits(self, login: str, credits: int) -> dict[str, Any]:
        return self._call("PATCH", f"/api/accounts/{_segment(login)}", {"credits": credits})

    def files(self, **filters: Any) -> list[dict[str, Any]]:
        """Processed files, oldest first, as `GET /api/files` lists them (`login`, `status`,
        `name`, `after_id`; every one when no `limit` is given)."""
        return self._list("/api/files", "files", filters)

    @property
    def last_file_id(self) -> int:
        """The highest file id (0: none): read it before dropping a file whose name was used
        before, and pass it as `wait_for_file(after_id=...)`."""
        return int(self._call("GET", "/api/files", query={"limit": 1})["last_id"])

    def wait_for_file(
        self,
        name: str,
        timeout: float = 10.0,
        after_id: int | None = None,
        *,
        login: str | None = None,
    ) -> dict[str, Any]:
        """Block until a file named `name` (original or final name) has a verdict and return
        it (the newest of that name); the server wakes the call up, nobody polls. With
        `after_id` only a file recorded after it answers. TimeoutError past `timeout`."""
        deadline = time.monotonic() + timeout
        query: dict[str, Any] = {"name": name, "after_id": after_id, "login": login}
        while True:
            left = max(0.0, deadline - time.monotonic())
            query["wait"] = f"{min(left, WAIT_CAP):.3f}"
            try:
                found = self._call("GET", "/api/files", query=query, wait=min(left, WAIT_CAP))
            except NotFound as exc:
                if "last_id" not in exc.body:  # an unknown login, not the time running out
                    raise
                if time.monotonic() < deadline:
                    continue
                after = "" if after_id is None else f" after file id {after_id}"
                raise TimeoutError(f"no verdict for {name!r}{after} within {timeout:g} s") from None
            return dict(found["files"][-1])

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        """SMS as `GET /api/messages` lists them (`login`, `campaign`, `phone` in any accepted
        spelling, `file`, `status`); every one when no `limit` is given. BadRequest (a
        ValueError) for a number the platform would reject."""
        return self._list("/api/messages", "messages", filters)

    def mail(self, **filters: Any) -> list[dict[str, Any]]:
        """The recap e-mails (`login`, `to`)."""
        return list(self._call("GET", "/api/mail", query=filters)["mail"])

    def reset(self) -> None:
        """A clean platform: no files, SMS, mail or run-time rules; configured accounts and
        credits back; the clock back to `processing.clock`."""
        self._call("POST", "/api/reset")

    def check(self, data: bytes, name: str, *, login: str | None = None) -> dict[str, Any]:
        """The verdict the platform would give `data` named `name`, recording nothing."""
        return self._call("POST", "/api/check", data, query={"name": name, "login": login})

    def drop(self, name: str, data: bytes, *, login: str = "demo") -> dict[str, Any]:
        """Put a file into `SEND_SMS` without FTP (`POST /api/files`), processed like an
        upload; wait for its verdict with `wait_for_file`."""
        return self._call("POST", "/api/files", data, query={"login": login, "name": name})

    # -- steering (contract 9) -----------------------------------------------------------------

    @property
    def faults(self) -> RemoteFaults:
        """Contract 9.2: `.add(**rule)`, `.remove(id)`, `.clear()`, `.list()`."""
        return RemoteFaults(self)

    @property
    def clock(self) -> RemoteClock:
        """Contract 9.3: `.now()`, `.frozen`, `.set(moment)`, `.advance(seconds)`, `.real()`."""
        return RemoteClock(self)

    def advance(self, name: str | None = None, *, login: str | None = None) -> list[dict[str, Any]]:
        """Manual mode: let the waiting file `name` (every one when None) go on; NotFound (a
        LookupError) when no file of that name waits."""
        body = {k: v for k, v in (("name", name), ("login", login)) if v is not None}
        return list(self._call("POST", "/api/processing/advance", body)["advanced"])

    def waiting(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/processing")["waiting"])

    def retrying(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/processing")["retrying"])

    # -- HTTP ------------------------------------------------------------------------------------

    def _list(self, path: str, key: str, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        if "limit" in filters:
            return list(self._call("GET", path, query=filters)[key])
        found: list[dict[str, Any]] = []
        while True:
            query = {**filters, "limit": PAGE, "offset": len(found)}
            page = self._call("GET", path, query=query)[key]
            found.extend(page)
            if len(page) < PAGE:
                return found

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        wait: float = 0.0,
    ) -> dict[str, Any]:
        """One request on a fresh connection; the answer's JSON object, or ApiError."""
        pairs = {k: _text(v) for k, v in (query or {}).items() if v is not None}
        target = path + ("?" + urllib.parse.urlencode(pairs) if pairs else "")
        headers = {"Accept": "application/json"}
        payload: bytes | None = None
        if isinstance(body, bytes):
            payload, headers["Content-Type"] = body, "text/csv"
        elif body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout + wait)
        try:
            conn.request(method, target, body=payload, headers=headers)
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
        finally:
            conn.close()
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):  # every answer of the API is one JSON object
            answer = {"error": f"not a JSON object: {raw[:200].decode('utf-8', 'replace')}"}
            status = max(status, 502)
        if status < 400:
            return answer
        message = str(answer.get("error") or answer.get("status") or f"{method} {path}")
        error = {400: BadRequest, 404: NotFound}.get(status, ApiError)
        raise error(status, message, answer)


class RemoteFaults:
    """The fault rules of a remote mock, as `MockServer.faults` offers them."""

    def __init__(self, client: MockClient) -> None:
        self._client = client

    def add(self, **rule: Any) -> dict[str, Any]:
        """Add a rule; it comes back with its `id`. BadRequest (a ValueError) naming the field."""
        return dict(self._client._call("POST", "/api/faults", rule))

    def remove(self, rule_id: int) -> bool:
        """False when no rule has this id."""
        try:
            self._client._call("DELETE", f"/api/faults/{int(rule_id)}")
        except NotFound:
            return False
        return True

    def clear(self) -> int:
        """Remove every rule (the config file's too, until the next reset); how many."""
        return int(self._client._call("DELETE", "/api/faults")["removed"])

    def list(self) -> list[dict[str, Any]]:
        return list(self._client._call("GET", "/api/faults")["faults"])


class RemoteClock:
    """The platform clock of a remote mock, as `MockServer.clock` offers it."""

    def __init__(self, client: MockClient) -> None:
        self._client = client

    def now(self) -> datetime:
        return _moment(self._client._call("GET", "/api/clock"))

    @property
    def frozen(self) -> bool:
        return bool(self._client._call("GET", "/api/clock")["frozen"])

    def set(self, moment: datetime | str) -> datetime:
        """Freeze the clock at `moment` (without an offset: Europe/Paris wall time)."""
        text = moment.isoformat() if isinstance(moment, datetime) else moment
        return self._put({"now": text})

    def advance(self, seconds: float) -> datetime:
        return self._put({"advance_seconds": seconds})

    def real(self) -> datetime:
        return self._put({"real": True})

    def _put(self, body: dict[str, Any]) -> datetime:
        return _moment(self._client._call("PUT", "/api/clock", body))


def _moment(answer: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(answer["now"]))


def _segment(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
