"""Webhook administration, delivery of outbox events, and the dead-letter list.

Every process runs a deliverer. Each webhook is its own queue, served by its own task: a receiver
that is down, slow or hanging holds back only its own events, never another webhook's. A
delivery is claimed with a conditional UPDATE (the database decides, so two processes or nodes
never send the same delivery at once), POSTed with an HMAC-SHA256 signature and its attempt number,
and retried with exponential backoff and jitter. Per webhook, events go out in outbox order and a
failing event holds back the later ones, so each package's events arrive in sequenceNumber order,
until its retries run out (ARCA_WEBHOOK_MAX_ATTEMPTS, ARCA_WEBHOOK_MAX_AGE): then it moves to the
dead-letter list (`arca admin list-webhook-failures`, `arca admin redeliver`) and the queue moves
on. Delivery is at-least-once; receivers deduplicate by eventDeduplicationId."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, func, or_, select, update

from app.auth.secretbox import SecretUnreadable
from app.db.models import AuditEvent, Delivery, Domain, OutboxEvent, Webhook, utcnow
from app.domain.errors import NotFound, ValidationError
from app.observability import metrics
from app.services.context import Arca

log = logging.getLogger("arca.webhooks")
SIGNATURE_HEADER = "X-Arca-Signature-256"
ATTEMPT_HEADER = "X-Arca-Delivery-Attempt"
CLAIM_MARGIN = 30  # a claim outlives the request timeout by this much (seconds)


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


def _shape(w: Webhook, domain: str, counts: dict | None = None) -> dict:
    out = {"id": w.id, "domain": domain, "url": w.url, "filters": w.filters, "hasSecret": bool(w.secret),
           "createdTime": w.created_at.isoformat()}
    if counts is not None:
        out["pending"] = counts.get("pending", 0)
        out["deadLetters"] = counts.get("failed", 0)
    return out


def list_webhooks(arca: Arca, domain: str | None = None) -> dict:
    with arca.db.read() as s:
        q = select(Webhook, Domain.name).join(Domain, Domain.id == Webhook.domain_id)
        if domain:
            q = q.where(Domain.name == domain)
        counts: dict[int, dict] = {}
        for webhook_id, status, n in s.execute(select(Delivery.webhook_id, Delivery.status, func.count())
                                               .where(Delivery.status != "delivered")
                                               .group_by(Delivery.webhook_id, Delivery.status)):
            counts.setdefault(webhook_id, {})[status] = n
        return {"webhooks": [_shape(w, dn, counts.get(w.id, {})) for w, dn in s.execute(q.order_by(Webhook.id))]}


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


# ---- the dead-letter list ------------------------------------------------------------------

def _failures_query(domain: str | None, webhook_id: int | None, event_id: int | None):
    q = (select(Delivery, OutboxEvent, Webhook, Domain.name)
         .join(OutboxEvent, OutboxEvent.id == Delivery.event_id).join(Webhook, Webhook.id == Delivery.webhook_id)
         .join(Domain, Domain.id == Webhook.domain_id).where(Delivery.status == "failed"))
    if domain:
        q = q.where(Domain.name == domain)
    if webhook_id is not None:
        q = q.where(Delivery.webhook_id == webhook_id)
    if event_id is not None:
        q = q.where(Delivery.event_id == event_id)
    return q.order_by(Delivery.webhook_id, Delivery.event_id)


def _failure(d: Delivery, ev: OutboxEvent, hook: Webhook, domain: str) -> dict:
    detail = (ev.payload or {}).get("detail", {})
    return {"webhook": hook.id, "url": hook.url, "event": ev.id, "domain": domain,
            "eventDeduplicationId": ev.dedup_id, "repository": detail.get("repositoryName"),
            "format": detail.get("packageFormat"), "namespace": detail.get("packageNamespace"),
            "package": detail.get("packageName"), "version": detail.get("packageVersion"),
            "state": detail.get("packageVersionState"), "attempts": d.attempts, "lastError": d.last_error,
            "eventTime": ev.created_at.isoformat(), "failedTime": d.failed_at.isoformat() if d.failed_at else None}


def list_failures(arca: Arca, domain: str | None = None, webhook_id: int | None = None, limit: int = 1000) -> dict:
    """Deliveries whose retries ran out, oldest first per webhook."""
    with arca.db.read() as s:
        rows = s.execute(_failures_query(domain, webhook_id, None).limit(limit)).all()
        return {"failures": [_failure(*row) for row in rows]}


def redeliver(arca: Arca, domain: str | None = None, webhook_id: int | None = None,
              event_id: int | None = None) -> dict:
    """Put dead letters back in their webhook's queue, each with a fresh round of retries (the
    attempt numbers go on counting). Nothing is selected unless something is named."""
    if domain is None and webhook_id is None and event_id is None:
        raise ValidationError("Name what to redeliver: --webhook ID, --event ID, --domain NAME (or --all)")
    return _requeue(arca, domain, webhook_id, event_id)


def redeliver_all(arca: Arca) -> dict:
    return _requeue(arca, None, None, None)


def _requeue(arca: Arca, domain: str | None, webhook_id: int | None, event_id: int | None) -> dict:
    now = utcnow()
    with arca.db.session() as s:
        rows = s.execute(_failures_query(domain, webhook_id, event_id)).all()
        for d, _ev, _hook, _dn in rows:
            d.status, d.requeued_at, d.attempts_before_requeue = "pending", now, d.attempts
            d.next_attempt_at, d.claimed_until, d.failed_at = now, None, None
        return {"requeued": len(rows), "deliveries": [{"webhook": d.webhook_id, "event": d.event_id}
                                                      for d, *_ in rows]}


# ---- delivery ------------------------------------------------------------------------------

def retry_delay(attempt: int, base: float, cap: float, rand=random.random) -> float:
    """Seconds before retry number `attempt` (1 = after the first failure): base, doubling each
    time, capped, then jittered down by up to half so that many receivers failing together do not
    come back in lockstep."""
    delay = min(cap, base * 2 ** min(attempt - 1, 62))
    return delay * (0.5 + rand() / 2)


def _heads(arca: Arca, now: datetime) -> list[int]:
    """The webhooks whose oldest pending delivery is due and unclaimed (each webhook's queue is
    looked at by its head only, so a long backlog of one cannot hide another's)."""
    head = (select(Delivery.webhook_id, func.min(Delivery.event_id).label("event_id"))
            .where(Delivery.status == "pending").group_by(Delivery.webhook_id).subquery())
    with arca.db.read() as s:
        return list(s.scalars(
            select(Delivery.webhook_id)
            .join(head, and_(Delivery.webhook_id == head.c.webhook_id, Delivery.event_id == head.c.event_id))
            .where(Delivery.next_attempt_at <= now,
                   or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now))))


def _claim(arca: Arca, webhook_id: int, now: datetime) -> dict | None:
    """Claim the webhook's oldest pending delivery if it is due and nobody holds it."""
    hold = timedelta(seconds=arca.settings.webhook_timeout + CLAIM_MARGIN)
    with arca.db.session() as s:
        event_id = s.scalar(select(func.min(Delivery.event_id)).where(
            Delivery.webhook_id == webhook_id, Delivery.status == "pending"))
        if event_id is None:
            return None
        res = s.execute(update(Delivery).where(
            Delivery.event_id == event_id, Delivery.webhook_id == webhook_id, Delivery.status == "pending",
            Delivery.next_attempt_at <= now,
            or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now))
            .values(claimed_until=now + hold))
        if res.rowcount != 1:
            return None
        d = s.get(Delivery, (event_id, webhook_id))
        ev = s.get(OutboxEvent, event_id)
        hook = s.get(Webhook, webhook_id)
        try:
            secret = _secret(arca, hook)
        except SecretUnreadable as exc:
            secret = exc  # the delivery fails with this reason rather than going out unsigned
        return {"event_id": event_id, "webhook_id": webhook_id, "payload": ev.payload, "url": hook.url,
                "secret": secret, "dedup": ev.dedup_id, "attempt": d.attempts + 1}


def _finish(arca: Arca, claim: dict, ok: bool, error: str | None) -> str:
    """Record an attempt: 'delivered', 'retry' (backing off) or 'failed' (out of retries: dead letter)."""
    settings = arca.settings
    now = utcnow()
    with arca.db.session() as s:
        d = s.get(Delivery, (claim["event_id"], claim["webhook_id"]))
        if d is None:  # the webhook was deleted meanwhile
            return "gone"
        d.attempts += 1
        d.claimed_until = None
        if ok:
            d.status, d.delivered_at, d.last_error = "delivered", now, None
            return "delivered"
        d.last_error = (error or "")[:2000]
        round_attempts = d.attempts - (d.attempts_before_requeue or 0)
        since = d.requeued_at or s.get(OutboxEvent, d.event_id).created_at
        if round_attempts >= settings.webhook_max_attempts or now - since >= timedelta(seconds=settings.webhook_max_age):
            d.status, d.failed_at = "failed", now
            return "failed"
        d.next_attempt_at = now + timedelta(seconds=retry_delay(round_attempts, settings.webhook_backoff,
                                                                 settings.webhook_backoff_max))
        return "retry"


async def _send(client: httpx.AsyncClient, claim: dict) -> tuple[bool, str | None]:
    if isinstance(claim["secret"], SecretUnreadable):  # never sent unsigned: the attempt fails with why
        return False, str(claim["secret"])
    body = json.dumps(claim["payload"], separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "arca-webhooks",
               "X-Arca-Event-Id": claim["dedup"], ATTEMPT_HEADER: str(claim["attempt"])}
    sig = sign(claim["secret"], body)
    if sig:
        headers[SIGNATURE_HEADER] = sig
    try:
        resp = await client.post(claim["url"], content=body, headers=headers)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if 200 <= resp.status_code < 300:
        return True, None
    return False, f"HTTP {resp.status_code}"


async def deliver_webhook(arca: Arca, client: httpx.AsyncClient, webhook_id: int) -> int:
    """Send one webhook's due deliveries in order until its queue is empty or an attempt fails (that
    delivery then waits for its retry). Returns how many were delivered."""
    sent = 0
    while True:
        claim = await asyncio.to_thread(_claim, arca, webhook_id, utcnow())
        if claim is None:
            return sent
        ok, error = await _send(client, claim)
        outcome = await asyncio.to_thread(_finish, arca, claim, ok, error)
        metrics.WEBHOOK_DELIVERIES.labels("ok" if ok else "error").inc()
        fields = {"event": "webhook-delivery", "outcome": outcome, "webhook": webhook_id,
                  "delivery_event": claim["event_id"], "attempt": claim["attempt"], "error": error}
        if outcome == "failed":
            metrics.WEBHOOK_DEAD_LETTERS.inc()
            log.warning("webhook %s: event %s moved to the dead-letter list after attempt %s (%s)", webhook_id,
                        claim["event_id"], claim["attempt"], error, extra={"fields": fields})
        elif outcome == "retry":
            log.info("webhook %s: event %s attempt %s failed (%s); will retry", webhook_id, claim["event_id"],
                     claim["attempt"], error, extra={"fields": fields})
        if not ok:
            return sent
        sent += 1


async def run_deliverer(arca: Arca) -> None:
    """Every poll interval: start a task for each webhook whose queue has a due head and that this
    process is not already serving. A task drains its webhook's queue and ends."""
    settings = arca.settings
    tasks: dict[int, asyncio.Task] = {}
    async with httpx.AsyncClient(timeout=settings.webhook_timeout) as client:
        try:
            while True:
                for webhook_id, task in list(tasks.items()):
                    if task.done():
                        del tasks[webhook_id]
                        if not task.cancelled() and task.exception() is not None:
                            log.error("webhook %s: delivery failed", webhook_id, exc_info=task.exception())
                try:
                    for webhook_id in await asyncio.to_thread(_heads, arca, utcnow()):
                        if webhook_id not in tasks:
                            tasks[webhook_id] = asyncio.create_task(deliver_webhook(arca, client, webhook_id))
                except Exception:  # keep delivering; the reason is in the log
                    log.exception("webhook delivery round failed")
                await asyncio.sleep(settings.webhook_poll_interval)
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
