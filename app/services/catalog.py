"""Read views of packages, versions and assets for the control plane and the console: the
CodeArtifact response shapes (PackageSummary, PackageVersionDescription, AssetSummary, ...)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Asset, DistTag, Package, PackageVersion, Repository
from app.domain.status import PUBLISHED
from app.services.origins import restrictions_of
from app.services.rows import display_name


def package_summary(s: Session, pkg: Package) -> dict:
    out = {"format": pkg.format, "package": pkg.name,
           "originConfiguration": {"restrictions": restrictions_of(s, pkg)}}
    if pkg.namespace:
        out["namespace"] = pkg.namespace
    return out


def version_origin(repo: Repository, v: PackageVersion) -> dict:
    if v.origin_type == "EXTERNAL":
        point = {"externalConnectionName": v.domain_entry_point or ""}
    else:
        point = {"repositoryName": v.domain_entry_point or repo.name}
    return {"domainEntryPoint": point, "originType": v.origin_type}


def version_description(repo: Repository, pkg: Package, v: PackageVersion) -> dict:
    a = v.attributes or {}
    out = {"format": pkg.format, "packageName": pkg.name, "displayName": display_name(pkg),
           "version": v.version, "revision": v.revision, "status": v.status,
           "origin": version_origin(repo, v)}
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
    return {"version": v.version, "revision": v.revision, "status": v.status, "origin": version_origin(repo, v)}


def default_display_version(s: Session, p: Package) -> str | None:
    """npm: the `latest` dist-tag; otherwise the most recently published version."""
    if p.format == "npm":
        tag = s.scalar(select(DistTag.version).where(DistTag.package_id == p.id, DistTag.tag == "latest"))
        if tag:
            return tag
    return s.scalar(select(PackageVersion.version).where(PackageVersion.package_id == p.id,
                                                         PackageVersion.status == PUBLISHED)
                    .order_by(PackageVersion.published_time.desc(), PackageVersion.id.desc()).limit(1))
