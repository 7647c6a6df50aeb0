"""Row-level building blocks of the package use cases, inside a caller's transaction.

Only services call these (publish, packages, resolve): they find and create packages, versions,
blob rows and assets race-safely (the unique constraint decides; the loser re-reads the winner's
row), mark every change on the package (`bump`), and keep npm's dist-tags consistent. Every
change bumps `Package.revision`, which validates cached documents on every node. The tags of
domains, repositories and package groups are rows too (`put_tags`, `drop_tags`)."""

from __future__ import annotations

import secrets

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Asset, Blob, DistTag, Domain, Package, PackageVersion, Repository, Tag, utcnow
from app.domain.coords import Coordinates
from app.domain.errors import Conflict, NotFound
from app.domain.status import PUBLISHED
from app.storage.base import BlobInfo


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


def display_name(pkg: Package) -> str:
    if pkg.format == "npm" and pkg.namespace:
        return f"@{pkg.namespace}/{pkg.name}"
    return pkg.display_name or pkg.name


# ---- writes ------------------------------------------------------------------------------------

def get_or_create_package(s: Session, repo: Repository, c: Coordinates, display: str | None = None) -> Package:
    p = find_package(s, repo, c)
    if p is not None:
        return p
    try:
        with s.begin_nested():
            p = Package(repository_id=repo.id, format=c.format, namespace=c.namespace or "", name=c.name,
                        display_name=display or c.name, attributes={})
            s.add(p)
    except IntegrityError:
        p = find_package(s, repo, c)
        if p is None:
            raise
    return p


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
                               attributes=dict(attributes or {}),
                               published_time=utcnow() if status == PUBLISHED else None)
            s.add(v)
    except IntegrityError:
        v = find_version(s, pkg, version)
        if v is None:
            raise
        return v, False
    return v, True


def touch_version(v: PackageVersion) -> None:
    v.revision = new_revision()
    v.updated_at = utcnow()


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
              replaceable: bool = False, attributes: dict | None = None) -> tuple[Asset, bool]:
    """Attach a stored blob to a version under `name`: (asset, created). The same bytes again are
    an idempotent success; other bytes replace the file only when `replaceable`, else Conflict.
    (The publish pipeline decides `replaceable` from the format's rules.)"""
    blob = blob_row(s, domain.id, info)
    existing = find_asset(s, ver, name)
    if existing is not None:
        if existing.blob_id == blob.id:
            return existing, False
        if not replaceable:
            raise file_conflict(name, ver.version)
        existing.blob_id = blob.id
        existing.blob = blob
        if attributes is not None:
            existing.attributes = attributes
        touch_version(ver)
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
        if a.blob_id != blob.id and not replaceable:
            raise file_conflict(name, ver.version) from None
        return a, False
    touch_version(ver)
    return a, True


def file_conflict(name: str, version: str, package: str | None = None, stored: str | None = None) -> Conflict:
    """The one refusal of a second, different file under a stored name ("File already exists" is
    what twine's --skip-existing looks for). `stored`: the name it has, when spelled otherwise."""
    of = f" of {package}" if package else ""
    what = name if stored in (None, name) else f"{name} (the same file as {stored})"
    return Conflict(f"File already exists: {what} is stored in version {version}{of} with different content; "
                    "published files are immutable", resource_id=name, resource_type="asset")


def set_status(s: Session, pkg: Package, ver: PackageVersion, status: str) -> None:
    if ver.status == status:
        return
    ver.status = status
    touch_version(ver)
    if status == PUBLISHED and ver.published_time is None:
        ver.published_time = utcnow()
    bump(s, pkg)


# ---- dist-tags (npm) -----------------------------------------------------------------------------

def set_dist_tag(s: Session, pkg: Package, tag: str, version: str) -> None:
    row = s.get(DistTag, (pkg.id, tag))
    if row is None:
        s.add(DistTag(package_id=pkg.id, tag=tag, version=version))
    else:
        row.version = version


def ensure_latest(s: Session, pkg: Package, version: str) -> None:
    """npm's rule: `latest` exists while any version does; the first version to arrive takes it."""
    if pkg.format == "npm" and s.get(DistTag, (pkg.id, "latest")) is None:
        s.add(DistTag(package_id=pkg.id, tag="latest", version=version))
        s.flush()


# ---- tags ------------------------------------------------------------------------------------------

def put_tags(s: Session, arn: str, tags: list | None) -> None:
    for t in tags or []:
        s.merge(Tag(resource_arn=arn, key=t["key"], value=t["value"]))


def drop_tags(s: Session, arn: str, *, prefix: bool = False) -> None:
    """The tags of a deleted resource (`prefix`: of every resource whose ARN starts with `arn`)."""
    match = Tag.resource_arn.startswith(arn, autoescape=True) if prefix else Tag.resource_arn == arn
    s.execute(Tag.__table__.delete().where(match))
