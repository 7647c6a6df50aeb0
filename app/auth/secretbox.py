"""Secrets at rest (access key secrets, role session secrets, remote credentials): sealed with
AES-256-GCM under a key derived from the server key with HKDF-SHA256.

A sealed value is `v1.{kid}.{base64url(nonce + ciphertext + tag)}`. `kid` names the server key it
was sealed under (a digest of the derived key, never the key), so a box that holds the current
key and the previous ones opens values sealed under any of them, and `arca admin
rotate-secret-key` can tell which values still need resealing. Each value is bound to what it
belongs to (`context`, e.g. the access key id) as associated data: a sealed secret copied onto
another row does not open there.

SigV4 verification needs the secret itself (an HMAC key), so secrets are encrypted, not hashed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
_INFO = b"arca secrets at rest v1"
_SALT = b"arca"


class SecretUnreadable(Exception):
    """A sealed value that no key of the box opens (wrong key, another row's value, corrupt)."""


def _derive(server_key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(server_key.encode())


def _kid(derived: bytes) -> str:
    return hashlib.sha256(b"arca-kid:" + derived).hexdigest()[:12]


class SecretBox:
    """Seal with the first (current) server key; open with any of them."""

    def __init__(self, server_keys: Sequence[str]):
        if not server_keys:
            raise ValueError("a SecretBox needs at least one server key")
        derived = [_derive(k) for k in server_keys]
        self._keys = {_kid(d): AESGCM(d) for d in derived}
        self.current_kid = _kid(derived[0])
        self._current = self._keys[self.current_kid]

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        blob = nonce + self._current.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{VERSION}.{self.current_kid}.{base64.urlsafe_b64encode(blob).decode().rstrip('=')}"

    def open(self, sealed: str, context: str) -> str:
        version, kid, data = _parts(sealed)
        key = self._keys.get(kid)
        if key is None:
            raise SecretUnreadable(f"sealed under key {kid}, which this server does not have "
                                   "(see ARCA_SECRET_KEY_PREVIOUS in docs/identity.md)")
        try:
            blob = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
            return key.decrypt(blob[:12], blob[12:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretUnreadable("the sealed value does not open (corrupt, or another row's)") from None

    def has_key_of(self, sealed: str) -> bool:
        try:
            return _parts(sealed)[1] in self._keys
        except SecretUnreadable:
            return True  # not ours to reload keys for: it is not a sealed value at all

    def is_current(self, sealed: str) -> bool:
        """Sealed under the current key (nothing to do for a rotation)."""
        try:
            return _parts(sealed)[1] == self.current_kid
        except SecretUnreadable:
            return False


def _parts(sealed: str) -> tuple[str, str, str]:
    parts = sealed.split(".", 2) if isinstance(sealed, str) else []
    if len(parts) != 3 or parts[0] != VERSION:
        raise SecretUnreadable("not a sealed value")
    return parts[0], parts[1], parts[2]
