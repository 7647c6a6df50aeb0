"""Authorization tokens: signed (itsdangerous HMAC), carrying principal, domain and expiry, the
access key that minted them and when (so they die with that key, and with `revoke-tokens`).

Checking one is an HMAC and a JSON decode: microseconds, never a password hash."""

from __future__ import annotations

import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from app.domain.errors import Unauthenticated, ValidationError

MIN_DURATION = 900
MAX_DURATION = 43200
_SALT = "arca.authorization-token.v1"


@dataclass(frozen=True)
class TokenClaims:
    user_id: int | None  # None: a role session's token
    user_name: str
    domain: str
    expires_at: float
    key_id: str | None = None  # the access key (or role session key) that minted it; None: the console
    issued_at: float = 0.0  # epoch seconds (millisecond precision); 0 for tokens older than this field


def check_duration(duration: int | None) -> int:
    """CodeArtifact's rule: 0 (the caller's maximum) or 900-43200 seconds; default 43200."""
    if duration is None:
        return MAX_DURATION
    if duration == 0:
        return MAX_DURATION
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise ValidationError(
            f"durationSeconds must be 0 or between {MIN_DURATION} and {MAX_DURATION}, not {duration}"
        )
    return duration


class TokenSigner:
    VERIFIED_MAX = 4096  # tokens whose signature this process has checked (a client sends its token on every request)

    def __init__(self, secret_key: str):
        self._s = URLSafeSerializer(secret_key, salt=_SALT)
        # A token string's signature and claims never change, so they are checked once per process;
        # expiry and domain are checked on every use. Emptied when full (a few hundred KiB at most).
        self._verified: dict[str, TokenClaims] = {}

    def issue(self, *, user_id: int | None, user_name: str, domain: str, expires_at: float,
              key_id: str | None = None, issued_at: float | None = None) -> str:
        issued = time.time() if issued_at is None else issued_at
        data = {"u": user_id, "n": user_name, "d": domain, "e": int(expires_at), "i": int(issued * 1000)}
        if key_id:
            data["k"] = key_id
        return self._s.dumps(data)

    def verify(self, token: str, *, domain: str, now: float | None = None) -> TokenClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._verified) >= self.VERIFIED_MAX:
                self._verified.clear()
            self._verified[token] = claims
        if claims.expires_at <= (time.time() if now is None else now):
            raise Unauthenticated("The authorization token has expired; get a new one with get-authorization-token")
        if claims.domain != domain:
            raise Unauthenticated(f"The authorization token is not valid for domain {domain!r}")
        return claims

    def _decode(self, token: str) -> TokenClaims:
        try:
            data = self._s.loads(token)
            return TokenClaims(None if data["u"] is None else int(data["u"]), str(data["n"]), str(data["d"]),
                               float(data["e"]), str(data["k"]) if data.get("k") else None,
                               int(data.get("i", 0)) / 1000)
        except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
            raise Unauthenticated("The authorization token is invalid") from None
