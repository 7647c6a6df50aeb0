"""Scheduled jobs that one process of the whole installation runs at a time, elected through the
database: a job's row in `job_leases` is claimed with one conditional UPDATE (its lease has run
out and its interval has passed since it last started), so whichever node's UPDATE matches first
runs it and every other node's matches nothing. A holder that dies simply lets its lease run out.

Today's job: the cleanup rules (`ARCA_CLEANUP_INTERVAL` seconds apart; 0 turns the schedule off)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from app.db.models import JobLease, utcnow
from app.observability import context, metrics
from app.services import cleanup
from app.services.context import Arca

log = logging.getLogger("arca.jobs")
CLEANUP = "cleanup"
LEASE = timedelta(hours=1)
SCHEDULE_PRINCIPAL = "arca:cleanup-schedule"


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim(arca: Arca, name: str, holder: str, interval: float) -> bool:
    """True when this caller now holds the job and should run it."""
    now = utcnow()
    with arca.db.session() as s:
        if s.get(JobLease, name) is None:
            try:
                with s.begin_nested():
                    s.add(JobLease(name=name, last_report={}))
            except IntegrityError:
                pass  # another process created it: the UPDATE below decides
        won = s.execute(update(JobLease).where(
            JobLease.name == name,
            or_(JobLease.lease_until.is_(None), JobLease.lease_until < now),
            or_(JobLease.last_started_at.is_(None), JobLease.last_started_at <= now - timedelta(seconds=interval)))
            .values(holder=holder, lease_until=now + LEASE, last_started_at=now)).rowcount
    return won == 1


def finish(arca: Arca, name: str, holder: str, report: dict) -> None:
    with arca.db.session() as s:
        s.execute(update(JobLease).where(JobLease.name == name, JobLease.holder == holder)
                  .values(lease_until=None, last_finished_at=utcnow(), last_report=report))


def status(arca: Arca, name: str = CLEANUP) -> dict | None:
    with arca.db.read() as s:
        row = s.get(JobLease, name)
        if row is None:
            return None
        return {"job": name, "holder": row.holder, "leaseUntil": row.lease_until, "lastStarted": row.last_started_at,
                "lastFinished": row.last_finished_at, "lastReport": row.last_report}


def run_scheduled_cleanup(arca: Arca, holder: str) -> dict | None:
    """One scheduled round: the cleanup of every repository with a policy, if this process wins the job."""
    if not claim(arca, CLEANUP, holder, arca.settings.cleanup_interval):
        return None
    context.current.set(context.RequestInfo(principal=SCHEDULE_PRINCIPAL, operation="ScheduledCleanup"))
    report: dict = {}
    try:
        report = cleanup.run(arca)
        report = {k: v for k, v in report.items() if k != "items"}
        metrics.CLEANUP_RUNS.labels("schedule", "ok").inc()
    except Exception as exc:
        report = {"error": f"{type(exc).__name__}: {exc}"}
        metrics.CLEANUP_RUNS.labels("schedule", "error").inc()
        raise
    finally:
        finish(arca, CLEANUP, holder, report)
    return report


async def run_scheduler(arca: Arca) -> None:
    interval = arca.settings.cleanup_interval
    if interval <= 0:
        return
    holder = holder_id()
    while True:
        await asyncio.sleep(min(60.0, interval))
        try:
            await asyncio.to_thread(run_scheduled_cleanup, arca, holder)
        except Exception:  # the next round tries again; the reason is in the log
            log.exception("scheduled cleanup failed")
