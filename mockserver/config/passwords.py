"""The password-hash scheme of the configuration file (`scrypt$n$r$p$salt$hash`) and the
constant-time comparisons the authenticators use."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_DKLEN = 32
# Upper bounds for values read from a config file, so a hostile hash cannot ask for gigabytes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=dklen,
        maxmem=256 * r * n + 1024 * 1024,
    )


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt_b64$hash_b64` with a random 16-byte salt (stdlib `hashlib.scrypt`)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_DKLEN)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        return None
    return n, r, p, salt, digest


def valid_password_hash(encoded: str) -> bool:
    return _parse_hash(encoded) is not None


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of `password` against a `hash_password` value; False if malformed."""
    parsed = _parse_hash(encoded)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(digest)), digest)


def compare_plain(password: str, expected: str) -> bool:
    """Constant-time comparison of two plain passwords (any Unicode)."""
    return hmac.compare_digest(
        password.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
