"""Changes to packages and their versions after they were published: the batch status operations
(UpdatePackageVersionsStatus, DisposePackageVersions, DeletePackageVersions), CopyPackageVersions,
npm's dist-tags, deprecation and unpublish, origin configuration, and package deletion.

Every batch operation has one shape (`_batch`): per version, NOT_FOUND / MISMATCHED_STATUS /
MISMATCHED_REVISION are decided once, then the operation's own step runs. Each use case is one
transaction, opened here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db.models import Asset, DistTag, Domain, Package, PackageVersion, Repository, RepositoryUpstream
from app.domain.coords import Coordinates
from app.domain.errors import Conflict, NotFound, ValidationError
from app.domain.status import ARCHIVED, DELETED, DISPOSED, PUBLISHED, STATUS_TARGETS, UNLISTED
from app.domain.views import PackageState, PackageView, document_rev
from app.services import authz, publish, rows
from app.services.catalog import package_summary
from app.services.context import Arca, PackageAt, Principal, RepoRef
from app.services.domains import package_for, repository_for
from app.services.origins import check_modes, check_publish_allowed
from app.services.resolve import package_view
from app.storage.base import BlobInfo

MAX_BATCH = 100
COPYABLE = (PUBLISHED, UNLISTED, ARCHIVED)
DELETE_VERSIONS = "codeartifact:DeletePackageVersions"


# ---- the batch shape -------------------------------------------------------------------------------

def _fail(code: str, msg: str) -> dict:
    return {"errorCode": code, "errorMessage": msg}


def _version_list(versions: list[str] | None, revisions: dict | None) -> list[str]:
    names = list(versions or []) or list((revisions or {}).keys())
    if not names:
        raise ValidationError("versions must list at least one version")
    if len(names) > MAX_BATCH:
        raise ValidationError(f"At most {MAX_BATCH} versions per call")
    return names


def _batch(s: Session, find: Callable[[str], PackageVersion | None], names: list[str], expected: str | None,
           revisions: dict | None, apply: Callable[[PackageVersion], dict]) -> dict:
    """Per version: NOT_FOUND / MISMATCHED_STATUS / MISMATCHED_REVISION, then `apply(version)`,
    which returns the success entry or a failure from _fail()."""
    ok, failed = {}, {}
    for name in names:
        v = find(name)
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


def _in(s: Session, pkg: Package) -> Callable[[str], PackageVersion | None]:
    return lambda name: rows.find_version(s, pkg, name)


# ---- status, dispose, delete ------------------------------------------------------------------------

def change_status(s: Session, pkg: Package, versions: list[str], target: str, expected: str | None = None,
                  revisions: dict | None = None) -> dict:
    if target not in STATUS_TARGETS:
        raise ValidationError(f"targetStatus must be one of {', '.join(STATUS_TARGETS)}")

    def apply(v: PackageVersion) -> dict:
        if v.status in (DISPOSED, DELETED):
            return _fail("NOT_ALLOWED", f"Version {v.version} is {v.status} and cannot change status")
        rows.set_status(s, pkg, v, target)
        return {"revision": v.revision, "status": v.status}

    return _batch(s, _in(s, pkg), _version_list(versions, revisions), expected, revisions, apply)


def dispose(s: Session, pkg: Package, versions: list[str], expected: str | None = None,
            revisions: dict | None = None) -> dict:
    def apply(v: PackageVersion) -> dict:
        for asset in s.scalars(select(Asset).where(Asset.package_version_id == v.id)):
            s.delete(asset)  # one by one: the version's event counts them (assetsRemoved)
        v.status = DISPOSED
        rows.touch_version(v)
        rows.bump(s, pkg)
        return {"revision": v.revision, "status": DISPOSED}

    return _batch(s, _in(s, pkg), _version_list(versions, revisions), expected, revisions, apply)


def remove(s: Session, pkg: Package, versions: list[str], expected: str | None = None) -> dict:
    def apply(v: PackageVersion) -> dict:
        s.execute(delete(Asset).where(Asset.package_version_id == v.id))
        s.execute(delete(DistTag).where(DistTag.package_id == pkg.id, DistTag.version == v.version))
        s.delete(v)
        rows.bump(s, pkg)
        return {"revision": v.revision, "status": DELETED}

    return _batch(s, _in(s, pkg), _version_list(versions, None), expected, None, apply)


def remove_files(s: Session, pkg: Package, version: str, names: list[str]) -> list[str]:
    """Delete some files of a version (cleanup's old SNAPSHOT builds); returns those removed. The
    rows go through the session, so the audit hook records each one."""
    v = rows.find_version(s, pkg, version)
    if v is None:
        return []
    gone = [a for a in rows.list_assets(s, v) if a.name in set(names)]
    for a in gone:
        s.delete(a)
    if gone:
        rows.touch_version(v)
        rows.bump(s, pkg)
    return [a.name for a in gone]


def update_versions_status(arca: Arca, principal: Principal, at: PackageAt, versions: list[str] | None,
                           target: str, expected: str | None = None, revisions: dict | None = None) -> dict:
    with arca.db.session() as s:
        _r, pkg = package_for(arca, s, principal, "codeartifact:UpdatePackageVersionsStatus", at)
        return change_status(s, pkg, versions, target, expected, revisions)


def dispose_versions(arca: Arca, principal: Principal, at: PackageAt, versions: list[str] | None,
                     expected: str | None = None, revisions: dict | None = None) -> dict:
    with arca.db.session() as s:
        _r, pkg = package_for(arca, s, principal, "codeartifact:DisposePackageVersions", at)
        return dispose(s, pkg, versions, expected, revisions)


def delete_versions(arca: Arca, principal: Principal, at: PackageAt, versions: list[str] | None,
                    expected: str | None = None) -> dict:
    with arca.db.session() as s:
        _r, pkg = package_for(arca, s, principal, DELETE_VERSIONS, at)
        return remove(s, pkg, versions, expected)


def delete_package(arca: Arca, principal: Principal, at: PackageAt) -> dict:
    with arca.db.session() as s:
        _r, pkg = package_for(arca, s, principal, "codeartifact:DeletePackage", at)
        summary = package_summary(s, pkg)
        s.delete(pkg)
        return summary


def put_origin_configuration(arca: Arca, principal: Principal, at: PackageAt, publish_mode: str,
                             upstream_mode: str) -> dict:
    """PutPackageOriginConfiguration (creates the package record when it does not exist yet). The
    modes are checked here, whichever door they came through (the console's form too)."""
    check_modes(publish_mode, upstream_mode)
    with arca.db.session() as s:
        _d, r = repository_for(arca, s, principal, "codeartifact:PutPackageOriginConfiguration", at.domain,
                               at.repository, at.owner)
        pkg = rows.get_or_create_package(s, r, at.coords)
        pkg.origin_publish, pkg.origin_upstream = publish_mode, upstream_mode
        rows.bump(s, pkg)
        return {"publish": publish_mode, "upstream": upstream_mode}


# ---- CopyPackageVersions ------------------------------------------------------------------------------

def _search_order(s: Session, start: Repository) -> list[Repository]:
    """The source repository, then its upstreams depth-first in priority order (each once)."""
    out, seen = [], set()

    def walk(repo: Repository) -> None:
        if repo.id in seen:
            return
        seen.add(repo.id)
        out.append(repo)
        for (uid,) in s.execute(select(RepositoryUpstream.upstream_id).where(
                RepositoryUpstream.repository_id == repo.id).order_by(RepositoryUpstream.position)):
            walk(s.get(Repository, uid))

    walk(start)
    return out


def copy_versions(arca: Arca, principal: Principal, domain: str, source: str, destination: str,
                  coords: Coordinates, versions: list[str] | None, revisions: dict | None, *,
                  overwrite: bool = False, include_upstream: bool = False, owner: str | None = None) -> dict:
    if bool(versions) == bool(revisions):
        raise ValidationError("Specify exactly one of versions or versionRevisions")
    names = _version_list(versions, revisions)
    with arca.db.session() as s:
        d, src = repository_for(arca, s, principal, authz.READ, domain, source, owner)
        _d, dst = repository_for(arca, s, principal, "codeartifact:CopyPackageVersions", domain, destination, owner)
        if src.id == dst.id:
            raise ValidationError("sourceRepository and destinationRepository must differ")
        where = f"{src.name}" + (" or its upstreams" if include_upstream else "")
        sources = [(repo, pkg) for repo in (_search_order(s, src) if include_upstream else [src])
                   if (pkg := rows.find_package(s, repo, coords)) is not None]
        if not sources:
            raise NotFound(f"Package {coords.label()} ({coords.format}) does not exist in repository {where}",
                           resource_id=coords.name, resource_type="package")
        check_publish_allowed(s, d, dst, coords.format, coords.namespace, coords.name)
        dpkg = rows.get_or_create_package(s, dst, coords, sources[0][1].display_name)
        if not dpkg.attributes and sources[0][1].attributes:
            dpkg.attributes = dict(sources[0][1].attributes)
        found: dict[str, tuple[Repository, PackageVersion]] = {}
        for name in names:
            hit = next(((repo, v) for repo, pkg in sources
                        if (v := rows.find_version(s, pkg, name)) is not None and v.status != DELETED), None)
            if hit is not None:
                found[name] = hit

        def apply(v: PackageVersion) -> dict:
            if v.status not in COPYABLE:
                return _fail("NOT_ALLOWED", f"Version {v.version} is {v.status} and cannot be copied")
            dv = _copy_one(s, d, dpkg, found[v.version][0], v, overwrite)
            if dv is None:
                return _fail("ALREADY_EXISTS", f"Version {v.version} already exists in {dst.name}")
            return {"revision": dv.revision, "status": dv.status}

        out = _batch(s, lambda name: found.get(name, (None, None))[1], names, None, revisions, apply)
        for name, failure in out["failedVersions"].items():
            if failure["errorCode"] == "NOT_FOUND":
                failure["errorMessage"] = f"Version {name} not found in {where}"
        if out["successfulVersions"]:
            rows.bump(s, dpkg)
        return out


def _copy_one(s: Session, domain: Domain, dpkg: Package, src_repo: Repository, v: PackageVersion,
              overwrite: bool) -> PackageVersion | None:
    """Copy one version with all its files; None when it exists in the destination and may not be
    overwritten. The copy keeps the source's status, origin and publish time."""
    existing = rows.find_version(s, dpkg, v.version)
    if existing is not None and not overwrite:
        return None
    entry = v.domain_entry_point or src_repo.name
    if existing is not None:
        s.execute(Asset.__table__.delete().where(Asset.package_version_id == existing.id))
        dv = existing
        dv.status, dv.summary, dv.attributes = v.status, v.summary, dict(v.attributes or {})
        dv.origin_type, dv.domain_entry_point = v.origin_type, entry
    else:
        dv, _ = rows.get_or_create_version(s, dpkg, v.version, status=v.status, origin_type=v.origin_type,
                                           entry_point=entry, summary=v.summary, attributes=v.attributes)
    dv.published_time = v.published_time
    for a in rows.list_assets(s, v):
        b = a.blob
        rows.put_asset(s, domain, dv, a.name, BlobInfo(b.sha256, b.sha1, b.md5, b.sha512, b.size),
                       replaceable=True, attributes=dict(a.attributes or {}))
    dv.revision = rows.new_revision()
    if dv.status == PUBLISHED:
        rows.ensure_latest(s, dpkg, dv.version)
    s.flush()
    return dv


# ---- npm: dist-tags, deprecate, unpublish ---------------------------------------------------------------

def _locked(arca: Arca, s: Session, ref: RepoRef, coords: Coordinates, rev: str | None) -> Package:
    """The package, write-locked (bump), after checking the client's document revision (CouchDB's
    `_rev`, which npm sends back) when it sent one."""
    pkg = rows.get_package(s, s.get(Repository, ref.repository_id), coords)
    rows.bump(s, pkg)
    current = document_rev(pkg.id, pkg.revision - 1)
    if rev is not None and rev != current:
        raise Conflict(f"Document update conflict: {rows.display_name(pkg)} is at revision {current}, not {rev}; "
                       "fetch the packument again and retry")
    return pkg


def _view(s: Session, pkg: Package) -> PackageView:
    s.flush()
    s.refresh(pkg)
    return package_view(s, PackageState(pkg.id, pkg.revision, pkg.updated_at))


def set_dist_tag(arca: Arca, principal: Principal, ref: RepoRef, coords: Coordinates, tag: str,
                 version: str) -> PackageView:
    """Point `tag` at a Published version; returns the package as it is now (its tags)."""
    with arca.db.session() as s:
        authz.require_ref(arca, s, principal, authz.PUBLISH, ref)
        pkg = _locked(arca, s, ref, coords, None)
        v = rows.find_version(s, pkg, version)
        if v is None or v.status != PUBLISHED:
            state = "does not exist" if v is None else f"is {v.status}"
            raise ValidationError(f"Cannot tag {rows.display_name(pkg)}@{version} as {tag}: that version {state}; "
                                  "a dist-tag must name a Published version")
        rows.set_dist_tag(s, pkg, tag, version)
        return _view(s, pkg)


def remove_dist_tag(arca: Arca, principal: Principal, ref: RepoRef, coords: Coordinates, tag: str) -> PackageView:
    if tag == "latest":
        raise ValidationError("The latest dist-tag cannot be removed; point it at another version instead")
    with arca.db.session() as s:
        authz.require_ref(arca, s, principal, authz.PUBLISH, ref)
        pkg = _locked(arca, s, ref, coords, None)
        row = s.get(DistTag, (pkg.id, tag))
        if row is None:
            raise NotFound(f"{rows.display_name(pkg)} has no dist-tag {tag}")
        s.delete(row)
        return _view(s, pkg)


@dataclass(frozen=True)
class DocumentUpdate:
    """What a client's edited package document (npm deprecate / unpublish) asks for."""

    versions: dict  # version -> its manifest as the client sent it (only `deprecated` is taken)
    dist_tags: dict | None  # the client's dist-tags, for `latest` after an unpublish
    rev: str | None  # the document revision it edited; None: no check (and no unpublish)


def update_document(arca: Arca, principal: Principal, ref: RepoRef, coords: Coordinates,
                    change: DocumentUpdate) -> tuple[int, int, list[str]]:
    """npm deprecate (a version's `deprecated` message changed) and unpublish (versions left out
    of a document sent to `/-rev/{rev}`). Only Published versions are the client's to change:
    others are hidden from it. Returns (package id, new revision, removed versions)."""
    with arca.db.session() as s:
        authz.require_ref(arca, s, principal, authz.PUBLISH, ref)
        if change.rev is not None:
            authz.require_ref(arca, s, principal, DELETE_VERSIONS, ref)
        try:
            pkg = _locked(arca, s, ref, coords, change.rev)
        except NotFound:
            if change.rev is not None:
                raise
            raise ValidationError("A publish must carry exactly one tarball in _attachments") from None
        held = {v.version: v for v in rows.versions_of(s, pkg)}
        for version in change.versions:
            if version not in held:
                raise ValidationError(f"{rows.display_name(pkg)}@{version} does not exist here; publish it "
                                      "with its tarball")
        visible = [name for name, v in held.items() if v.status == PUBLISHED]
        kept = [name for name in visible if name in change.versions]
        for name in kept:
            _apply_deprecation(held[name], change.versions[name])
        removed = [name for name in visible if name not in change.versions] if change.rev is not None else []
        for i in range(0, len(removed), MAX_BATCH):
            remove(s, pkg, removed[i:i + MAX_BATCH])
        if removed:
            _follow_tags(s, pkg, change.dist_tags, set(held) - set(removed), held)
        s.flush()
        s.refresh(pkg)
        return pkg.id, pkg.revision, removed


def _apply_deprecation(v: PackageVersion, manifest: object) -> None:
    if not isinstance(manifest, dict) or "deprecated" not in manifest:
        return
    msg = manifest["deprecated"]
    if msg is not None and not isinstance(msg, (str, bool)):
        raise ValidationError(f"versions[{v.version!r}].deprecated must be a message string")
    attrs = dict(v.attributes or {})
    m = dict(attrs.get("manifest") or {})
    if msg and isinstance(msg, str):
        if m.get("deprecated") == msg:
            return
        m["deprecated"] = msg
    elif "deprecated" in m:
        del m["deprecated"]
    else:
        return
    attrs["manifest"] = m
    v.attributes = attrs
    rows.touch_version(v)


def _follow_tags(s: Session, pkg: Package, tags: object, remaining: set, held: dict) -> None:
    """After npm unpublished a version it moves `latest` itself; take that choice when valid."""
    if not isinstance(tags, dict):
        return
    for tag, version in tags.items():
        if (isinstance(tag, str) and isinstance(version, str) and version in remaining
                and held[version].status == PUBLISHED and s.get(DistTag, (pkg.id, tag)) is None):
            rows.set_dist_tag(s, pkg, tag, version)


def unpublish_package(arca: Arca, principal: Principal, ref: RepoRef, coords: Coordinates, rev: str) -> None:
    """npm unpublish of a whole package: every version, its tags, the package."""
    with arca.db.session() as s:
        authz.require_ref(arca, s, principal, DELETE_VERSIONS, ref)
        pkg = _locked(arca, s, ref, coords, rev)
        names = [v.version for v in rows.versions_of(s, pkg)]
        for i in range(0, len(names), MAX_BATCH):
            remove(s, pkg, names[i:i + MAX_BATCH])
        s.execute(delete(DistTag).where(DistTag.package_id == pkg.id))
        s.execute(delete(Package).where(Package.id == pkg.id))


def unpublish_version(arca: Arca, principal: Principal, ref: RepoRef, coords: Coordinates, version: str) -> None:
    """npm's tarball DELETE: the version goes; already gone is success (npm removes it first)."""
    with arca.db.session() as s:
        authz.require_ref(arca, s, principal, DELETE_VERSIONS, ref)
        pkg = rows.find_package(s, s.get(Repository, ref.repository_id), coords)
        v = rows.find_version(s, pkg, version) if pkg is not None and version else None
        if v is not None:
            rows.bump(s, pkg)
            remove(s, pkg, [v.version])
