"""Webhook administration and delivery of outbox events.

Every process runs a deliverer. A delivery is claimed with a conditional UPDATE (the database
decides, so two processes or nodes never send the same delivery at once), POSTed with an
HMAC-SHA256 signature, and retried with exponential backoff. Per webhook, events go out in outbox
order and a failing event holds back the later ones, so each package's events arrive in
sequenceNumber order. Delivery is at-least-once; receivers deduplicate by eventDeduplicationId."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select, update

from app.auth.secretbox import SecretUnreadable
from app.db.models import AuditEvent, Delivery, Domain, OutboxEvent, Webhook, utcnow
from app.domain.errors import NotFound, ValidationError
from app.observability import metrics
from app.services.context import Arca

log = logging.getLogger("arca.webhooks")
SIGNATURE_HEADER = "X-Arca-Signature-256"
CLAIM_SECONDS = 30
MAX_BACKOFF = 300


MAX_SECRET = 256


def sign(secret: str | None, body: bytes) -> str | None:
    if not secret:
        return None
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ---- administration ------------------------------------------------------------------------

def parse_filter(text: str | None) -> dict:
    out = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("format", "repository", "namespace", "package"):
            raise ValidationError(f"Bad filter {part!r}: use format=...,repository=...,namespace=...,package=...")
        out[key.strip()] = value.strip()
    return out


def create_webhook(arca: Arca, domain: str, url: str, secret: str | None, filters: dict) -> dict:
    if not url.startswith(("http://", "https://")):
        raise ValidationError("The webhook URL must start with http:// or https://")
    with arca.db.session() as s:
        d = s.scalar(select(Domain).where(Domain.name == domain))
        if d is None:
            raise NotFound(f"Domain {domain} does not exist")
        if secret is not None and not 1 <= len(secret) <= MAX_SECRET:
            raise ValidationError(f"The webhook secret must have 1-{MAX_SECRET} characters")
        w = Webhook(domain_id=d.id, url=url, secret=None, filters=filters)
        s.add(w)
        s.flush()
        if secret:  # sealed, bound to the webhook's id: a dump of the database holds no usable key
            w.secret = arca.box.seal(secret, webhook_context(w.id))
        return _shape(w, domain)


def webhook_context(webhook_id: int) -> str:
    return f"webhook:{webhook_id}"


def _secret(arca: Arca, hook: Webhook) -> str | None:
    if not hook.secret:
        return None
    try:
        return arca.open_secret(hook.secret, webhook_context(hook.id))
    except SecretUnreadable:
        raise SecretUnreadable(f"the secret of webhook {hook.id} does not open with this server's keys "
                               "(ARCA_SECRET_KEY_PREVIOUS, docs/identity.md)") from None


def _shape(w: Webhook, domain: str) -> dict:
    return {"id": w.id, "domain": domain, "url": w.url, "filters": w.filters, "hasSecret": bool(w.secret),
            "createdTime": w.created_at.isoformat()}


def list_webhooks(arca: Arca, domain: str | None = None) -> dict:
    with arca.db.read() as s:
        q = select(Webhook, Domain.name).join(Domain, Domain.id == Webhook.domain_id)
        if domain:
            q = q.where(Domain.name == domain)
        return {"webhooks": [_shape(w, dn) for w, dn in s.execute(q.order_by(Webhook.id))]}


def delete_webhook(arca: Arca, webhook_id: int) -> dict:
    with arca.db.session() as s:
        w = s.get(Webhook, webhook_id)
        if w is None:
            raise NotFound(f"Webhook {webhook_id} does not exist")
        dn = s.get(Domain, w.domain_id).name
        out = _shape(w, dn)
        s.delete(w)
        return out


def query_audit(arca: Arca, since: datetime | None = None, domain: str | None = None,
                principal: str | None = None, limit: int = 1000) -> list[dict]:
    with arca.db.read() as s:
        q = select(AuditEvent)
        if since:
            q = q.where(AuditEvent.at >= since)
        if domain:
            q = q.where(AuditEvent.domain == domain)
        if principal:
            q = q.where(or_(AuditEvent.principal == principal, AuditEvent.principal.endswith("/" + principal)))
        rows = s.scalars(q.order_by(AuditEvent.id).limit(limit))
        return [{"time": r.at.isoformat(), "principal": r.principal, "action": r.action,
                 "resourceType": r.resource_type, "resource": r.resource, "domain": r.domain,
                 "sourceIp": r.source_ip, "requestId": r.request_id, "details": r.details} for r in rows]


# ---- delivery ------------------------------------------------------------------------------

def _due(arca: Arca, now: datetime, batch: int = 50) -> list[tuple[int, int]]:
    with arca.db.read() as s:
        rows = s.execute(
            select(Delivery.event_id, Delivery.webhook_id).where(
                Delivery.status == "pending",
                or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now))
            .order_by(Delivery.webhook_id, Delivery.event_id).limit(batch)).all()
    return [(e, w) for e, w in rows]


def _claim(arca: Arca, event_id: int, webhook_id: int, now: datetime):
    """Claim one delivery if it is due and no earlier delivery to the same webhook is pending."""
    with arca.db.session() as s:
        earlier = s.scalar(select(Delivery.event_id).where(
            Delivery.webhook_id == webhook_id, Delivery.status == "pending", Delivery.event_id < event_id).limit(1))
        if earlier is not None:
            return None
        res = s.execute(update(Delivery).where(
            Delivery.event_id == event_id, Delivery.webhook_id == webhook_id, Delivery.status == "pending",
            Delivery.next_attempt_at <= now,
            or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now))
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS)))
        if res.rowcount != 1:
            return None
        ev = s.get(OutboxEvent, event_id)
        hook = s.get(Webhook, webhook_id)
        try:
            secret = _secret(arca, hook)
        except SecretUnreadable as exc:
            secret = exc  # the delivery fails with this reason rather than going out unsigned
        return ev.payload, hook.url, secret, ev.dedup_id


def _finish(arca: Arca, event_id: int, webhook_id: int, ok: bool, error: str | None) -> None:
    now = utcnow()
    with arca.db.session() as s:
        d = s.get(Delivery, (event_id, webhook_id))
        if d is None:
            return
        d.attempts += 1
        d.claimed_until = None
        if ok:
            d.status, d.delivered_at, d.last_error = "delivered", now, None
        else:
            d.last_error = (error or "")[:2000]
            d.next_attempt_at = now + timedelta(seconds=min(MAX_BACKOFF, 2 ** min(d.attempts, 9)))


async def deliver_once(arca: Arca, client: httpx.AsyncClient) -> int:
    now = utcnow()
    sent = 0
    blocked: set[int] = set()
    for event_id, webhook_id in await asyncio.to_thread(_due, arca, now):
        if webhook_id in blocked:
            continue
        claim = await asyncio.to_thread(_claim, arca, event_id, webhook_id, now)
        if claim is None:
            blocked.add(webhook_id)
            continue
        payload, url, secret, dedup = claim
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "arca-webhooks",
                   "X-Arca-Event-Id": dedup, "X-Arca-Delivery-Attempt": "1"}
        ok, error = False, None
        if isinstance(secret, SecretUnreadable):
            await asyncio.to_thread(_finish, arca, event_id, webhook_id, False, str(secret))
            blocked.add(webhook_id)
            continue
        sig = sign(secret, body)
        if sig:
            headers[SIGNATURE_HEADER] = sig
        try:
            resp = await client.post(url, content=body, headers=headers)
            ok = 200 <= resp.status_code < 300
            error = None if ok else f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        metrics.WEBHOOK_DELIVERIES.labels("ok" if ok else "error").inc()
        await asyncio.to_thread(_finish, arca, event_id, webhook_id, ok, error)
        if ok:
            sent += 1
        else:
            blocked.add(webhook_id)
    return sent


async def run_deliverer(arca: Arca, interval: float = 0.5) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            try:
                await deliver_once(arca, client)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep delivering; the reason is in the log
                log.exception("webhook delivery round failed")
            await asyncio.sleep(interval)


