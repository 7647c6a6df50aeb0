"""Console password hashes: argon2id through argon2-cffi, whose hashes carry their own parameters
(`$argon2id$v=19$m=...,t=...,p=...$salt$digest`), so a hash made with older parameters still
verifies and is known to need replacing. The scrypt hashes of earlier releases (`scrypt$salt$digest`)
still verify and always need replacing; the sign-in that proves the password replaces them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2-cffi's defaults (RFC 9106 low-memory profile)
_ARGON2 = "$argon2"
_SCRYPT = "scrypt$"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from (False for a hash of no known kind)."""
    if stored.startswith(_ARGON2):
        try:
            return _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    if stored.startswith(_SCRYPT):
        return _verify_scrypt(password, stored)
    return False


def needs_rehash(stored: str) -> bool:
    """True for a hash that is not argon2id with the current parameters."""
    if not stored.startswith(_ARGON2):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def dummy_hash() -> str:
    """A hash of a random password with the current parameters: checking against it costs what checking
    a real user's password costs, so an unknown name takes as long as a known one."""
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = hash_password(secrets.token_urlsafe(24))
    return _DUMMY


_DUMMY: str | None = None


def _verify_scrypt(password: str, stored: str) -> bool:
    """The format of earlier releases: scrypt(n=2**14, r=8, p=1), 16-byte salt, base64 fields."""
    try:
        _, salt, digest = stored.split("$", 2)
        expected = base64.b64decode(digest, validate=True)
        derived = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt, validate=True),
                                 n=2**14, r=8, p=1, dklen=64)
    except ValueError:
        return False
    return hmac.compare_digest(derived, expected)
