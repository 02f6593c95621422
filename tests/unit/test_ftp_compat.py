"""The installed pyftpdlib has every private attribute `servers.ftp.compat` relies on."""

from __future__ import annotations

import pytest

from mockserver.servers.ftp import compat


@pytest.mark.parametrize(
    ("cls", "name"), compat.PRIVATE, ids=[f"{c.__name__}.{n}" for c, n in compat.PRIVATE]
)
def test_installed_pyftpdlib_has_the_private_attribute(cls: type, name: str) -> None:
    assert compat.missing([(cls, name)]) == [], (
        f"the installed pyftpdlib lacks {cls.__name__}.{name}: update servers/ftp/compat.py"
    )


def test_verify_accepts_the_installed_pyftpdlib() -> None:
    compat.verify()


def test_a_missing_attribute_is_named_in_one_line() -> None:
    class Handler:
        def __init__(self) -> None:
            self._present = 1

    assert compat.missing([(Handler, "_present"), (Handler, "_gone")]) == ["Handler._gone"]


def test_verify_names_what_an_unsupported_pyftpdlib_lacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class FTPHandler:
        pass

    monkeypatch.setattr(compat, "PRIVATE", ((FTPHandler, "_rnfr"),))
    compat.verify.cache_clear()
    try:
        with pytest.raises(compat.IncompatiblePyftpdlib) as raised:
            compat.verify()
    finally:
        compat.verify.cache_clear()
    message = str(raised.value)
    assert "FTPHandler._rnfr" in message
    assert "pyftpdlib>=2.0,<3" in message
    assert "\n" not in message
