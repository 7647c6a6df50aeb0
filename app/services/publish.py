"""The one publish pipeline: every door that adds files to a repository comes through here.

Maven PUT, twine upload, npm publish, PublishPackageVersion, and the three upstream importers all
do the same three steps, with the format's rules passed in as a small `Rules` value:

1. `preflight` (before the body is read, or before it is kept): the caller may publish here
   (`codeartifact:PublishPackageVersion`), the origin controls allow the package, and the
   version still takes this file (a file already stored with identical bytes is reported, so
   the door can answer at once).
2. The door stores the blob (it is written to a temp name and committed only when complete
   and verified: a row never points at a partial blob).
3. `add_file` (or `import_external` for a version fetched through an external connection): in
   one transaction, the same checks again (the database decides races), then package, version,
   blob row and asset; every change bumps the package revision, which also serialises
   concurrent writers of one package (the row lock on PostgreSQL, BEGIN IMMEDIATE on SQLite).

Write-once: a stored file never changes its bytes, except where `Rules.replace` says so (Maven
SNAPSHOT files always; generic assets while their version is Unfinished)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Asset, Domain, Package, PackageVersion, Repository, utcnow
from app.domain.coords import Coordinates
from app.domain.errors import AccessDenied, Conflict, NotFound, QuotaExceeded, ValidationError
from app.domain.status import CLOSED, DOWNLOADABLE, PUBLISHED, UNFINISHED
from app.services import authz, held, rows as pk
from app.services.context import Arca, Principal, RepoRef
from app.services.origins import check_publish_allowed, check_upstream_allowed
from app.storage.base import BlobInfo

PUBLISH = authz.PUBLISH
NEVER, WHILE_UNFINISHED, ALWAYS = "never", "while-unfinished", "always"


@dataclass(frozen=True)
class Rules:
    """How a format's publish treats versions and files."""

    initial_status: str  # the status of a version this publish creates
    open_statuses: tuple[str, ...]  # statuses of an existing version that still take new files
    replace: str = NEVER  # may a stored file get other bytes: NEVER, WHILE_UNFINISHED, ALWAYS
    new_version: bool = False  # the version must not exist yet (npm: one publish per version)
    max_files: int | None = None  # per version (generic: CodeArtifact's 150 assets)
    publish: bool = False  # an Unfinished version becomes Published once the file is added
    # Spellings that are one: versions with one key are one version (PyPI: PEP 440 equality), file
    # names with one key are one file (PyPI: case and separators; one sdist per version).
    version_key: Callable[[str], str] | None = None
    file_key: Callable[[str], str] | None = None
    # Checksums and publish marks may come before their file (Maven's parallel deploys): held ones
    # are checked when the file comes (services/held.py).
    held_uploads: bool = False


@dataclass
class File:
    """One file a publish adds to a version, with what it records about the version."""

    coords: Coordinates
    version: str
    name: str
    blob: BlobInfo
    display_name: str | None = None
    summary: str | None = None
    version_attributes: dict | None = None  # merged into the version's (format facts: POM, METADATA)
    attributes: dict | None = None  # the asset's own (PyPI: filetype, requires_python, ...)
    extra_blobs: tuple[BlobInfo, ...] = ()  # blobs the attributes name (PyPI's PEP 658 metadata file)
    tags: dict[str, str] = field(default_factory=dict)  # npm dist-tags set by this publish


@dataclass(frozen=True)
class Added:
    created: bool  # False: the same bytes were already stored under this name
    version: str
    version_revision: str
    status: str
    package_id: int
    package_revision: int


# ---- 1. preflight ---------------------------------------------------------------------------------

def check_permission(arca: Arca, principal: Principal, ref: RepoRef) -> None:
    """May the caller publish into this repository at all? (Before a body whose package is not
    yet known is read.)"""
    if principal.is_admin:
        return
    with arca.db.read() as s:
        authz.require_ref(arca, s, principal, PUBLISH, ref)


def preflight(arca: Arca, principal: Principal, ref: RepoRef, coords: Coordinates, *, rules: Rules,
              version: str | None = None, name: str | None = None, sha256: str | None = None) -> bool:
    """Everything that can refuse a publish before its bytes are kept: permission, origin
    controls and, given the version (and file), whether it still takes the file. True when the
    file is already stored with these exact bytes (the publish is then a no-op)."""
    with arca.db.read() as s:
        domain, repo = _rows(s, ref)
        authz.require(arca, s, principal, PUBLISH, domain, repo)
        check_publish_allowed(s, domain, repo, coords.format, coords.namespace, coords.name)
        if version is None:
            return False
        pkg = pk.find_package(s, repo, coords)
        ver = _find_version(s, pkg, version, rules) if pkg is not None else None
        return _check_version(s, coords, ver, version, name, sha256, rules)


def _rows(s: Session, ref: RepoRef) -> tuple[Domain, Repository]:
    return s.get(Domain, ref.domain_id), s.get(Repository, ref.repository_id)


def _find_version(s: Session, pkg: Package, version: str, rules: Rules) -> PackageVersion | None:
    """The version `version` names: the same string, or (with a version key) any version that is
    the same version under the format's rules."""
    exact = pk.find_version(s, pkg, version)
    if exact is not None or rules.version_key is None:
        return exact
    key = rules.version_key(version)
    return next((v for v in pk.versions_of(s, pkg) if rules.version_key(v.version) == key), None)


def _find_file(s: Session, ver: PackageVersion, name: str, rules: Rules):
    """The stored file `name` is: the same name, or (with a file key) the same file spelled otherwise."""
    exact = pk.find_asset(s, ver, name)
    if exact is not None or rules.file_key is None:
        return exact
    key = rules.file_key(name)
    return next((a for a in pk.list_assets(s, ver) if rules.file_key(a.name) == key), None)


def _check_version(s: Session, coords: Coordinates, ver: PackageVersion | None, version: str, name: str | None,
                   sha256: str | None, rules: Rules) -> bool:
    """Raise when the version does not take the file `name` (with bytes `sha256`); True when that
    file is already stored with the same bytes."""
    if ver is None:
        return False
    if rules.new_version:  # even with identical bytes: a version is published once
        state = "" if ver.status == PUBLISHED else f" (it is {ver.status})"
        raise Conflict(f"Cannot publish over the previously published version {version} of "
                       f"{_label(coords)}{state}", resource_id=version, resource_type="package-version")
    existing = _find_file(s, ver, name, rules) if name is not None else None
    if existing is not None and sha256 is not None and existing.blob.sha256 == sha256:
        return True
    if ver.status not in rules.open_statuses:
        only = "; files can be added only while it is Unfinished" if rules.open_statuses == (UNFINISHED,) else \
            "; files cannot be added to it"
        raise Conflict(f"Version {version} of {_label(coords)} is {ver.status}{only}",
                       resource_id=version, resource_type="package-version")
    if existing is not None and sha256 is not None and not _replaceable(rules, ver):
        raise pk.file_conflict(name, ver.version, _label(coords), existing.name)
    if existing is None and rules.max_files is not None and s.scalar(
            select(Asset.id).where(Asset.package_version_id == ver.id).offset(rules.max_files - 1).limit(1)
    ) is not None:
        raise QuotaExceeded(f"A package version can have at most {rules.max_files} assets",
                            resource_id=version, resource_type="package-version")
    return False


def _replaceable(rules: Rules, ver: PackageVersion) -> bool:
    return rules.replace == ALWAYS or (rules.replace == WHILE_UNFINISHED and ver.status == UNFINISHED)


def _label(coords: Coordinates) -> str:
    if coords.format == "npm":
        return f"@{coords.namespace}/{coords.name}" if coords.namespace else coords.name
    if coords.format == "maven":
        return f"{coords.namespace}:{coords.name}"
    return coords.label()


# ---- 3. the rows ----------------------------------------------------------------------------------

def add_file(arca: Arca, principal: Principal, ref: RepoRef, f: File, rules: Rules) -> Added:
    """Record a stored blob as file `f.name` of `f.version`, in one transaction."""
    refused: list[tuple[str, str, str]] = []
    with arca.db.session() as s:
        domain, repo = _rows(s, ref)
        authz.require(arca, s, principal, PUBLISH, domain, repo)
        check_publish_allowed(s, domain, repo, f.coords.format, f.coords.namespace, f.coords.name)
        if rules.held_uploads:
            held.lock(s, repo, f.coords)  # before the package row lock, as every holder does
            refused = held.take_checksums(s, repo, f.coords, f.version, f.name, f.blob,
                                          arca.settings.maven_hold_seconds)
        if not refused:  # else only the held checksums' deletion is committed
            added = _add(s, domain, repo, f, rules, arca.settings.maven_hold_seconds)
    if refused:
        raise ValidationError("; ".join(
            f"{alg.upper()} mismatch for {f.name}: the checksum sent before it says {sent} but the file hashes "
            f"to {have}" for alg, sent, have in refused) + "; nothing of it is kept")
    return added


def _add(s: Session, domain: Domain, repo: Repository, f: File, rules: Rules, hold_seconds: float) -> Added:
    pkg = pk.get_or_create_package(s, repo, f.coords, f.display_name)
    pk.bump(s, pkg)  # first: it row-locks the package, so writers of one package queue here
    ver = _find_version(s, pkg, f.version, rules)
    identical = _check_version(s, f.coords, ver, f.version, f.name, f.blob.sha256, rules)
    if ver is None:
        ver, new = pk.get_or_create_version(s, pkg, f.version, status=rules.initial_status,
                                            summary=f.summary, attributes=f.version_attributes,
                                            entry_point=repo.name)
        if new and rules.held_uploads and held.take_publish(s, repo, f.coords, f.version, hold_seconds):
            pk.set_status(s, pkg, ver, PUBLISHED)  # its maven-metadata.xml came first
    created = False if identical else _attach(s, domain, ver, f, replaceable=_replaceable(rules, ver))
    if created:
        _note_version_facts(ver, f)
    for tag, tagged in f.tags.items():
        pk.set_dist_tag(s, pkg, tag, tagged)
    if rules.publish and ver.status == UNFINISHED:
        pk.set_status(s, pkg, ver, PUBLISHED)
    if ver.status == PUBLISHED:
        pk.ensure_latest(s, pkg, ver.version)
    return _added(s, pkg, ver, created)


def check_checksum(arca: Arca, principal: Principal, ref: RepoRef, coords: Coordinates, version: str,
                   name: str, alg: str, value: str) -> bool:
    """A checksum the client sends for file `name` (`alg` a BlobInfo digest name, `value` hex): compared
    with the stored file (ValidationError when they differ; nothing of it is kept), or, when the file
    has not come yet, held until it does. True when held."""
    with arca.db.session() as s:
        domain, repo = _rows(s, ref)
        authz.require(arca, s, principal, PUBLISH, domain, repo)
        held.lock(s, repo, coords)
        pkg = pk.find_package(s, repo, coords)
        ver = pk.find_version(s, pkg, version) if pkg is not None else None
        asset = pk.find_asset(s, ver, name) if ver is not None else None
        if asset is None:
            held.forget_stale(s, arca.settings.maven_hold_seconds)
            held.hold_checksum(s, repo, coords, version, name, alg, value)
            return True
    have = getattr(asset.blob, alg)
    if have != value:
        raise ValidationError(f"{alg.upper()} mismatch for {name}: the client sent {value} but the stored "
                              f"file hashes to {have}")
    return False


def _attach(s: Session, domain: Domain, ver: PackageVersion, f: File, *, replaceable: bool) -> bool:
    for extra in f.extra_blobs:
        pk.blob_row(s, domain.id, extra)
    _asset, created = pk.put_asset(s, domain, ver, f.name, f.blob, replaceable=replaceable, attributes=f.attributes)
    return created


def _note_version_facts(ver: PackageVersion, f: File) -> None:
    """A later file's facts update the version's (a POM after its jar)."""
    if f.summary and f.summary != ver.summary:
        ver.summary = f.summary
    if f.version_attributes:
        merged = {**(ver.attributes or {}), **f.version_attributes}
        if merged != (ver.attributes or {}):
            ver.attributes = merged


def _added(s: Session, pkg: Package, ver: PackageVersion, created: bool) -> Added:
    s.flush()
    s.refresh(pkg, ["revision"])
    return Added(created, ver.version, ver.revision, ver.status, pkg.id, pkg.revision)


def publish_listed(arca: Arca, principal: Principal, ref: RepoRef, coords: Coordinates,
                   versions: Iterable[str], *, hold: Iterable[str] = ()) -> list[str]:
    """Publish the Unfinished versions named (Maven: an uploaded maven-metadata.xml lists them);
    returns those that changed. A version in `hold` (the one the deploy is about) none of whose
    files has come yet is published when its first file comes (services/held.py)."""
    listed = list(versions)[:1000]
    waiting = list(hold)[:10]
    if not listed and not waiting:
        return []
    with arca.db.session() as s:
        domain, repo = _rows(s, ref)
        authz.require(arca, s, principal, PUBLISH, domain, repo)
        held.lock(s, repo, coords)
        pkg = pk.find_package(s, repo, coords)
        for v in waiting:
            if pkg is None or pk.find_version(s, pkg, v) is None:
                held.hold_publish(s, repo, coords, v)
        if pkg is None:
            return []
        changed = []
        for v in s.scalars(select(PackageVersion).where(PackageVersion.package_id == pkg.id,
                                                        PackageVersion.version.in_(listed),
                                                        PackageVersion.status == UNFINISHED)):
            pk.set_status(s, pkg, v, PUBLISHED)
            changed.append(v.version)
        return changed


# ---- versions fetched through an external connection ------------------------------------------------

def check_import_open(arca: Arca, repository_id: int, coords: Coordinates, version: str) -> None:
    """NotFound when the repository holds the version in a status that must not be served (an
    Archived or Disposed copy is never re-fetched behind the administrator's back), or holds it
    as its own (published there, not retained from a remote)."""
    with arca.db.read() as s:
        repo = s.get(Repository, repository_id)
        pkg = pk.find_package(s, repo, coords)
        ver = pk.find_version(s, pkg, version) if pkg is not None else None
        if ver is not None and ver.status not in DOWNLOADABLE:
            raise NotFound(f"Version {version} of {_label(coords)} is {ver.status} in repository {repo.name}")
        if ver is not None and ver.origin_type != "EXTERNAL":
            raise NotFound(f"Version {version} of {_label(coords)} was published to repository {repo.name}; "
                           "a remote's files are not added to it")


def import_external(arca: Arca, repository_id: int, connection: str, coords: Coordinates, version: str,
                    files: list[File]) -> None:
    """Retain files fetched from `connection` as an EXTERNAL, Published version of the repository
    that holds the connection. The origin controls are checked in the same transaction (a
    package blocked meanwhile is NotFound, as if the remote did not have it)."""
    if not files:
        return
    head = files[0]
    with arca.db.session() as s:
        repo = s.get(Repository, repository_id)
        domain = s.get(Domain, repo.domain_id)
        try:
            check_upstream_allowed(s, domain, repo, coords.format, coords.namespace, coords.name, external=True)
        except AccessDenied as exc:
            raise NotFound(exc.message) from None
        pkg = pk.get_or_create_package(s, repo, coords, head.display_name)
        pk.bump(s, pkg)
        ver, created = pk.get_or_create_version(s, pkg, version, status=PUBLISHED, origin_type="EXTERNAL",
                                                entry_point=connection, summary=head.summary,
                                                attributes=head.version_attributes)
        if created:  # fetched because a client asked for it: that is its first download
            ver.last_downloaded_at = ver.created_at or utcnow()
        if ver.status not in DOWNLOADABLE:
            raise NotFound(f"Version {version} of {_label(coords)} is {ver.status} in repository {repo.name}")
        if ver.origin_type != "EXTERNAL":
            # A remote's file never joins a version published here: that version is ours, file by file.
            raise NotFound(f"Version {version} of {_label(coords)} was published to repository {repo.name}; "
                           f"files from {connection} are not added to it")
        for f in files:
            _attach(s, domain, ver, f, replaceable=False)


def note_remote_yanks(arca: Arca, repository_id: int, coords: Coordinates, yanks: dict[str, str | bool]) -> None:
    """Keep a remote's current yank (PEP 592: False, True or the reason) on the files retained from
    it, by file name; the package revision moves when one changes."""
    with arca.db.session() as s:
        pkg = pk.find_package(s, s.get(Repository, repository_id), coords)
        if pkg is None:
            return
        q = (select(Asset).join(PackageVersion, PackageVersion.id == Asset.package_version_id)
             .where(PackageVersion.package_id == pkg.id, PackageVersion.origin_type == "EXTERNAL",
                    Asset.name.in_(list(yanks))))
        changed = False
        for asset in s.scalars(q):
            attrs = dict(asset.attributes or {})
            if (attrs.get("yanked") or False) == yanks[asset.name]:
                continue
            if yanks[asset.name]:
                attrs["yanked"] = yanks[asset.name]
            else:
                attrs.pop("yanked", None)
            asset.attributes = attrs
            changed = True
        if changed:
            pk.bump(s, pkg)


# ---- imports from other registries (arca admin import) ----------------------------------------------

IMPORTED, PRESENT, CONFLICT, CLOSED_VERSION = "imported", "present", "conflict", "closed"


def stored_sha256(arca: Arca, ref: RepoRef, coords: Coordinates, version: str, name: str,
                  rules: Rules) -> str | None:
    """The SHA-256 of the file `name` of `version` if the repository holds it (an import skips it)."""
    with arca.db.read() as s:
        pkg = pk.find_package(s, s.get(Repository, ref.repository_id), coords)
        ver = _find_version(s, pkg, version, rules) if pkg is not None else None
        found = _find_file(s, ver, name, rules) if ver is not None else None
        return found.blob.sha256 if found is not None else None


def import_version(arca: Arca, principal: Principal, ref: RepoRef, coords: Coordinates, version: str,
                   files: list[File], rules: Rules, *, published: datetime | None = None,
                   tags: dict[str, str] | None = None) -> dict[str, str]:
    """Record stored blobs as the files of a Published, INTERNAL `version` (an import from another
    registry), in one transaction: the permission and origin controls of a publish, the version
    created with its source's publish time, each file attached unless the same name is stored
    (PRESENT when with the same bytes, CONFLICT when not: published files are immutable). A version
    that is Archived, Disposed (or otherwise closed) here takes nothing (CLOSED_VERSION); an
    Unfinished one is published. Returns
    {file name: outcome}."""
    with arca.db.session() as s:
        domain, repo = _rows(s, ref)
        authz.require(arca, s, principal, PUBLISH, domain, repo)
        check_publish_allowed(s, domain, repo, coords.format, coords.namespace, coords.name)
        head = files[0]
        pkg = pk.get_or_create_package(s, repo, coords, head.display_name)
        pk.bump(s, pkg)
        ver = _find_version(s, pkg, version, rules)
        if ver is None:
            ver, _ = pk.get_or_create_version(s, pkg, version, status=PUBLISHED, summary=head.summary,
                                              attributes=head.version_attributes, entry_point=repo.name)
            if published is not None:
                ver.published_time = published
        elif ver.status in CLOSED:
            return {f.name: CLOSED_VERSION for f in files}
        elif ver.status == UNFINISHED:  # an interrupted deploy here: the import finishes it
            pk.set_status(s, pkg, ver, PUBLISHED)
        out = {}
        for f in files:
            existing = _find_file(s, ver, f.name, rules)
            if existing is not None:
                out[f.name] = PRESENT if existing.blob.sha256 == f.blob.sha256 else CONFLICT
                continue
            _attach(s, domain, ver, f, replaceable=False)
            _note_version_facts(ver, f)
            out[f.name] = IMPORTED
        pk.ensure_latest(s, pkg, ver.version)
        for tag, tagged in (tags or {}).items():
            target = pk.find_version(s, pkg, tagged)
            if target is not None and target.status == PUBLISHED:
                pk.set_dist_tag(s, pkg, tag, tagged)
        return out
