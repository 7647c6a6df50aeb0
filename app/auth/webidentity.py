"""Web identity tokens (OIDC JWTs from CI systems): verified against the issuer's keys with joserfc.

Pure: the issuer's key set is passed in (services/oidc.py fetches and caches it). A token is
accepted only when its header names an allowed asymmetric algorithm (never `none`, never an HMAC
that a public key could be abused for), its `kid` is among the issuer's keys and the signature
holds, `iss` is the provider's URL, `aud` names one of the provider's audiences, and `exp`, `nbf`
and `iat` place it in its lifetime (with a minute of leeway for clocks). Each refusal says which."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY = 60
MAX_TOKEN = 16 * 1024


class TokenRefused(Exception):
    """`kind`: "invalid" (not a token of this issuer), "expired", "unknown-key" (refetch the keys
    and try once more) or "audience" (valid, but not for this audience)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


@dataclass(frozen=True)
class WebIdentity:
    issuer: str
    subject: str
    audiences: tuple[str, ...]
    claims: dict


def _segment(part: str) -> dict:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenRefused("invalid", "the web identity token is not a JWT (a header that is not base64url "
                                      "JSON)") from None
    if not isinstance(value, dict):
        raise TokenRefused("invalid", "the web identity token is not a JWT (its header is not an object)")
    return value


def unverified_header(token: str) -> dict:
    if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 2:
        raise TokenRefused("invalid", "the web identity token is not a JWT (header.payload.signature)")
    return _segment(token.split(".", 1)[0])


def unverified_issuer(token: str) -> str | None:
    """The `iss` the token claims, to know whose keys to check it with (nothing is trusted yet)."""
    unverified_header(token)
    payload = _segment(token.split(".")[1])
    iss = payload.get("iss")
    return iss if isinstance(iss, str) else None


def verify(token: str, *, keys: dict, issuer: str, audiences: tuple[str, ...], now: float) -> WebIdentity:
    # joserfc is imported by the first token verified: a worker that never sees one does without it.
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    header = unverified_header(token)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise TokenRefused("invalid", f"the web identity token's algorithm {alg!r} is not accepted "
                                      f"(allowed: {', '.join(ALGORITHMS)})")
    kid = header.get("kid")
    try:
        key_set = KeySet.import_key_set(keys)
    except (JoseError, ValueError, TypeError, KeyError):
        raise TokenRefused("invalid", f"the key set of {issuer} could not be read") from None
    known = {k.kid for k in key_set.keys}
    if kid not in known if kid is not None else len(known) != 1:
        raise TokenRefused("unknown-key", f"the web identity token is signed with key {kid!r}, which is not "
                                          f"among the keys of {issuer}")
    try:
        claims = jwt.decode(token, key_set, algorithms=[alg]).claims
    except JoseError as exc:
        raise TokenRefused("invalid", f"the web identity token's signature does not verify with the keys of "
                                      f"{issuer} ({exc.error})") from None
    return _check_claims(claims, issuer, audiences, now)


def _number(claims: dict, name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenRefused("invalid", f"the web identity token has no {name!r} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenRefused("invalid", f"the web identity token's {name!r} claim is not a number")
    return float(value)


def _check_claims(claims: dict, issuer: str, audiences: tuple[str, ...], now: float) -> WebIdentity:
    if claims.get("iss") != issuer:
        raise TokenRefused("invalid", f"the web identity token's issuer {claims.get('iss')!r} is not {issuer!r}")
    exp = _number(claims, "exp", True)
    if exp <= now - LEEWAY:
        raise TokenRefused("expired", f"the web identity token expired at {int(exp)} (now {int(now)})")
    nbf = _number(claims, "nbf", False)
    if nbf is not None and nbf > now + LEEWAY:
        raise TokenRefused("expired", f"the web identity token is not valid before {int(nbf)} (now {int(now)})")
    iat = _number(claims, "iat", True)
    if iat > now + LEEWAY:
        raise TokenRefused("invalid", f"the web identity token was issued in the future ({int(iat)}, now {int(now)})")
    aud = claims.get("aud")
    token_audiences = tuple(aud) if isinstance(aud, list) else (aud,) if isinstance(aud, str) else ()
    if not any(a in audiences for a in token_audiences):
        raise TokenRefused("audience", f"the web identity token's audience {list(token_audiences)} is not one the "
                                       f"provider {issuer} lists ({', '.join(audiences) or 'none'})")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenRefused("invalid", "the web identity token has no 'sub' claim")
    return WebIdentity(issuer, sub, token_audiences, dict(claims))


def condition_values(provider: str, identity: WebIdentity) -> dict[str, list[str]]:
    """The token's claims as trust-policy condition keys: `{provider}:{claim}` (lower case) -> strings.
    Lists give several values; objects are left out (no condition can name them)."""
    out: dict[str, list[str]] = {}
    for name, value in identity.claims.items():
        values = value if isinstance(value, list) else [value]
        strings = [("true" if v else "false") if isinstance(v, bool) else str(v)
                   for v in values if isinstance(v, (str, int, float, bool))]
        if strings:
            out[f"{provider}:{name}".lower()] = strings
    return out
