"""Console sign-in: the password check, throttled per user name and per client address.

Failures are counted in the database (table `signin_throttle`), never in process memory, so the
limits hold across worker processes and nodes sharing it. A counter row per user name and per
address, updated under a row lock, rather than counting audit rows: the check is one indexed row
per limit whatever the size of the trail, concurrent attempts are counted exactly (an attempt is
counted as a failure *before* its password is checked and given back if it succeeds, so N parallel
guesses cannot slip past a limit of 5), and the audit trail keeps its own retention. The audit
trail records every outcome: `SignIn`, `SignInFailed`, `SignInThrottled`.

Rules (settings in app/config.py, documented in docs/console.md): within `signin_window` seconds of
a name's (or address's) first failure, `signin_max_failures` failures for the name
(`signin_max_failures_per_address` from the address) lock it for `signin_lockout` seconds. While
locked, every attempt is answered 429 with Retry-After without looking at the password, so even
the right one waits. A successful sign-in clears its name's failures.

Passwords are argon2id hashes (app/auth/passwords.py); a hash of an older kind (scrypt) or with
older parameters is replaced by the sign-in that proves the password."""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import passwords
from app.db.models import AuditEvent, SigninThrottle, User, utcnow
from app.domain.errors import TooManyRequests
from app.observability.context import info as request_info
from app.services.context import Arca, Principal
from app.services.identity import password_fingerprint, principal_of

MAX_NAME = 64  # user names are 1-64 characters of [A-Za-z0-9+=,.@_-] (identity.create_user)
# At most this many password hashes computed at once per process: argon2 takes 64 MiB each.
_HASHING = threading.BoundedSemaphore(4)


@dataclass(frozen=True)
class _Limit:
    scope: str  # "user" | "address"
    key: str
    max_failures: int


@dataclass(frozen=True)
class _Refusal:
    scope: str
    seconds: int


def sign_in(arca: Arca, name: str, password: str, address: str | None) -> tuple[Principal, str] | None:
    """(principal, password fingerprint) for a correct name and password, None for a wrong one.
    TooManyRequests while the name or the address is locked. An unknown name costs one password
    hash and counts as a failure like a known one, so neither the time nor the answers tell which
    names exist."""
    limits = _limits(arca, name, address)
    with arca.db.session() as s:
        refused = _reserve(arca, s, limits, utcnow())
        if refused is not None:
            _audit(s, "SignInThrottled", name, address, None, limitedBy=refused.scope,
                   retryAfterSeconds=refused.seconds)
        user = s.scalar(select(User).where(User.name == name)) if name and refused is None else None
        user_id, stored = (user.id, user.password_hash) if user is not None else (None, None)
    if refused is not None:
        what = "this user name" if refused.scope == "user" else "your address"
        raise TooManyRequests(f"Too many failed sign-ins for {what}; try again in {refused.seconds} seconds.",
                              retry_after=refused.seconds)
    with _HASHING:
        ok = passwords.verify_password(password, stored or passwords.dummy_hash()) and stored is not None
        new_hash = passwords.hash_password(password) if ok and passwords.needs_rehash(stored) else None
    if not ok:
        with arca.db.session() as s:
            locked = _count_failure(arca, s, limits, utcnow())
            _audit(s, "SignInFailed", name, address, None, known=user_id is not None,
                   **({"locked": locked, "lockedForSeconds": int(arca.settings.signin_lockout)} if locked else {}))
        _forget_expired(arca)
        return None
    with arca.db.session() as s:
        _give_back(s, limits, utcnow())
        if new_hash is not None:
            # Only over the hash just checked: a password set meanwhile (arca admin set-password) wins.
            done = s.execute(update(User).where(User.id == user_id, User.password_hash == stored)
                             .values(password_hash=new_hash)).rowcount == 1
            stored = new_hash if done else stored
        user = s.get(User, user_id)
        if user is None:  # deleted while its password was being checked
            return None
        principal = principal_of(arca, user)
        _audit(s, "SignIn", name, address, principal.arn,
               **({"passwordRehashed": "argon2id"} if new_hash is not None and stored == new_hash else {}))
    return principal, password_fingerprint(arca, stored)


# ---- the counters --------------------------------------------------------------------------------

def _limits(arca: Arca, name: str, address: str | None) -> list[_Limit]:
    """The counters an attempt touches, always in this order (user, then address), so that two
    transactions never wait for each other's rows in opposite orders."""
    st = arca.settings
    out = []
    if st.signin_max_failures:
        # A name longer than any user name names nobody: counted under its digest ('#' is never
        # part of a user name), so it cannot collide with a real one.
        key = name if len(name) <= MAX_NAME else "#" + hashlib.sha256(name.encode()).hexdigest()
        out.append(_Limit("user", key, st.signin_max_failures))
    if address and st.signin_max_failures_per_address:
        out.append(_Limit("address", address[:80], st.signin_max_failures_per_address))
    return out


def _row(s: Session, limit: _Limit, now: datetime) -> SigninThrottle:
    """The counter row, locked for this transaction (created when missing; race-safe)."""
    q = (select(SigninThrottle).where(SigninThrottle.scope == limit.scope, SigninThrottle.key == limit.key)
         .with_for_update())
    row = s.scalar(q)
    if row is not None:
        return row
    try:
        with s.begin_nested():
            row = SigninThrottle(scope=limit.scope, key=limit.key, failures=0, window_start=now, expires_at=now)
            s.add(row)
    except IntegrityError:
        row = s.scalar(q)
        if row is None:
            raise
    return row


def _reserve(arca: Arca, s: Session, limits: list[_Limit], now: datetime) -> _Refusal | None:
    """Count this attempt as a failure on every counter, or refuse it (counting nothing) when one of
    them is locked or already full of failures and attempts in flight."""
    window = timedelta(seconds=arca.settings.signin_window)
    rows = [_row(s, limit, now) for limit in limits]
    refusal = None
    for limit, row in zip(limits, rows):
        if row.locked_until is not None and row.locked_until > now:
            wait = (row.locked_until - now).total_seconds()
        elif row.locked_until is not None or row.window_start + window <= now:
            row.failures, row.window_start, row.locked_until = 0, now, None  # the lock or window has passed
            continue
        elif row.failures >= limit.max_failures:
            wait = 1.0  # the limit is taken by attempts still being checked
        else:
            continue
        seconds = max(1, math.ceil(wait))
        if refusal is None or seconds > refusal.seconds:
            refusal = _Refusal(limit.scope, seconds)
    if refusal is None:
        for row in rows:
            row.failures += 1
            row.expires_at = _expiry(row, window)
    return refusal


def _count_failure(arca: Arca, s: Session, limits: list[_Limit], now: datetime) -> list[str]:
    """The attempt failed (it is counted already): lock every counter it filled. Returns the scopes locked."""
    window = timedelta(seconds=arca.settings.signin_window)
    locked = []
    for limit in limits:
        row = _row(s, limit, now)
        if row.failures >= limit.max_failures and (row.locked_until is None or row.locked_until <= now):
            row.locked_until = now + timedelta(seconds=arca.settings.signin_lockout)
            locked.append(limit.scope)
        row.expires_at = _expiry(row, window)
    return locked


def _give_back(s: Session, limits: list[_Limit], now: datetime) -> None:
    """The attempt succeeded: its name starts afresh, and the address gets back the attempt it lent."""
    for limit in limits:
        row = _row(s, limit, now)
        if limit.scope == "user":
            row.failures, row.locked_until = 0, None
        else:
            row.failures = max(0, row.failures - 1)


def _expiry(row: SigninThrottle, window: timedelta) -> datetime:
    end = row.window_start + window
    return max(end, row.locked_until) if row.locked_until is not None else end


def _forget_expired(arca: Arca, batch: int = 500) -> None:
    """Delete counters that no longer mean anything, in a transaction of their own that waits for no
    row (SKIP LOCKED on PostgreSQL; SQLite has one writer at a time anyway)."""
    with arca.db.session() as s:
        ids = list(s.scalars(select(SigninThrottle.id).where(SigninThrottle.expires_at < utcnow())
                             .limit(batch).with_for_update(skip_locked=True)))
        if ids:
            s.execute(delete(SigninThrottle).where(SigninThrottle.id.in_(ids)))


def _audit(s: Session, action: str, name: str, address: str | None, principal: str | None, **details) -> None:
    """One audit row per sign-in outcome: never the password; the name as typed, shortened, with
    anything unprintable replaced (`arca admin audit` prints it to a terminal)."""
    ri = request_info()
    shown = "".join(c if c.isprintable() else "?" for c in name[:MAX_NAME * 2])
    s.add(AuditEvent(principal=principal, action=action, resource_type="user", resource=shown,
                     domain=None, source_ip=address or (ri.source_ip if ri else None),
                     request_id=ri.request_id if ri else None, details=details))
