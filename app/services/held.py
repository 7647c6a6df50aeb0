"""What comes before its file in a parallel deploy, held in the database until the file comes.

Maven 3.9 and 4 deploy with parallel PUTs: a jar's `.sha1` can arrive while the jar is still
uploading, and maven-metadata.xml alongside the files. A checksum whose file is not stored yet is
held (`hold_checksum`) and checked when the file comes (`take_checksums`, inside `add_file`'s
transaction); a maven-metadata.xml that names a version none of whose files has come yet leaves a
publish mark (`hold_publish`) that the version's first file takes (`take_publish`). So every order
of the same PUTs ends in the same version, with every checksum verified.

Row-level helpers inside a caller's transaction. `lock` serialises the writers of one package's
held rows and files: SQLite writes are serialised already (BEGIN IMMEDIATE); PostgreSQL takes a
transaction-scoped advisory lock, since the package row a row lock would need may not exist yet.
Callers take it first, before any row lock, so two callers never wait on each other in turn."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from app.db.models import HeldUpload, Repository, utcnow
from app.domain.coords import Coordinates
from app.storage.base import BlobInfo

PUBLISH_MARK = "publish"


def lock(s: Session, repo: Repository, coords: Coordinates) -> None:
    if s.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"held/{repo.id}/{coords.format}/{coords.namespace or ''}/{coords.name}".encode())
    key = int.from_bytes(digest.digest()[:8], "big", signed=True)
    s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _slot(repo: Repository, coords: Coordinates, version: str, file_name: str):
    return (HeldUpload.repository_id == repo.id, HeldUpload.format == coords.format,
            HeldUpload.namespace == (coords.namespace or ""), HeldUpload.package == coords.name,
            HeldUpload.version == version, HeldUpload.file_name == file_name)


def _put(s: Session, repo: Repository, coords: Coordinates, version: str, file_name: str, kind: str,
         value: str) -> None:
    """Hold (or replace: a client that sends the checksum again means the newer one) one row."""
    s.execute(delete(HeldUpload).where(*_slot(repo, coords, version, file_name), HeldUpload.kind == kind))
    s.add(HeldUpload(repository_id=repo.id, format=coords.format, namespace=coords.namespace or "",
                     package=coords.name, version=version, file_name=file_name, kind=kind, value=value,
                     created_at=utcnow()))
    s.flush()


def hold_checksum(s: Session, repo: Repository, coords: Coordinates, version: str, file_name: str, alg: str,
                  value: str) -> None:
    _put(s, repo, coords, version, file_name, alg, value)


def hold_publish(s: Session, repo: Repository, coords: Coordinates, version: str) -> None:
    _put(s, repo, coords, version, "", PUBLISH_MARK, "")


def _take(s: Session, repo: Repository, coords: Coordinates, version: str, file_name: str,
          max_age: float) -> list[HeldUpload]:
    """The fresh rows of one slot; every row of the slot (fresh or stale) is deleted."""
    rows = list(s.scalars(select(HeldUpload).where(*_slot(repo, coords, version, file_name))))
    if rows:
        s.execute(delete(HeldUpload).where(HeldUpload.id.in_([r.id for r in rows])))
    oldest = utcnow() - timedelta(seconds=max_age)
    return [r for r in rows if r.created_at >= oldest]


def take_checksums(s: Session, repo: Repository, coords: Coordinates, version: str, file_name: str,
                   blob: BlobInfo, max_age: float) -> list[tuple[str, str, str]]:
    """Check the checksums held for `file_name` against its blob; they are deleted either way.
    Returns the ones that disagree as (algorithm, held value, the file's digest)."""
    bad = []
    for row in _take(s, repo, coords, version, file_name, max_age):
        have = getattr(blob, row.kind, None)
        if have is not None and have != row.value:
            bad.append((row.kind, row.value, have))
    return bad


def take_publish(s: Session, repo: Repository, coords: Coordinates, version: str, max_age: float) -> bool:
    """Whether a fresh publish mark waits for this version (it is deleted)."""
    return any(r.kind == PUBLISH_MARK for r in _take(s, repo, coords, version, "", max_age))


def forget_stale(s: Session, max_age: float, limit: int = 1000) -> int:
    """Delete held rows older than `max_age` (a deploy that never sent its file), a bounded batch."""
    oldest = utcnow() - timedelta(seconds=max_age)
    ids = list(s.scalars(select(HeldUpload.id).where(HeldUpload.created_at < oldest).limit(limit)))
    if ids:
        s.execute(delete(HeldUpload).where(HeldUpload.id.in_(ids)))
    return len(ids)
