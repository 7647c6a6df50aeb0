"""Secrets at rest (remote credentials): sealed with AES-256-GCM under a key derived from the server
key with HKDF-SHA256 for one purpose, bound to what they belong to (associated data), so a sealed
value copied onto another row does not open. Pure: the caller passes the server key.

Rotating the server key makes sealed secrets unreadable: they must be stored again."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"


class Unsealable(ValueError):
    """A sealed value that does not open with this key for this owner (other key, tampered)."""


def derive_key(server_key: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"arca-sealing-v1",
                info=purpose.encode()).derive(server_key.encode())


def seal(key: bytes, plaintext: str, owner: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), owner.encode())
    return base64.urlsafe_b64encode(VERSION + nonce + sealed).decode()


def unseal(key: bytes, token: str, owner: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        if raw[:1] != VERSION:
            raise Unsealable("unknown sealing version")
        return AESGCM(key).decrypt(raw[1:13], raw[13:], owner.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise Unsealable("the sealed value does not open with this server key") from exc
