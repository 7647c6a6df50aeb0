"""Revocation reaching every node within seconds, without a database read per request.

Whatever ends credentials or changes rights (a user deleted, an access key deactivated or deleted,
tokens revoked, a role deleted, an identity policy or a group membership changed) bumps the one-row
identity epoch in the same transaction. Every server process
polls that row every ARCA_IDENTITY_POLL_SECONDS (default 1 s): one tiny query per process, not per
request. When it has moved, the process drops its cached credentials, principals and identity
policies, and the next
request of each principal reads the database once. The caches' own TTL (5 s) bounds the damage if
the poll cannot reach the database."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import IdentityEpoch, Role, User
from app.domain.arns import role_arn, user_arn
from app.domain.errors import NotFound
from app.services import authz
from app.services.context import Arca, Principal

log = logging.getLogger("arca.revocation")


def bump(s: Session) -> None:
    """Make every process drop its identity caches (call inside the revoking transaction)."""
    s.execute(update(IdentityEpoch).where(IdentityEpoch.id == 1).values(revision=IdentityEpoch.revision + 1))


def current(arca: Arca) -> int:
    with arca.db.read() as s:
        return s.scalar(select(IdentityEpoch.revision).where(IdentityEpoch.id == 1)) or 0


def revoked_here(arca: Arca) -> None:
    """This process made the change: drop its caches now rather than at the next poll."""
    arca.caches.drop_identity()


async def watch(arca: Arca) -> None:
    """Poll the epoch until cancelled (started by the app's lifespan)."""
    seen = None
    while True:
        try:
            revision = await asyncio.to_thread(current, arca)
            if seen is not None and revision != seen:
                arca.caches.drop_identity()
            seen = revision
        except Exception as exc:  # the database is down: keep polling, the caches' TTL still bounds staleness
            log.warning("identity epoch poll failed: %s", exc)
        await asyncio.sleep(arca.settings.identity_poll_seconds)


def revoke_tokens(arca: Arca, principal: Principal | None, name: str, role: bool = False) -> dict:
    """Every authorization token of user (or role) `name` issued before now dies, on every node;
    for a role, its sessions' temporary credentials too. New ones can be had at once."""
    now = datetime.now(timezone.utc)
    with arca.db.session() as s:
        model = Role if role else User
        row = s.scalar(select(model).where(model.name == name))
        arn = role_arn(arca.account, name) if role else user_arn(arca.account, name)
        authz.require_iam(arca, s, principal, "iam:RevokeTokens", arn)  # an Arca action: admins only by default
        if row is None:
            raise NotFound(f"{'Role' if role else 'User'} {name} does not exist", resource_id=name,
                           resource_type="role" if role else "user")
        row.tokens_valid_after = now
        bump(s)
    revoked_here(arca)
    return {"Arn": arn, "TokensValidAfter": now}
