"""npm's writes and lookups against the package services: publish, deprecate, unpublish,
dist-tags. Blobs are stored before rows; every change bumps the package revision first, which
also serialises concurrent writers of one package (the row lock on PostgreSQL, BEGIN
IMMEDIATE on SQLite), so two publishes of different versions both land."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from sqlalchemy import delete, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from app.db.models import Asset, Blob, DistTag, Domain, Package, PackageVersion, Repository, utcnow
from app.domain.errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from app.formats import npm_names, npm_packument as pm, npm_publish as pub
from app.services import authz, packages as pk

PUBLISHED = pk.PUBLISHED
DOWNLOADABLE = pk.DOWNLOADABLE
DELETE_VERSIONS = "codeartifact:DeletePackageVersions"
DEP_FIELDS = (("dependencies", "regular"), ("devDependencies", "dev"),
              ("peerDependencies", "peer"), ("optionalDependencies", "optional"))
INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")


# ---- lookups -------------------------------------------------------------------------------------

def coords_of(name: str) -> tuple[str, str]:
    return npm_names.split_name(name)


def authorize(dp, s, action: str) -> None:
    if not dp.principal.is_admin:
        dp.require_sync(s, action)


def package_revision(s, dp, scope: str, bare: str) -> tuple[int, int]:
    row = s.execute(select(Package.id, Package.revision).where(
        Package.repository_id == dp.repo.repository_id, Package.format == "npm",
        Package.namespace == scope, Package.name == bare)).first()
    if row is None:
        raise NotFound(f"{npm_names.full_name(scope, bare)} is not in this repository")
    return row[0], row[1]


def package_row(s, pkg_id: int) -> Package:
    return s.get(Package, pkg_id)


def _package(s, dp, name: str) -> Package:
    scope, bare = coords_of(name)
    repo = s.get(Repository, dp.repo.repository_id)
    return pk.get_package(s, repo, pk.Coordinates("npm", scope, bare))


def tarball_blob(s, dp, scope: str, bare: str, version: str, filename: str) -> tuple[str, int]:
    """One indexed query per download: package → downloadable version → asset → blob."""
    row = s.execute(
        select(Blob.sha256, Blob.size)
        .join(Asset, Asset.blob_id == Blob.id)
        .join(PackageVersion, PackageVersion.id == Asset.package_version_id)
        .join(Package, Package.id == PackageVersion.package_id)
        .where(Package.repository_id == dp.repo.repository_id, Package.format == "npm",
               Package.namespace == scope, Package.name == bare, PackageVersion.version == version,
               PackageVersion.status.in_(DOWNLOADABLE), Asset.name == filename)).first()
    if row is None:
        raise NotFound(f"{filename} is not in this repository")
    return row[0], row[1]


# ---- publish -------------------------------------------------------------------------------------

def _temp_factory(dp):
    make = getattr(dp.arca.blobs, "new_temp_path", None)
    if make is not None:
        return make
    tmp = Path(tempfile.gettempdir())
    return lambda: tmp / f"arca-npm-{uuid.uuid4().hex}.part"


async def put_package(dp, reader, name: str, rev: str | None):
    """PUT /{name}: a publish (one tarball in _attachments) or, without attachments, a
    metadata update (npm deprecate); PUT /{name}/-rev/{rev}: npm unpublish of versions."""
    scope, bare = coords_of(name)
    await dp.require(authz.PUBLISH)
    limit = dp.arca.settings.npm_max_publish_bytes
    if (reader.declared_length() or 0) > limit:
        raise PayloadTooLarge(f"The publish body ({reader.declared_length()} bytes) is larger than this "
                              f"registry's limit of {limit} bytes (ARCA_NPM_MAX_PUBLISH_BYTES)")
    scanner = pub.BodyScanner(limit=limit, temp_path_factory=_temp_factory(dp))
    try:
        async for chunk in reader.chunks():
            scanner.feed(chunk)
        doc = scanner.finish()
        for key in ("name", "_id"):
            if key in doc and doc[key] != name:
                raise ValidationError(f"The body's {key} {doc[key]!r} does not match the URL's package {name!r}")
        if scanner.attachments or doc.get("_attachments"):
            return await _publish(dp, scope, bare, name, doc, scanner.attachments)
        if rev is not None:
            await dp.require(DELETE_VERSIONS)
        out = await run_in_threadpool(_update_metadata, dp, name, doc, rev)
        return _json(out, 200)
    finally:
        scanner.cleanup()


async def _publish(dp, scope: str, bare: str, name: str, doc: dict, attachments):
    p = pub.check_publish(doc, name, attachments)
    digests = pub.check_digests(p.attachment, p.expected)
    await run_in_threadpool(pub.check_tarball, p.attachment.path, name, p.version)
    info = await _commit_blob(dp, p.attachment.path, digests)
    readme = p.manifest.get("readme") or doc.get("readme") or ""
    rev = await run_in_threadpool(_store_publish, dp, scope, bare, name, p, info, readme)
    return _json({"ok": "created new package version", "success": True, "id": name, "rev": rev}, 201)


async def _commit_blob(dp, path: Path, digests: dict):
    blobs = dp.arca.blobs
    if hasattr(blobs, "put_file") and hasattr(blobs, "new_temp_path"):
        return await run_in_threadpool(blobs.put_file, path, digests)

    async def chunks():
        with open(path, "rb") as fh:
            while data := fh.read(1024 * 1024):
                yield data
    return await blobs.put_stream(chunks(), expected=digests)


def version_attributes(name: str, manifest: dict, readme: str) -> dict:
    m = {k: v for k, v in manifest.items() if k not in ("readme", "_attachments")}
    dist = {k: v for k, v in (m.get("dist") or {}).items() if k != "tarball"}
    m["dist"] = dist
    scripts = m.get("scripts") if isinstance(m.get("scripts"), dict) else {}
    if "hasInstallScript" not in m and any(s in scripts for s in INSTALL_SCRIPTS):
        m["hasInstallScript"] = True
    attrs: dict = {"manifest": m, "readme": readme if isinstance(readme, str) else "",
                   "dependencies": dependencies(m)}
    if isinstance(m.get("homepage"), str):
        attrs["homePage"] = m["homepage"]
    repo = m.get("repository")
    url = repo.get("url") if isinstance(repo, dict) else repo
    if isinstance(url, str):
        attrs["sourceCodeRepository"] = url
    licenses = licenses_of(m)
    if licenses:
        attrs["licenses"] = licenses
    return attrs


def dependencies(m: dict) -> list[dict]:
    """CodeArtifact's PackageDependency shape (namespace = scope without '@')."""
    out = []
    for field, kind in DEP_FIELDS:
        deps = m.get(field)
        if not isinstance(deps, dict):
            continue
        for dep, req in deps.items():
            scope, _, bare = dep[1:].partition("/") if dep.startswith("@") and "/" in dep else ("", "", dep)
            d = {"package": bare, "dependencyType": kind, "versionRequirement": str(req)}
            if scope:
                d["namespace"] = scope
            out.append(d)
    return out


def licenses_of(m: dict) -> list[dict]:
    lic = m.get("license")
    if isinstance(lic, str):
        return [{"name": lic}]
    if isinstance(lic, dict) and lic.get("type"):
        return [{"name": lic["type"], **({"url": lic["url"]} if lic.get("url") else {})}]
    out = []
    for x in m.get("licenses") or []:
        if isinstance(x, dict) and x.get("type"):
            out.append({"name": x["type"], **({"url": x["url"]} if x.get("url") else {})})
    return out


def _store_publish(dp, scope, bare, name, p: pub.Publish, info, readme: str) -> str:
    attrs = version_attributes(name, p.manifest, readme)
    summary = p.manifest.get("description") if isinstance(p.manifest.get("description"), str) else None
    with dp.arca.db.session() as s:
        repo = s.get(Repository, dp.repo.repository_id)
        domain = s.get(Domain, dp.repo.domain_id)
        pkg = pk.package_for_publish(s, domain, repo, pk.Coordinates("npm", scope, bare), display_name=name)
        pk.bump(s, pkg)  # first: the per-package write lock
        v, created = pk.get_or_create_version(s, pkg, p.version, status=PUBLISHED, summary=summary,
                                              attributes=attrs)
        if not created:
            state = "" if v.status == PUBLISHED else f" (it is {v.status})"
            raise Conflict(f"Cannot publish over the previously published version {p.version} of {name}{state}",
                           resource_id=p.version, resource_type="package-version")
        pk.put_asset(s, domain, v, f"{bare}-{p.version}.tgz", info)
        tags = dict(p.tags)
        if s.get(DistTag, (pkg.id, "latest")) is None:
            tags.setdefault("latest", p.version)  # `latest` exists while any version does
        for tag, version in tags.items():
            _upsert_tag(s, pkg, tag, version)
        s.flush()
        s.refresh(pkg)
        return pm.rev_of(pkg.id, pkg.revision)


def _upsert_tag(s, pkg: Package, tag: str, version: str) -> None:
    row = s.get(DistTag, (pkg.id, tag))
    if row is None:
        s.add(DistTag(package_id=pkg.id, tag=tag, version=version))
    else:
        row.version = version


def _json(data, status: int) -> JSONResponse:
    return JSONResponse(data, status_code=status)


# ---- deprecate / unpublish -------------------------------------------------------------------------

def _lock(s, dp, name: str, rev: str | None) -> Package:
    """The package, write-locked (bump), after checking the client's `_rev` if it sent one."""
    pkg = _package(s, dp, name)
    pk.bump(s, pkg)
    current = pm.rev_of(pkg.id, pkg.revision - 1)
    if rev is not None and rev != current:
        raise Conflict(f"Document update conflict: {name} is at revision {current}, not {rev}; "
                       "fetch the packument again and retry")
    return pkg


def _update_metadata(dp, name: str, doc: dict, rev: str | None) -> dict:
    body_versions = doc.get("versions")
    if not isinstance(body_versions, dict):
        raise ValidationError("The body must carry the package's 'versions'")
    with dp.arca.db.session() as s:
        try:
            pkg = _lock(s, dp, name, rev)
        except NotFound:
            if rev is not None:
                raise
            raise ValidationError("A publish must carry exactly one tarball in _attachments") from None
        rows = {v.version: v for v in pk.versions_of(s, pkg)}
        for version in body_versions:
            if version not in rows:
                raise ValidationError(f"{name}@{version} does not exist here; publish it with its tarball")
        removed = []
        for version, v in rows.items():
            if v.status != PUBLISHED:
                continue  # hidden from the client: neither removed nor changed by its document
            if version not in body_versions:
                if rev is not None:
                    removed.append(version)
                continue
            _apply_deprecation(v, body_versions[version])
        for i in range(0, len(removed), 100):
            pk.delete_versions(s, pkg, removed[i:i + 100])
        if removed:
            _follow_tags(s, pkg, doc.get("dist-tags"), set(rows) - set(removed), rows)
        s.flush()
        s.refresh(pkg)
        return {"ok": "updated package", "id": name, "rev": pm.rev_of(pkg.id, pkg.revision),
                "removed": removed}


def _apply_deprecation(v, manifest) -> None:
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
    v.revision = pk.new_revision()
    v.updated_at = utcnow()


def _follow_tags(s, pkg, tags, remaining: set, rows: dict) -> None:
    """After npm unpublished a version it moves `latest` itself; take that choice when valid."""
    if not isinstance(tags, dict):
        return
    for tag, version in tags.items():
        if (isinstance(tag, str) and isinstance(version, str) and version in remaining
                and rows[version].status == PUBLISHED and s.get(DistTag, (pkg.id, tag)) is None):
            _upsert_tag(s, pkg, tag, version)


async def delete_package(dp, name: str, rev: str):
    coords_of(name)
    await dp.require(DELETE_VERSIONS)

    def work():
        with dp.arca.db.session() as s:
            pkg = _lock(s, dp, name, rev)
            names = [v.version for v in pk.versions_of(s, pkg)]
            for i in range(0, len(names), 100):
                pk.delete_versions(s, pkg, names[i:i + 100])
            s.execute(delete(DistTag).where(DistTag.package_id == pkg.id))
            s.execute(delete(Package).where(Package.id == pkg.id))
        return {"ok": "deleted package", "id": name}

    return _json(await run_in_threadpool(work), 200)


async def delete_tarball(dp, name: str, filename: str):
    scope, bare = coords_of(name)
    await dp.require(DELETE_VERSIONS)
    version = filename[len(bare) + 1:-4] if filename.startswith(f"{bare}-") and filename.endswith(".tgz") else ""

    def work():
        with dp.arca.db.session() as s:
            repo = s.get(Repository, dp.repo.repository_id)
            pkg = pk.find_package(s, repo, pk.Coordinates("npm", scope, bare))
            v = pk.find_version(s, pkg, version) if pkg is not None and version else None
            if v is not None:
                pk.bump(s, pkg)
                pk.delete_versions(s, pkg, [v.version])
        # Already gone (npm's unpublish removes the version first): success, as CouchDB did.
        return {"ok": "deleted tarball", "id": name}

    return _json(await run_in_threadpool(work), 200)


# ---- dist-tags -------------------------------------------------------------------------------------

async def read_tags(dp, name: str) -> dict:
    def work():
        with dp.arca.db.read() as s:
            authorize(dp, s, authz.READ)
            return pm.load_view(s, _package(s, dp, name)).tags()
    return await run_in_threadpool(work)


async def set_tag(dp, name: str, tag: str, version) -> dict:
    coords_of(name)
    npm_names.check_tag(tag)
    if not isinstance(version, str):
        raise ValidationError('The body must be the version as a JSON string, e.g. "1.2.3"')
    npm_names.check_version(version)
    await dp.require(authz.PUBLISH)

    def work():
        with dp.arca.db.session() as s:
            pkg = _lock(s, dp, name, None)
            v = pk.find_version(s, pkg, version)
            if v is None or v.status != PUBLISHED:
                state = "does not exist" if v is None else f"is {v.status}"
                raise ValidationError(f"Cannot tag {name}@{version} as {tag}: that version {state}; "
                                      "a dist-tag must name a Published version")
            _upsert_tag(s, pkg, tag, version)
            return pm.load_view(s, pkg).tags()
    return await run_in_threadpool(work)


async def remove_tag(dp, name: str, tag: str) -> dict:
    coords_of(name)
    if tag == "latest":
        raise ValidationError("The latest dist-tag cannot be removed; point it at another version instead")
    await dp.require(authz.PUBLISH)

    def work():
        with dp.arca.db.session() as s:
            pkg = _lock(s, dp, name, None)
            row = s.get(DistTag, (pkg.id, tag))
            if row is None:
                raise NotFound(f"{name} has no dist-tag {tag}")
            s.delete(row)
            s.flush()
            return pm.load_view(s, pkg).tags()
    return await run_in_threadpool(work)
