"""Cleanup policies (Put/Get/Delete{Domain,Repository}CleanupPolicy) and the cleanup run.

A repository's own policy replaces its domain's; without one it inherits the domain's. A run
walks the chosen repositories package by package: for each package it takes the package's write
lock (`rows.bump`), loads the facts, asks `cleanup_rules.plan_package` and removes through the
same functions as DisposePackageVersions / DeletePackageVersions (`packages.dispose`,
`packages.remove`) or, for old SNAPSHOT builds, `packages.remove_files`: audit rows, package
events, webhooks and metrics come with them. One transaction per package, so a run that is
interrupted loses nothing and the next run simply plans again. A dry run plans the same way in a
read transaction and changes nothing. Blobs are freed later by `arca admin gc`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Asset, Blob, CleanupPolicy, DistTag, Domain, Package, PackageVersion, Repository, utcnow
from app.domain.arns import domain_arn, repository_arn
from app.domain.errors import AccessDenied, NotFound, ValidationError
from app.observability import metrics
from app.services import packages, rows
from app.services.cleanup_rules import DELETE, DISPOSE, PackageFacts, Policy, Removal, VersionFacts, parse_policy, \
    plan_package
from app.services.context import Arca, Principal
from app.services.domains import domain_for, get_domain, get_repository, owned_domain, repository_for

DESCRIBE_DOMAIN, DESCRIBE_REPOSITORY = "codeartifact:DescribeDomain", "codeartifact:DescribeRepository"


# ---- the policies ---------------------------------------------------------------------------------

def _admin_only(principal: Principal, op: str) -> None:
    if not principal.is_admin:
        raise AccessDenied(f"User {principal.arn} is not authorized to perform arca:{op}: only administrators "
                           "set cleanup policies (they remove package versions)")


def _shape(p: CleanupPolicy, d: Domain, r: Repository | None, inherited: bool = False) -> dict:
    out = {"domainName": d.name, "resourceArn": p.resource_arn, "policyDocument": p.document,
           "revision": p.revision, "updatedTime": p.updated_at, "scope": "repository" if p.repository_id else "domain"}
    if r is not None:
        out["repositoryName"] = r.name
    if inherited:
        out["inheritedFromDomain"] = True
    return out


def _arn(arca: Arca, d: Domain, r: Repository | None) -> str:
    return repository_arn(arca.region, arca.account, d.name, r.name) if r else domain_arn(arca.region, arca.account,
                                                                                          d.name)


def _target(arca: Arca, s: Session, principal: Principal, domain: str, repository: str | None, owner: str | None,
            read: bool) -> tuple[Domain, Repository | None]:
    if repository is None:
        return (domain_for(arca, s, principal, DESCRIBE_DOMAIN, domain, owner) if read
                else owned_domain(arca, s, domain, owner)), None
    if read:
        return repository_for(arca, s, principal, DESCRIBE_REPOSITORY, domain, repository, owner)
    d = owned_domain(arca, s, domain, owner)
    return d, get_repository(s, d, repository)


def put_policy(arca: Arca, principal: Principal, domain: str, repository: str | None, document: str,
               owner: str | None = None) -> dict:
    """Set the cleanup policy of a domain (`repository` None) or of one repository; the document is
    checked whole before anything is stored."""
    _admin_only(principal, "PutCleanupPolicy")
    parse_policy(document)
    with arca.db.session() as s:
        d, r = _target(arca, s, principal, domain, repository, owner, read=False)
        arn = _arn(arca, d, r)
        p = s.scalar(select(CleanupPolicy).where(CleanupPolicy.resource_arn == arn))
        if p is None:
            p = CleanupPolicy(domain_id=d.id, repository_id=r.id if r else None, resource_arn=arn)
            s.add(p)
        p.document, p.revision, p.updated_at = document, rows.new_revision(), utcnow()
        s.flush()
        return _shape(p, d, r)


def get_policy(arca: Arca, principal: Principal, domain: str, repository: str | None = None,
               owner: str | None = None) -> dict:
    """The policy in force: a repository's own, else its domain's (marked inheritedFromDomain)."""
    with arca.db.read() as s:
        d, r = _target(arca, s, principal, domain, repository, owner, read=True)
        p, inherited = effective_policy_row(s, d, r)
        if p is None:
            where = f"repository {r.name} or its domain {d.name}" if r else f"domain {d.name}"
            raise NotFound(f"No cleanup policy is set on {where}", resource_id=_arn(arca, d, r),
                           resource_type="cleanup-policy")
        return _shape(p, d, r, inherited)


def delete_policy(arca: Arca, principal: Principal, domain: str, repository: str | None = None,
                  owner: str | None = None) -> dict:
    _admin_only(principal, "DeleteCleanupPolicy")
    with arca.db.session() as s:
        d, r = _target(arca, s, principal, domain, repository, owner, read=False)
        arn = _arn(arca, d, r)
        p = s.scalar(select(CleanupPolicy).where(CleanupPolicy.resource_arn == arn))
        if p is None:
            raise NotFound(f"No cleanup policy is set on {arn}", resource_id=arn, resource_type="cleanup-policy")
        out = _shape(p, d, r)
        s.delete(p)
        return out


def effective_policy_row(s: Session, d: Domain, r: Repository | None) -> tuple[CleanupPolicy | None, bool]:
    """(policy row, inherited from the domain)."""
    if r is not None:
        own = s.scalar(select(CleanupPolicy).where(CleanupPolicy.repository_id == r.id))
        if own is not None:
            return own, False
    dom = s.scalar(select(CleanupPolicy).where(CleanupPolicy.domain_id == d.id, CleanupPolicy.repository_id.is_(None)))
    return dom, r is not None and dom is not None


def summary_lines(s: Session, d: Domain, r: Repository) -> dict | None:
    """The rules in force on a repository, in words (the console's repository header)."""
    row, inherited = effective_policy_row(s, d, r)
    if row is None:
        return None
    try:
        policy = parse_policy(row.document)
    except ValidationError:  # stored by an older release with other rules: shown raw
        return {"scope": "domain" if inherited else "repository", "rules": [row.document], "keep": []}
    words = {"keepLastVersions": "keep the last {n} versions", "keepSnapshotBuilds": "keep the last {n} builds of "
             "each SNAPSHOT", "olderThanDays": "{action} {statuses} versions older than {n} days",
             "evictExternalNotDownloadedForDays": "evict cached versions not downloaded for {n} days"}
    rules = []
    for rule in policy.rules:
        text = words[rule.kind].format(n=rule.count, action=rule.action, statuses="/".join(rule.statuses))
        if rule.kind == "keepLastVersions":
            text += f" ({rule.action} the rest)"
        rules.append(f"{rule.pattern.text}: {text}")
    keep = [k.pattern.text + (f" {k.versions}" if k.versions else "") for k in policy.keep]
    return {"scope": "domain" if inherited else "repository", "rules": rules, "keep": keep}


# ---- the run --------------------------------------------------------------------------------------

@dataclass
class Item:
    """One line of a run's report: a version (or some files of one) removed, or would be."""

    domain: str
    repository: str
    format: str
    namespace: str
    package: str
    version: str
    action: str
    rule: str
    bytes: int
    files: list[str]


def _facts(s: Session, pkg: Package) -> PackageFacts:
    versions = rows.versions_of(s, pkg)
    files: dict[int, list[str]] = {}
    snapshot_ids = [v.id for v in versions if v.version.endswith("-SNAPSHOT")] if pkg.format == "maven" else []
    if snapshot_ids:
        for vid, name in s.execute(select(Asset.package_version_id, Asset.name)
                                   .where(Asset.package_version_id.in_(snapshot_ids))):
            files.setdefault(vid, []).append(name)
    tagged = frozenset(s.scalars(select(DistTag.version).where(DistTag.package_id == pkg.id)))
    return PackageFacts(pkg.format, pkg.namespace or "", pkg.name, tuple(
        VersionFacts(v.version, v.status, v.origin_type, v.published_time, v.updated_at or v.created_at,
                     v.last_downloaded_at, tuple(files.get(v.id, ()))) for v in versions), tagged)


def _freed_bytes(s: Session, pkg: Package, removal: Removal) -> int:
    """Bytes the removal frees once gc runs: blobs of its files that no other file in the domain uses."""
    v = rows.find_version(s, pkg, removal.version)
    if v is None or removal.action == DISPOSE and v.status == "Disposed":
        return 0
    q = select(Asset.id, Asset.blob_id, Blob.size).join(Blob, Blob.id == Asset.blob_id).where(
        Asset.package_version_id == v.id)
    if removal.files:
        q = q.where(Asset.name.in_(removal.files))
    mine = s.execute(q).all()
    ids = [a for a, _b, _s in mine]
    total = 0
    for blob_id, size in {(b, sz) for _a, b, sz in mine}:
        others = s.scalar(select(func.count()).select_from(Asset).where(Asset.blob_id == blob_id,
                                                                        Asset.id.not_in(ids)))
        total += 0 if others else size
    return total


def _apply(s: Session, pkg: Package, removals: list[Removal]) -> None:
    for action, fn in ((DISPOSE, packages.dispose), (DELETE, packages.remove)):
        names = [r.version for r in removals if r.action == action]
        for i in range(0, len(names), packages.MAX_BATCH):
            fn(s, pkg, names[i:i + packages.MAX_BATCH])
    for r in removals:
        if r.action == "delete-files":
            packages.remove_files(s, pkg, r.version, list(r.files))


def clean_package(arca: Arca, package_id: int, policy: Policy, *, dry_run: bool, now: datetime) -> list[Item]:
    """Plan (and unless `dry_run`, carry out) one package's removals in one transaction."""
    opener = arca.db.read if dry_run else arca.db.session
    with opener() as s:
        pkg = s.get(Package, package_id)
        if pkg is None:
            return []
        if not dry_run:
            rows.bump(s, pkg)  # the package's write lock: publishes of it wait for this plan
        removals, _spared = plan_package(_facts(s, pkg), policy, now)
        if not removals:
            if not dry_run:
                s.rollback()  # nothing changes: not even the revision
            return []
        repo = s.get(Repository, pkg.repository_id)
        dom = s.get(Domain, repo.domain_id)
        items = [Item(dom.name, repo.name, pkg.format, pkg.namespace or "", pkg.name, r.version, r.action, r.rule,
                      _freed_bytes(s, pkg, r), list(r.files)) for r in removals]
        if not dry_run:
            _apply(s, pkg, removals)
            for it in items:
                metrics.CLEANUP_REMOVALS.labels(it.format, it.action).inc()
        return items


def _repositories(arca: Arca, domain: str | None, repository: str | None) -> list[tuple[int, int, str, str]]:
    """(domain id, repository id, domain name, repository name) of the repositories a run covers."""
    with arca.db.read() as s:
        q = select(Domain.id, Repository.id, Domain.name, Repository.name).join(
            Repository, Repository.domain_id == Domain.id).order_by(Domain.name, Repository.name)
        if domain is not None:
            d = get_domain(s, domain)
            q = q.where(Domain.id == d.id)
            if repository is not None:
                q = q.where(Repository.id == get_repository(s, d, repository).id)
        return [tuple(r) for r in s.execute(q)]


def _policy_for(arca: Arca, domain_id: int, repository_id: int) -> Policy | None:
    with arca.db.read() as s:
        row, _ = effective_policy_row(s, s.get(Domain, domain_id), s.get(Repository, repository_id))
        return parse_policy(row.document) if row is not None else None


def _package_ids(arca: Arca, repository_id: int) -> list[int]:
    with arca.db.read() as s:
        return list(s.scalars(select(Package.id).where(Package.repository_id == repository_id).order_by(Package.id)))


def run(arca: Arca, *, domain: str | None = None, repository: str | None = None, dry_run: bool = False,
        on_item: Callable[[dict], None] | None = None,
        on_repository: Callable[[str, str, int], None] | None = None,
        on_package: Callable[[], None] | None = None) -> dict:
    """Apply the cleanup policies of the chosen repositories (all without `domain`). `on_item`
    sees each removal as it happens; `on_repository(domain, repository, packages)` is told before
    each repository and `on_package()` after each package (progress display). Returns the summary."""
    now = utcnow()
    summary = {"dryRun": dry_run, "repositories": 0, "packagesExamined": 0, "versionsDisposed": 0,
               "versionsDeleted": 0, "filesDeleted": 0, "bytesFreed": 0, "items": []}
    for domain_id, repo_id, dname, rname in _repositories(arca, domain, repository):
        policy = _policy_for(arca, domain_id, repo_id)
        if policy is None:
            continue
        ids = _package_ids(arca, repo_id)
        summary["repositories"] += 1
        if on_repository:
            on_repository(dname, rname, len(ids))
        for package_id in ids:
            for item in clean_package(arca, package_id, policy, dry_run=dry_run, now=now):
                key = {DISPOSE: "versionsDisposed", DELETE: "versionsDeleted"}.get(item.action)
                if key:
                    summary[key] += 1
                else:
                    summary["filesDeleted"] += len(item.files)
                summary["bytesFreed"] += item.bytes
                entry = asdict(item)
                summary["items"].append(entry)
                if on_item:
                    on_item(entry)
            summary["packagesExamined"] += 1
            if on_package:
                on_package()
    if not dry_run and summary["items"]:
        summary["nextStep"] = "run `arca admin gc` to reclaim the blobs nothing references any more"
    return summary
