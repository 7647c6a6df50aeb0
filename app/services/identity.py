"""Users, access keys, principals and authorization tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from datetime import datetime, timezone

from sqlalchemy import select

from app.auth import passwords
from app.auth.tokens import check_duration
from app.config import load_secret_key
from app.db.models import AccessKey, AuditEvent, User
from app.domain.arns import user_arn
from app.domain.errors import Conflict, NotFound, ValidationError
from app.observability.context import info as request_info
from app.services.caches import MISS
from app.services.context import Arca, Principal
from app.services.domains import domain_for


def principal_of(arca: Arca, user: User) -> Principal:
    return Principal(user.id, user.name, user.is_admin, user_arn(arca.account, user.name))


def create_user(arca: Arca, name: str, *, admin: bool = False) -> dict:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "+=,.@_-" for c in name):
        raise ValidationError(f"Invalid user name {name!r}: 1-64 letters, digits or +=,.@_-")
    with arca.db.session() as s:
        if s.scalar(select(User).where(User.name == name)):
            raise Conflict(f"User {name} already exists", resource_id=name, resource_type="user")
        user = User(name=name, is_admin=admin)
        s.add(user)
        s.flush()
        return {"User": {"UserName": name, "UserId": str(user.id), "Arn": user_arn(arca.account, name),
                         "CreateDate": user.created_at.isoformat(), "Admin": admin}}


def create_access_key(arca: Arca, name: str) -> dict:
    with arca.db.session() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound(f"User {name} does not exist; create it with `arca admin create-user {name}`")
        alphabet = string.ascii_uppercase + string.digits
        key = AccessKey(
            access_key_id="AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
            secret=secrets.token_urlsafe(30)[:40],
            user_id=user.id,
        )
        s.add(key)
        s.flush()
        return {"AccessKey": {"UserName": name, "AccessKeyId": key.access_key_id,
                              "SecretAccessKey": key.secret, "Status": key.status,
                              "CreateDate": key.created_at.isoformat()}}


def lookup_key(arca: Arca, key_id: str) -> tuple[str, Principal] | None:
    """(secret, principal) for an active access key, cached briefly."""
    hit = arca.caches.keys.get(key_id)
    if hit is not MISS:
        return hit
    with arca.db.read() as s:
        row = s.execute(
            select(AccessKey, User).join(User, User.id == AccessKey.user_id).where(AccessKey.access_key_id == key_id)
        ).first()
        value = None if row is None or row[0].status != "Active" else (row[0].secret, principal_of(arca, row[1]))
    return arca.caches.keys.put(key_id, value)


def cached_principal(arca: Arca, user_id: int) -> Principal | None:
    """The principal if a fresh cache entry has it (no database access), else None."""
    hit = arca.caches.principals.get(user_id)
    return None if hit is MISS else hit


def principal_by_id(arca: Arca, user_id: int) -> Principal | None:
    hit = arca.caches.principals.get(user_id)
    if hit is not MISS:
        return hit
    with arca.db.read() as s:
        user = s.get(User, user_id)
        value = None if user is None else principal_of(arca, user)
    return arca.caches.principals.put(user_id, value)


def get_authorization_token(arca: Arca, principal: Principal, domain: str, duration: int | None,
                            owner: str | None = None) -> dict:
    """GetAuthorizationToken: a token for `domain`, once the caller may have one."""
    with arca.db.read() as s:
        name = domain_for(arca, s, principal, "codeartifact:GetAuthorizationToken", domain, owner).name
    return issue_token(arca, principal, name, duration)


def issue_token(arca: Arca, principal: Principal, domain: str, duration: int | None) -> dict:
    seconds = check_duration(duration)
    expires = time.time() + seconds
    token = arca.signer.issue(user_id=principal.user_id, user_name=principal.name, domain=domain, expires_at=expires)
    _audit_token(arca, principal, domain, seconds)
    return {"authorizationToken": token, "expiration": datetime.fromtimestamp(int(expires), timezone.utc)}


def _audit_token(arca: Arca, principal: Principal, domain: str, seconds: int) -> None:
    """Token issuance is recorded (never the token itself)."""
    ri = request_info()
    with arca.db.session() as s:
        s.add(AuditEvent(principal=principal.arn, action="GetAuthorizationToken", resource_type="domain",
                         resource=domain, domain=domain, source_ip=ri.source_ip if ri else None,
                         request_id=ri.request_id if ri else None, details={"durationSeconds": seconds}))


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


# ---- console sign-in -------------------------------------------------------------------------------

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
