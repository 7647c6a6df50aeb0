"""Domain archives: `arca admin export` and `arca admin import-domain` (also the backup and restore
procedure).

An archive (a directory or an S3 prefix, app/storage/archive.py) holds
- `blobs/`: every blob of the domain, content-addressed, each verified by SHA-256 on the way in;
- `packages.jsonl`: one line per package: coordinates, origin configuration, dist-tags, and its
  versions (status, origin, publish time, attributes) with their files (name, digests, attributes);
- `arca-export.json`, written last (an archive without it is incomplete): format and version, the
  domain, its repositories (upstreams, external connections), permission and cleanup policies,
  package groups, tags, the blob list and counts.

Export copies only what the archive lacks, so an interrupted export is finished by running it
again. Import creates what the target lacks: existing repositories, groups and versions are kept,
files already stored are skipped, so it too can be run again; every blob is verified against its
SHA-256 before a row names it. The archive is input like any other: each entry is checked, and
what fails is listed, not restored."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import (Blob, CleanupPolicy, DistTag, Domain, Package, PackageGroup, Policy,
                           Repository, Tag)
from app.domain.arns import domain_arn, repository_arn
from app.domain.coords import Coordinates
from app.domain.errors import ArcaError, Conflict, StorageUnavailable, ValidationError
from app.domain.names import check_domain, check_repository
from app.domain.status import STATUSES
from app.services import cleanup, domain_settings, domains, group_ops, maintenance, package_groups as pg, policies, \
    rows
from app.services.context import Arca, Principal
from app.storage.archive import open_archive
from app.storage.base import BlobInfo

FORMAT, VERSION = "arca-domain-archive", 1
MANIFEST, PACKAGES = "arca-export.json", "packages.jsonl"
HEX = {"sha256": 64, "sha1": 40, "md5": 32, "sha512": 128}
_NAME = re.compile(r"[^\x00-\x1f\x7f/\\]{1,255}")


def _copy(source, target, sha256: str, size: int | None = None) -> str:
    """'present' | 'copied' | 'missing' | 'corrupt' (the bytes do not hash to their name, or not to
    the size the manifest states)."""
    try:
        outcome, got = maintenance.copy_blob(source, target, sha256)
    except OSError as exc:  # a full disk, a permission, a path in the way: the job stops, resumable
        raise StorageUnavailable(f"Copying blob {sha256} to {target.describe()} failed ({exc.strerror or exc}); "
                                 "what was copied stays: fix the cause and run the same command again") from None
    if outcome == "copied" and size is not None and got != size:
        return "corrupt"
    return outcome


# ---- export ---------------------------------------------------------------------------------------

def _tags(s: Session, arns: dict[str, str]) -> list[dict]:
    """Tags of the domain's resources, named relative to the domain (ARNs change with the target)."""
    out = []
    for t in s.scalars(select(Tag).where(Tag.resource_arn.in_(list(arns)))):
        out.append({"resource": arns[t.resource_arn], "key": t.key, "value": t.value})
    return out


def _structure(arca: Arca, s: Session, d: Domain) -> dict:
    repos = list(s.scalars(select(Repository).where(Repository.domain_id == d.id).order_by(Repository.id)))
    by_id = {r.id: r for r in repos}
    arns = {domain_arn(arca.region, arca.account, d.name): "domain"}
    arns.update({repository_arn(arca.region, arca.account, d.name, r.name): f"repository:{r.name}" for r in repos})
    groups = list(s.scalars(select(PackageGroup).where(PackageGroup.domain_id == d.id).order_by(PackageGroup.id)))
    arns.update({pg.group_arn(arca.region, arca.account, d.name, g.pattern): f"group:{g.pattern}" for g in groups})
    perms = {("repository:" + by_id[p.repository_id].name) if p.repository_id else "domain": p.document
             for p in s.scalars(select(Policy).where(Policy.domain_id == d.id))}
    cleanups = {("repository:" + by_id[p.repository_id].name) if p.repository_id else "domain": p.document
                for p in s.scalars(select(CleanupPolicy).where(CleanupPolicy.domain_id == d.id))}
    return {
        "name": d.name,
        "encryptionKey": d.encryption_key,
        "settings": d.settings or {},
        "repositories": [{"name": r.name, "description": r.description, "externalConnection": r.external_connection,
                          "upstreams": domains.upstream_names(s, r)} for r in repos],
        "packageGroups": [{"pattern": g.pattern, "description": g.description, "contactInfo": g.contact_info,
                           "restrictions": g.restrictions or {}, "allowedRepositories": g.allowed_repositories or {}}
                          for g in groups],
        "permissionsPolicies": perms,
        "cleanupPolicies": cleanups,
        "tags": _tags(s, arns),
    }


def _package_lines(s: Session, d: Domain) -> Iterator[dict]:
    q = (select(Package, Repository.name).join(Repository, Repository.id == Package.repository_id)
         .where(Repository.domain_id == d.id).order_by(Package.id))
    for pkg, repo in s.execute(q).all():
        versions = []
        for v in rows.versions_of(s, pkg):
            versions.append({
                "version": v.version, "status": v.status, "originType": v.origin_type,
                "domainEntryPoint": v.domain_entry_point, "publishedTime": v.published_time,
                "createdTime": v.created_at, "summary": v.summary, "attributes": v.attributes or {},
                "assets": [{"name": a.name, "sha256": a.blob.sha256, "sha1": a.blob.sha1, "md5": a.blob.md5,
                            "sha512": a.blob.sha512, "size": a.blob.size, "attributes": a.attributes or {}}
                           for a in rows.list_assets(s, v)]})
        yield {"repository": repo, "format": pkg.format, "namespace": pkg.namespace or "", "name": pkg.name,
               "displayName": pkg.display_name, "originPublish": pkg.origin_publish,
               "originUpstream": pkg.origin_upstream, "attributes": pkg.attributes or {},
               "distTags": dict(s.execute(select(DistTag.tag, DistTag.version)
                                          .where(DistTag.package_id == pkg.id)).all()),
               "versions": versions}


def _json(value) -> str:
    return json.dumps(value, default=lambda o: o.isoformat() if isinstance(o, datetime) else str(o),
                      separators=(",", ":"))


def export_domain(arca: Arca, domain: str, target_spec: str, *, on_blob: Callable[[str, str], None] | None = None,
                  on_blobs: Callable[[int], None] | None = None) -> dict:
    """Write the domain's archive to `target_spec` (a directory or s3://bucket/prefix)."""
    target = open_archive(arca.settings, target_spec, create=True)
    with arca.db.read() as s:
        d = domains.get_domain(s, domain)
        structure = _structure(arca, s, d)
        blobs = [{"sha256": b.sha256, "sha1": b.sha1, "md5": b.md5, "sha512": b.sha512, "size": b.size}
                 for b in s.scalars(select(Blob).where(Blob.domain_id == d.id).order_by(Blob.sha256))]
        lines = [_json(p) for p in _package_lines(s, d)]
    if on_blobs:
        on_blobs(len(blobs))
    counts = {"copied": 0, "present": 0, "missing": 0, "corrupt": 0}
    problems = []
    for b in blobs:
        outcome = _copy(arca.blobs, target.blobs, b["sha256"], b["size"])
        counts[outcome] += 1
        if outcome in ("missing", "corrupt"):
            problems.append({"sha256": b["sha256"], "problem": outcome})
        if on_blob:
            on_blob(b["sha256"], outcome)
    target.write_document(PACKAGES, ("\n".join(lines) + "\n").encode() if lines else b"")
    manifest = {"format": FORMAT, "version": VERSION, "exportedAt": rows.utcnow(), "account": arca.account,
                "domain": structure, "blobs": blobs,
                "counts": {"repositories": len(structure["repositories"]), "packages": len(lines),
                           "versions": sum(len(json.loads(line)["versions"]) for line in lines),
                           "blobs": len(blobs), "bytes": sum(b["size"] for b in blobs)}}
    target.write_document(MANIFEST, _json(manifest).encode())
    return {"domain": domain, "archive": target.describe(), **manifest["counts"], "blobsCopied": counts["copied"],
            "blobsAlreadyThere": counts["present"], "problems": problems, "ok": not problems}


# ---- import ---------------------------------------------------------------------------------------

@dataclass
class Restore:
    arca: Arca
    principal: Principal
    domain: str
    problems: list = field(default_factory=list)
    counts: dict = field(default_factory=lambda: {"repositories": 0, "packageGroups": 0, "policies": 0,
                                                  "packages": 0, "versions": 0, "files": 0, "filesPresent": 0,
                                                  "blobsCopied": 0, "blobsPresent": 0})

    def problem(self, what: str, reason: str) -> None:
        self.problems.append({"entry": what, "problem": reason})


def _str(value, what: str, *, optional: bool = False, limit: int = 1000) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise ValidationError(f"{what} must be a string of at most {limit} characters")
    return value


def _dict(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be an object")
    return value


def _when(value, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(_str(value, what, limit=64))
    except ValueError:
        raise ValidationError(f"{what} is not an ISO 8601 time") from None


def _digests(entry: dict, what: str) -> BlobInfo:
    values = {}
    for alg, n in HEX.items():
        v = entry.get(alg)
        if not isinstance(v, str) or len(v) != n or any(c not in "0123456789abcdef" for c in v):
            raise ValidationError(f"{what}.{alg} is not a {n}-digit lowercase hex digest")
        values[alg] = v
    size = entry.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValidationError(f"{what}.size must be a whole number")
    return BlobInfo(values["sha256"], values["sha1"], values["md5"], values["sha512"], size)


def read_manifest(source) -> dict:
    raw = source.read_document(MANIFEST)
    if raw is None:
        raise ValidationError(f"{source.describe()} has no {MANIFEST}: not an Arca archive, or its export did not "
                              "finish (run the export again)")
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"{MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValidationError(f"{MANIFEST} is not an Arca domain archive")
    if manifest.get("version") != VERSION:
        raise ValidationError(f"This Arca reads archive version {VERSION}, not {manifest.get('version')!r}")
    _dict(manifest.get("domain"), "domain")
    if not isinstance(manifest.get("blobs"), list):
        raise ValidationError("blobs must be a list")
    return manifest


def _ignore_conflict(fn, *args, **kwargs) -> bool:
    """Call a create service; False when the thing exists already (a re-run)."""
    try:
        fn(*args, **kwargs)
        return True
    except Conflict:
        return False


def _restore_structure(r: Restore, dom: dict) -> None:
    arca, who, name = r.arca, r.principal, r.domain
    tags = [t for t in dom.get("tags") or [] if isinstance(t, dict)]

    def tags_of(resource: str) -> list[dict]:
        return [{"key": t["key"], "value": t["value"]} for t in tags
                if t.get("resource") == resource and isinstance(t.get("key"), str) and isinstance(t.get("value"), str)]

    _ignore_conflict(domains.create_domain, arca, who, name, _str(dom.get("encryptionKey"), "encryptionKey",
                                                                  optional=True), tags_of("domain"))
    protection = _dict(dom.get("settings"), "settings").get(domain_settings.PROTECTION)
    if isinstance(protection, bool):
        domain_settings.update_domain_settings(arca, who, name, {domain_settings.PROTECTION: protection})
    repos = [x for x in dom.get("repositories") or [] if isinstance(x, dict)]
    made = []
    for repo in repos:
        try:
            rname = check_repository(_str(repo.get("name"), "repository name"))
            if _ignore_conflict(domains.create_repository, arca, who, name, rname,
                                _str(repo.get("description"), "description", optional=True), None,
                                tags_of(f"repository:{rname}")):
                r.counts["repositories"] += 1
            made.append((rname, repo))
        except ArcaError as exc:
            r.problem(f"repository {repo.get('name')!r}", exc.message)
    for rname, repo in made:  # once every repository exists: upstreams, external connections
        try:
            ups = [{"repositoryName": u} for u in repo.get("upstreams") or [] if isinstance(u, str)]
            if ups:
                domains.update_repository(arca, who, name, rname, None, ups)
            conn = _str(repo.get("externalConnection"), "externalConnection", optional=True)
            if conn:
                try:
                    domains.associate_external_connection(arca, who, name, rname, conn)
                except Conflict:
                    pass
        except ArcaError as exc:
            r.problem(f"repository {rname}", exc.message)
    for g in [x for x in dom.get("packageGroups") or [] if isinstance(x, dict)]:
        try:
            pattern = _str(g.get("pattern"), "pattern", limit=520)
            if pattern != pg.ROOT and _ignore_conflict(
                    group_ops.create_group, arca, who, name, pattern,
                    _str(g.get("description"), "description", optional=True),
                    _str(g.get("contactInfo"), "contactInfo", optional=True), tags_of(f"group:{pattern}")):
                r.counts["packageGroups"] += 1
            restrictions = {k: v for k, v in _dict(g.get("restrictions"), "restrictions").items()}
            allowed = _dict(g.get("allowedRepositories"), "allowedRepositories")
            add = [{"repositoryName": repo, "originRestrictionType": kind}
                   for kind, names in allowed.items() if isinstance(names, list) for repo in names]
            if restrictions or add:
                group_ops.update_origin_configuration(arca, who, name, pattern, restrictions or None, add or None, None)
        except ArcaError as exc:
            r.problem(f"package group {g.get('pattern')!r}", exc.message)
    for key, put in (("permissionsPolicies", policies.put_policy), ("cleanupPolicies", cleanup.put_policy)):
        for where, doc in _dict(dom.get(key), key).items():
            try:
                repo = where.split(":", 1)[1] if isinstance(where, str) and where.startswith("repository:") else None
                if where != "domain" and repo is None:
                    raise ValidationError(f"{where!r} is neither domain nor repository:NAME")
                put(arca, who, name, repo, _str(doc, key, limit=64 * 1024))
                r.counts["policies"] += 1
            except ArcaError as exc:
                r.problem(f"{key} {where!r}", exc.message)


def _coords(line: dict) -> Coordinates:
    fmt = _str(line.get("format"), "format", limit=16)
    name = _str(line.get("name"), "name", limit=255)
    namespace = _str(line.get("namespace") or "", "namespace", limit=255)
    if not _NAME.fullmatch(name) or (namespace and not _NAME.fullmatch(namespace)):
        raise ValidationError(f"{namespace}/{name} is not a package name")
    return Coordinates(fmt, namespace, name)


def restore_package(arca: Arca, principal: Principal, domain: str, line: dict) -> dict:
    """One package of an archive, in one transaction: what the target lacks is created with the
    archive's statuses, origins, publish times and files; versions and files already there are kept.
    Returns counts and the problems of its entries."""
    out = {"versions": 0, "files": 0, "filesPresent": 0, "problems": []}
    coords = _coords(line)
    repo_name = check_repository(_str(line.get("repository"), "repository", limit=100))
    with arca.db.session() as s:
        d, repo = domains.repository_for(arca, s, principal, "codeartifact:PublishPackageVersion", domain, repo_name)
        pkg = rows.get_or_create_package(s, repo, coords, _str(line.get("displayName") or coords.name, "displayName"))
        rows.bump(s, pkg)
        if line.get("originPublish") in ("ALLOW", "BLOCK") and line.get("originUpstream") in ("ALLOW", "BLOCK"):
            pkg.origin_publish, pkg.origin_upstream = line["originPublish"], line["originUpstream"]
        if not pkg.attributes and isinstance(line.get("attributes"), dict):
            pkg.attributes = line["attributes"]
        for i, v in enumerate(line.get("versions") or []):
            try:
                _restore_version(s, d, pkg, v, f"{coords.label()} versions[{i}]", out)
            except ArcaError as exc:
                out["problems"].append({"entry": f"{coords.label()} versions[{i}]", "problem": exc.message})
        for tag, version in _dict(line.get("distTags"), "distTags").items():
            target = rows.find_version(s, pkg, version) if isinstance(version, str) else None
            if isinstance(tag, str) and target is not None:
                rows.set_dist_tag(s, pkg, tag, version)
    return out


def _restore_version(s: Session, d: Domain, pkg: Package, v: dict, what: str, out: dict) -> None:
    if not isinstance(v, dict):
        raise ValidationError("a version must be an object")
    version = _str(v.get("version"), "version", limit=255)
    status = v.get("status")
    if status not in STATUSES or status == "Deleted":
        raise ValidationError(f"status {status!r} is not a stored version status")
    origin = v.get("originType") if v.get("originType") in ("INTERNAL", "EXTERNAL") else "INTERNAL"
    assets = v.get("assets") if isinstance(v.get("assets"), list) else []
    files = []
    for j, a in enumerate(assets):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not _NAME.fullmatch(a["name"]):
            raise ValidationError(f"assets[{j}] has no valid name")
        files.append((a["name"], _digests(a, f"assets[{j}]"), _dict(a.get("attributes"), "attributes")))
    ver, created = rows.get_or_create_version(
        s, pkg, version, status=status, origin_type=origin,
        entry_point=_str(v.get("domainEntryPoint"), "domainEntryPoint", optional=True, limit=100),
        summary=_str(v.get("summary"), "summary", optional=True, limit=100_000),
        attributes=_dict(v.get("attributes"), "attributes"))
    if created:
        ver.published_time = _when(v.get("publishedTime"), "publishedTime")
        ver.created_at = _when(v.get("createdTime"), "createdTime") or ver.created_at
        out["versions"] += 1
    for name, info, attrs in files:
        existing = rows.find_asset(s, ver, name)
        if existing is not None:
            if existing.blob.sha256 != info.sha256:
                out["problems"].append({"entry": f"{what} {name}", "problem": "stored here with other bytes"})
            else:
                out["filesPresent"] += 1
            continue
        rows.put_asset(s, d, ver, name, info, attributes=attrs)
        out["files"] += 1


def restore_blob_rows(arca: Arca, domain: str, infos: list[BlobInfo]) -> None:
    """The domain's rows for blobs already stored and verified (created when missing)."""
    for i in range(0, len(infos), 500):
        with arca.db.session() as s:
            d = domains.get_domain(s, domain)
            for info in infos[i:i + 500]:
                rows.blob_row(s, d.id, info)


def import_domain(arca: Arca, principal: Principal, source_spec: str, *, rename: str | None = None,
                  on_step: Callable[[str, int], None] | None = None,
                  on_done: Callable[[dict], None] | None = None) -> dict:
    """Restore an archive into this installation (its domain, or `rename`)."""
    source = open_archive(arca.settings, source_spec, create=False)
    manifest = read_manifest(source)
    dom = manifest["domain"]
    name = check_domain(rename or _str(dom.get("name"), "domain name", limit=50))
    r = Restore(arca, principal, name)
    # 1. blobs first: a row never names a blob that is not fully stored (and verified)
    bad_blobs: set[str] = set()
    good: list[BlobInfo] = []
    if on_step:
        on_step("blobs", len(manifest["blobs"]))
    for i, b in enumerate(manifest["blobs"]):
        try:
            info = _digests(b if isinstance(b, dict) else {}, f"blobs[{i}]")
        except ArcaError as exc:
            r.problem(f"blobs[{i}]", exc.message)
            continue
        good.append(info)
        outcome = _copy(source.blobs, arca.blobs, info.sha256, info.size)
        if outcome in ("missing", "corrupt"):
            bad_blobs.add(info.sha256)
            r.problem(f"blob {info.sha256}", f"{outcome} in the archive")
        else:
            r.counts["blobsCopied" if outcome == "copied" else "blobsPresent"] += 1
        if on_done:
            on_done({"blob": info.sha256, "result": outcome})
    # 2. the domain and what it holds, with a row for each of its blobs (its storage accounting,
    #    and what `gc` decides on), as the source had them
    _restore_structure(r, dom)
    restore_blob_rows(arca, name, [i for i in good if i.sha256 not in bad_blobs])
    # 3. the packages
    raw = source.read_document(PACKAGES) or b""
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if on_step:
        on_step("packages", len(lines))
    for n, text in enumerate(lines, 1):
        entry: dict = {"line": n}
        try:
            line = json.loads(text)
            if not isinstance(line, dict):
                raise ValidationError("not an object")
            for v in line.get("versions") or []:
                if isinstance(v, dict):
                    missing = [a.get("name") for a in v.get("assets") or []
                               if isinstance(a, dict) and a.get("sha256") in bad_blobs]
                    if missing:
                        raise ValidationError(f"its files {missing} have no intact blob in the archive")
            done = restore_package(arca, principal, name, line)
            entry.update(package=_coords(line).label(), versions=done["versions"], files=done["files"],
                         filesPresent=done["filesPresent"], problems=len(done["problems"]))
            r.counts["packages"] += 1
            for k in ("versions", "files", "filesPresent"):
                r.counts[k] += done[k]
            r.problems += done["problems"]
        except (ArcaError, ValueError) as exc:
            r.problem(f"{PACKAGES} line {n}", getattr(exc, "message", None) or str(exc))
            entry["problem"] = r.problems[-1]["problem"]
        if on_done:
            on_done(entry)
    return {"domain": name, "archive": source.describe(), **r.counts, "problems": r.problems, "ok": not r.problems}
