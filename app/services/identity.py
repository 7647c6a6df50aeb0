"""Principals, credentials and authorization tokens: who a signed request or a token acts as, and
whether it still may (revocation).

A credential (an access key, or a role session's temporary key) is looked up by its id and cached
for a few seconds per process (`Caches.keys`); every revocation bumps the identity epoch, which
each process polls (services/revocation.py) and then drops those caches, so a deactivated key,
a deleted user or `arca admin revoke-tokens` takes effect on every node within seconds, while a
request in the steady state reads no database row to be authenticated."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from sqlalchemy import select

from app.auth import passwords
from app.auth.secretbox import SecretUnreadable
from app.auth.tokens import TokenClaims, check_duration
from app.config import load_secret_key
from app.db.models import AccessKey, AuditEvent, Role, RoleSession, User
from app.domain.arns import assumed_role_arn, role_arn, user_arn
from app.domain.errors import NotFound, Unauthenticated, ValidationError
from app.observability.context import info as request_info
from app.services.caches import MISS
from app.services.context import Arca, Principal
from app.services.domains import domain_for

SESSION_KEY_PREFIX = "ASIA"
log = logging.getLogger("arca.identity")


@dataclass(frozen=True)
class Credential:
    """What SigV4 needs to check a request signed with an access key id."""

    secret: str
    principal: Principal
    token_sha256: str | None = None  # a role session's: the SHA-256 of its session token


def key_context(key_id: str) -> str:
    """What a sealed secret is bound to (app/auth/secretbox.py)."""
    return f"access-key:{key_id}"


def _epoch(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


def principal_of(arca: Arca, user: User, key_id: str | None = None) -> Principal:
    return Principal(user.id, user.name, user.is_admin, user_arn(arca.account, user.name),
                     valid_after=_epoch(user.tokens_valid_after), key_id=key_id)


def session_principal_of(arca: Arca, session: RoleSession, role: Role) -> Principal:
    return Principal(None, f"{role.name}/{session.session_name}", False,
                     assumed_role_arn(arca.account, role.name, session.session_name),
                     valid_after=_epoch(role.tokens_valid_after), key_id=session.access_key_id, role_id=role.id,
                     role_arn=role_arn(arca.account, role.name), expires_at=session.expires_at.timestamp())


# ---- credentials -------------------------------------------------------------------------------------

def _live(cred: Credential | None) -> Credential | None:
    """A cached credential of a role session ends with the session, whatever the cache says."""
    if cred is not None and cred.principal.expires_at is not None and cred.principal.expires_at <= time.time():
        return None
    return cred


def cached_credential(arca: Arca, key_id: str):
    """The credential if a fresh cache entry has it (no database access), else MISS."""
    hit = arca.caches.keys.get(key_id)
    return hit if hit is MISS else _live(hit)


def lookup_key(arca: Arca, key_id: str) -> Credential | None:
    """The credential of an active access key or a live role session, cached briefly."""
    hit = cached_credential(arca, key_id)
    if hit is not MISS:
        return hit
    generation = arca.caches.identity_generation
    with arca.db.read() as s:
        value = _read_session(arca, s, key_id) if key_id.startswith(SESSION_KEY_PREFIX) else _read_key(arca, s, key_id)
    if generation == arca.caches.identity_generation:
        arca.caches.keys.put(key_id, value)
    return _live(value)


def _read_key(arca: Arca, s, key_id: str) -> Credential | None:
    row = s.execute(select(AccessKey, User).join(User, User.id == AccessKey.user_id)
                    .where(AccessKey.access_key_id == key_id)).first()
    if row is None or row[0].status != "Active":
        return None
    secret = _open(arca, row[0].secret_sealed, key_id)
    return None if secret is None else Credential(secret, principal_of(arca, row[1], key_id))


def _read_session(arca: Arca, s, key_id: str) -> Credential | None:
    row = s.execute(select(RoleSession, Role).join(Role, Role.id == RoleSession.role_id)
                    .where(RoleSession.access_key_id == key_id)).first()
    if row is None:
        return None
    session, role = row
    if role.tokens_valid_after is not None and session.created_at < role.tokens_valid_after:
        return None  # revoked with `arca admin revoke-tokens --role`
    secret = _open(arca, session.secret_sealed, key_id)
    return None if secret is None else Credential(secret, session_principal_of(arca, session, role),
                                                  session.token_sha256)


def _open(arca: Arca, sealed: str, key_id: str) -> str | None:
    try:
        return arca.open_secret(sealed, key_context(key_id))
    except SecretUnreadable:
        log.warning("the secret of access key %s does not open with this server's keys", key_id)
        return None


def check_session_token(cred: Credential, presented: str | None) -> bool:
    """A role session's requests must carry its session token (x-amz-security-token); an access
    key's must not carry one."""
    if cred.token_sha256 is None:
        return not presented
    return bool(presented) and hmac.compare_digest(hashlib.sha256(presented.encode()).hexdigest(), cred.token_sha256)


def cached_principal(arca: Arca, user_id: int) -> Principal | None:
    """The principal if a fresh cache entry has it (no database access), else None."""
    hit = arca.caches.principals.get(user_id)
    return None if hit is MISS else hit


def principal_by_id(arca: Arca, user_id: int) -> Principal | None:
    hit = arca.caches.principals.get(user_id)
    if hit is not MISS:
        return hit
    generation = arca.caches.identity_generation
    with arca.db.read() as s:
        user = s.get(User, user_id)
        value = None if user is None else principal_of(arca, user)
    if generation == arca.caches.identity_generation:
        arca.caches.principals.put(user_id, value)
    return value


# ---- authorization tokens ---------------------------------------------------------------------------

def token_principal(arca: Arca, claims: TokenClaims, cached_only: bool = False):
    """The principal a (signature-checked) token acts as, or Unauthenticated saying why it is dead:
    its user deleted, the key that minted it deactivated or deleted, its role session over, or
    revoked since it was issued. With `cached_only`, MISS when answering needs the database."""
    if claims.key_id is not None:
        cred = cached_credential(arca, claims.key_id) if cached_only else lookup_key(arca, claims.key_id)
        if cred is MISS:
            return MISS
        if cred is None:
            raise Unauthenticated("The access key that issued this authorization token is no longer active "
                                  "(deactivated or deleted, or its session ended)")
        principal = cred.principal
        if principal.user_id != claims.user_id:
            raise Unauthenticated("The authorization token is invalid")
    else:
        principal = cached_principal(arca, claims.user_id) if claims.user_id is not None else None
        if principal is None and claims.user_id is not None:
            if cached_only:
                return MISS
            principal = principal_by_id(arca, claims.user_id)
        if principal is None:
            raise Unauthenticated("The principal of this token no longer exists")
    if claims.issued_at < principal.valid_after:
        raise Unauthenticated("The authorization token was revoked (arca admin revoke-tokens); get a new one")
    return principal


def get_authorization_token(arca: Arca, principal: Principal, domain: str, duration: int | None,
                            owner: str | None = None) -> dict:
    """GetAuthorizationToken: a token for `domain`, once the caller may have one."""
    with arca.db.read() as s:
        name = domain_for(arca, s, principal, "codeartifact:GetAuthorizationToken", domain, owner).name
    return issue_token(arca, principal, name, duration)


def issue_token(arca: Arca, principal: Principal, domain: str, duration: int | None) -> dict:
    """A token that lives `duration` seconds (0 or None: the caller's maximum), but never longer than
    the role session it is issued to."""
    seconds = check_duration(duration)
    now = time.time()
    expires = now + seconds
    if principal.expires_at is not None:
        expires = min(expires, principal.expires_at)
    token = arca.signer.issue(user_id=principal.user_id, user_name=principal.name, domain=domain,
                              expires_at=expires, key_id=principal.key_id, issued_at=now)
    _audit_token(arca, principal, domain, int(expires - now))
    return {"authorizationToken": token, "expiration": datetime.fromtimestamp(int(expires), timezone.utc)}


def _audit_token(arca: Arca, principal: Principal, domain: str, seconds: int) -> None:
    """Token issuance is recorded (never the token itself)."""
    ri = request_info()
    with arca.db.session() as s:
        s.add(AuditEvent(principal=principal.arn, action="GetAuthorizationToken", resource_type="domain",
                         resource=domain, domain=domain, source_ip=ri.source_ip if ri else None,
                         request_id=ri.request_id if ri else None,
                         details={"durationSeconds": seconds, "accessKeyId": principal.key_id}))


def with_key(principal: Principal, key_id: str | None) -> Principal:
    return replace(principal, key_id=key_id)


# ---- passwords and console sign-in -----------------------------------------------------------------

def set_password(arca: Arca, name: str, password: str) -> dict:
    if len(password) < 8:
        raise ValidationError("The password must have at least 8 characters")
    hashed = passwords.hash_password(password)  # argon2 takes a while: not inside the transaction
    with arca.db.session() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound(f"User {name} does not exist")
        user.password_hash = hashed
        return {"UserName": name, "PasswordSet": True}


def password_fingerprint(arca: Arca, password_hash: str | None) -> str:
    """A keyed digest of the stored password hash. A console session carries it, so setting a new
    password (`arca admin set-password`) ends every session of that user."""
    key = load_secret_key(arca.settings).encode()
    return hmac.new(key, (password_hash or "").encode(), hashlib.sha256).hexdigest()[:24]


def session_principal(arca: Arca, user_id: int, fingerprint: str) -> Principal | None:
    """The principal of a console session's user, while its password is the one signed in with."""
    with arca.db.read() as s:
        user = s.get(User, user_id)
        if user is None or not hmac.compare_digest(password_fingerprint(arca, user.password_hash), fingerprint):
            return None
        return principal_of(arca, user)
