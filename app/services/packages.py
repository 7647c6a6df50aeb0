"""Packages, versions and assets: the one place that owns their rules (both planes call here).

Format modules turn wire protocols into calls of these functions; they never write rows
themselves. Every change bumps `Package.revision`, which validates cached metadata."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Asset, Blob, DistTag, Domain, Package, PackageVersion, Repository, utcnow
from app.domain.errors import Conflict, NotFound, ValidationError
from app.storage.base import BlobInfo

PUBLISHED, UNFINISHED, UNLISTED, ARCHIVED, DISPOSED, DELETED = (
    "Published", "Unfinished", "Unlisted", "Archived", "Disposed", "Deleted")
# Consumers (indexes, metadata) list Published only; exact-coordinate downloads also serve Unlisted.
DOWNLOADABLE = (PUBLISHED, UNLISTED)
STATUS_TARGETS = (PUBLISHED, UNLISTED, ARCHIVED)


@dataclass(frozen=True)
class Coordinates:
    format: str
    namespace: str  # '' when none
    name: str

    def label(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def new_revision() -> str:
    return secrets.token_urlsafe(24)


# ---- lookups -----------------------------------------------------------------------------------

def find_package(s: Session, repo: Repository, c: Coordinates) -> Package | None:
    return s.scalar(select(Package).where(
        Package.repository_id == repo.id, Package.format == c.format,
        Package.namespace == (c.namespace or ""), Package.name == c.name))


def get_package(s: Session, repo: Repository, c: Coordinates) -> Package:
    p = find_package(s, repo, c)
    if p is None:
        raise NotFound(f"Package {c.label()} ({c.format}) does not exist in repository {repo.name}",
                       resource_id=c.name, resource_type="package")
    return p


def find_version(s: Session, pkg: Package, version: str) -> PackageVersion | None:
    return s.scalar(select(PackageVersion).where(PackageVersion.package_id == pkg.id,
                                                 PackageVersion.version == version))


def get_version(s: Session, pkg: Package, version: str) -> PackageVersion:
    v = find_version(s, pkg, version)
    if v is None:
        raise NotFound(f"Version {version} of package {pkg.name} does not exist",
                       resource_id=version, resource_type="package-version")
    return v


def list_assets(s: Session, ver: PackageVersion) -> list[Asset]:
    return list(s.scalars(select(Asset).where(Asset.package_version_id == ver.id).order_by(Asset.name)))


def find_asset(s: Session, ver: PackageVersion, name: str) -> Asset | None:
    return s.scalar(select(Asset).where(Asset.package_version_id == ver.id, Asset.name == name))


def versions_of(s: Session, pkg: Package, statuses: tuple[str, ...] | None = None) -> list[PackageVersion]:
    q = select(PackageVersion).where(PackageVersion.package_id == pkg.id)
    if statuses:
        q = q.where(PackageVersion.status.in_(statuses))
    return list(s.scalars(q.order_by(PackageVersion.id)))


# ---- writes ------------------------------------------------------------------------------------

def get_or_create_package(s: Session, repo: Repository, c: Coordinates, display_name: str | None = None) -> Package:
    """Race-safe: the unique constraint decides; the loser re-reads the winner's row."""
    p = find_package(s, repo, c)
    if p is not None:
        return p
    try:
        with s.begin_nested():
            p = Package(repository_id=repo.id, format=c.format, namespace=c.namespace or "", name=c.name,
                        display_name=display_name or c.name, attributes={})
            s.add(p)
    except IntegrityError:
        p = find_package(s, repo, c)
        if p is None:
            raise
    return p


def package_for_publish(s: Session, domain: Domain, repo: Repository, c: Coordinates,
                        display_name: str | None = None) -> Package:
    """The package a publish writes into, after the origin controls allow it (package origin
    configuration publish=BLOCK, or the package group's PUBLISH restriction → AccessDenied)."""
    from app.services.package_groups import check_publish_allowed

    check_publish_allowed(s, domain, repo, c.format, c.namespace, c.name)
    return get_or_create_package(s, repo, c, display_name)


def put_origin_configuration(s: Session, pkg: Package, publish: str, upstream: str) -> dict:
    for key, value in (("publish", publish), ("upstream", upstream)):
        if value not in ("ALLOW", "BLOCK"):
            raise ValidationError(f"restrictions.{key} must be ALLOW or BLOCK, not {value!r}")
    pkg.origin_publish, pkg.origin_upstream = publish, upstream
    bump(s, pkg)
    return {"publish": publish, "upstream": upstream}


def bump(s: Session, pkg: Package) -> None:
    """Mark a change: validates caches on every node. Also serialises writers of one package."""
    s.execute(update(Package).where(Package.id == pkg.id)
              .values(revision=Package.revision + 1, updated_at=utcnow()))
    s.expire(pkg, ["revision", "updated_at"])


def get_or_create_version(s: Session, pkg: Package, version: str, *, status: str,
                          origin_type: str = "INTERNAL", entry_point: str | None = None,
                          summary: str | None = None, attributes: dict | None = None) -> tuple[PackageVersion, bool]:
    v = find_version(s, pkg, version)
    if v is not None:
        return v, False
    try:
        with s.begin_nested():
            v = PackageVersion(package_id=pkg.id, version=version, status=status, revision=new_revision(),
                               origin_type=origin_type, domain_entry_point=entry_point, summary=summary,
                               attributes=attributes or {},
                               published_time=utcnow() if status == PUBLISHED else None)
            s.add(v)
    except IntegrityError:
        v = find_version(s, pkg, version)
        if v is None:
            raise
        return v, False
    return v, True


def blob_row(s: Session, domain_id: int, info: BlobInfo) -> Blob:
    """The domain's row for a stored blob (deduplicated per domain), created if missing."""
    b = s.scalar(select(Blob).where(Blob.domain_id == domain_id, Blob.sha256 == info.sha256))
    if b is not None:
        return b
    try:
        with s.begin_nested():
            b = Blob(domain_id=domain_id, sha256=info.sha256, sha1=info.sha1, md5=info.md5,
                     sha512=info.sha512, size=info.size)
            s.add(b)
    except IntegrityError:
        b = s.scalar(select(Blob).where(Blob.domain_id == domain_id, Blob.sha256 == info.sha256))
    return b


def put_asset(s: Session, domain: Domain, ver: PackageVersion, name: str, info: BlobInfo, *,
              mutable: bool = False, attributes: dict | None = None) -> tuple[Asset, bool]:
    """Attach a stored blob to a version under `name`.

    Returns (asset, created). An existing asset with identical bytes is an idempotent success;
    different bytes are a Conflict unless `mutable` (e.g. Maven SNAPSHOT files)."""
    blob = blob_row(s, domain.id, info)
    existing = find_asset(s, ver, name)
    if existing is not None:
        if existing.blob_id == blob.id:
            return existing, False
        if not mutable and ver.status not in (UNFINISHED,):
            raise Conflict(f"{name} already exists in version {ver.version} with different content; "
                           "published files are immutable", resource_id=name, resource_type="asset")
        existing.blob_id = blob.id
        existing.blob = blob
        if attributes is not None:
            existing.attributes = attributes
        ver.revision = new_revision()
        ver.updated_at = utcnow()
        return existing, False
    try:
        with s.begin_nested():
            a = Asset(package_version_id=ver.id, name=name, blob_id=blob.id, attributes=attributes or {})
            s.add(a)
    except IntegrityError:
        # A racing writer stored the same name first: same rules as above.
        a = find_asset(s, ver, name)
        if a is None:
            raise
        if a.blob_id != blob.id and not mutable:
            raise Conflict(f"{name} already exists in version {ver.version} with different content",
                           resource_id=name, resource_type="asset") from None
        return a, False
    ver.revision = new_revision()
    ver.updated_at = utcnow()
    return a, True


def set_status(s: Session, pkg: Package, ver: PackageVersion, status: str) -> None:
    if ver.status == status:
        return
    ver.status = status
    ver.revision = new_revision()
    ver.updated_at = utcnow()
    if status == PUBLISHED and ver.published_time is None:
        ver.published_time = utcnow()
    bump(s, pkg)


# ---- batch status operations (UpdatePackageVersionsStatus, Dispose, Delete) ----------------------

def _fail(code: str, msg: str) -> dict:
    return {"errorCode": code, "errorMessage": msg}


def _batch(s: Session, pkg: Package, names: list[str], expected: str | None, revisions: dict | None,
           apply) -> dict:
    """The shared shape of the batch operations: per version, the NOT_FOUND / MISMATCHED_STATUS /
    MISMATCHED_REVISION checks, then `apply(version)` → (result dict) or a failure from _fail()."""
    ok, failed = {}, {}
    for name in names:
        v = find_version(s, pkg, name)
        if v is None:
            failed[name] = _fail("NOT_FOUND", f"Version {name} not found")
        elif expected and v.status != expected:
            failed[name] = _fail("MISMATCHED_STATUS", f"Version {name} is {v.status}, not {expected}")
        elif revisions and revisions.get(name) and revisions[name] != v.revision:
            failed[name] = _fail("MISMATCHED_REVISION", f"Version {name} has revision {v.revision}")
        else:
            outcome = apply(v)
            (failed if "errorCode" in outcome else ok)[name] = outcome
    return {"successfulVersions": ok, "failedVersions": failed}


def update_versions_status(s: Session, pkg: Package, versions: list[str], target: str,
                           expected: str | None = None, revisions: dict | None = None) -> dict:
    if target not in STATUS_TARGETS:
        raise ValidationError(f"targetStatus must be one of {', '.join(STATUS_TARGETS)}")

    def apply(v: PackageVersion) -> dict:
        if v.status in (DISPOSED, DELETED):
            return _fail("NOT_ALLOWED", f"Version {v.version} is {v.status} and cannot change status")
        set_status(s, pkg, v, target)
        return {"revision": v.revision, "status": v.status}

    return _batch(s, pkg, _version_list(versions, revisions), expected, revisions, apply)


def _version_list(versions: list[str] | None, revisions: dict | None) -> list[str]:
    names = list(versions or []) or list((revisions or {}).keys())
    if not names:
        raise ValidationError("versions must list at least one version")
    if len(names) > 100:
        raise ValidationError("At most 100 versions per call")
    return names


def dispose_versions(s: Session, pkg: Package, versions: list[str], expected: str | None = None,
                     revisions: dict | None = None) -> dict:
    def apply(v: PackageVersion) -> dict:
        s.execute(delete(Asset).where(Asset.package_version_id == v.id))
        v.status = DISPOSED
        v.revision = new_revision()
        v.updated_at = utcnow()
        bump(s, pkg)
        return {"revision": v.revision, "status": DISPOSED}

    return _batch(s, pkg, _version_list(versions, revisions), expected, revisions, apply)


def delete_versions(s: Session, pkg: Package, versions: list[str], expected: str | None = None) -> dict:
    def apply(v: PackageVersion) -> dict:
        s.execute(delete(Asset).where(Asset.package_version_id == v.id))
        s.execute(delete(DistTag).where(DistTag.package_id == pkg.id, DistTag.version == v.version))
        s.delete(v)
        bump(s, pkg)
        return {"revision": v.revision, "status": DELETED}

    return _batch(s, pkg, _version_list(versions, None), expected, None, apply)


# ---- shapes ------------------------------------------------------------------------------------

def display_name(pkg: Package) -> str:
    if pkg.format == "npm" and pkg.namespace:
        return f"@{pkg.namespace}/{pkg.name}"
    return pkg.display_name or pkg.name


def origin_restrictions(pkg: Package, has_internal: bool) -> dict:
    """CodeArtifact's defaults: once a version was published internally, upstream is BLOCKed."""
    publish = pkg.origin_publish or "ALLOW"
    upstream = pkg.origin_upstream or ("BLOCK" if has_internal else "ALLOW")
    return {"publish": publish, "upstream": upstream}


def has_internal_versions(s: Session, pkg: Package) -> bool:
    return bool(s.scalar(select(func.count()).select_from(PackageVersion).where(
        PackageVersion.package_id == pkg.id, PackageVersion.origin_type == "INTERNAL")))


def package_summary(s: Session, pkg: Package) -> dict:
    out = {"format": pkg.format, "package": pkg.name,
           "originConfiguration": {"restrictions": origin_restrictions(pkg, has_internal_versions(s, pkg))}}
    if pkg.namespace:
        out["namespace"] = pkg.namespace
    return out


def version_origin(domain_entry: str | None, repo: Repository, v: PackageVersion) -> dict:
    if v.origin_type == "EXTERNAL":
        point = {"externalConnectionName": v.domain_entry_point or ""}
    else:
        point = {"repositoryName": v.domain_entry_point or repo.name}
    return {"domainEntryPoint": point, "originType": v.origin_type}


def version_description(s: Session, repo: Repository, pkg: Package, v: PackageVersion) -> dict:
    a = v.attributes or {}
    out = {"format": pkg.format, "packageName": pkg.name, "displayName": display_name(pkg),
           "version": v.version, "revision": v.revision, "status": v.status,
           "origin": version_origin(None, repo, v)}
    if pkg.namespace:
        out["namespace"] = pkg.namespace
    if v.summary:
        out["summary"] = v.summary
    for key in ("homePage", "sourceCodeRepository"):
        if a.get(key):
            out[key] = a[key]
    if a.get("licenses"):
        out["licenses"] = a["licenses"]
    if v.published_time:
        out["publishedTime"] = v.published_time
    return out


def asset_summary(a: Asset) -> dict:
    b = a.blob
    return {"name": a.name, "size": b.size,
            "hashes": {"MD5": b.md5, "SHA-1": b.sha1, "SHA-256": b.sha256, "SHA-512": b.sha512}}


def version_summary(repo: Repository, v: PackageVersion) -> dict:
    return {"version": v.version, "revision": v.revision, "status": v.status,
            "origin": version_origin(None, repo, v)}


def sort_key_published(v: PackageVersion) -> datetime:
    return v.published_time or v.created_at
