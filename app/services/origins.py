"""Origin controls: may a package be published into a repository, or taken into it from upstream?

Two things decide, and both must allow: the package's own origin configuration in that
repository (PutPackageOriginConfiguration; by default upstream is BLOCKed once a version was
published internally, CodeArtifact's rule) and the effective restriction of the package group
the package belongs to (app/services/package_groups.py)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Domain, Package, PackageVersion, Repository
from app.domain.errors import AccessDenied, ValidationError
from app.domain.pep503 import normalize as pep503
from app.services.package_groups import Groups

MODES = ("ALLOW", "BLOCK")


def origin_restrictions(pkg: Package, has_internal: bool) -> dict:
    """CodeArtifact's defaults: once a version was published internally, upstream is BLOCKed."""
    publish = pkg.origin_publish or "ALLOW"
    upstream = pkg.origin_upstream or ("BLOCK" if has_internal else "ALLOW")
    return {"publish": publish, "upstream": upstream}


def has_internal_versions(s: Session, pkg: Package) -> bool:
    return bool(s.scalar(select(func.count()).select_from(PackageVersion).where(
        PackageVersion.package_id == pkg.id, PackageVersion.origin_type == "INTERNAL")))


def check_modes(publish: object, upstream: object) -> None:
    for key, value in (("publish", publish), ("upstream", upstream)):
        if value not in MODES:
            raise ValidationError(f"restrictions.{key} must be ALLOW or BLOCK, not {value!r}")


def restrictions_of(s: Session, pkg: Package) -> dict:
    return origin_restrictions(pkg, has_internal_versions(s, pkg))


def _normalise(fmt: str, namespace: str | None, name: str) -> tuple[str, str]:
    namespace = namespace or ""
    if fmt == "npm":
        namespace = namespace.lstrip("@")
    if fmt == "pypi":
        name = pep503(name)
    return namespace, name


def _label(fmt: str, namespace: str, name: str) -> str:
    return f"{fmt} package {namespace + '/' if namespace else ''}{name}"


def _group_verdict(groups: Groups, rtype: str, repository: Repository, fmt: str, namespace: str,
                   name: str) -> str | None:
    """None when allowed, else the reason."""
    g, _ = groups.associated(fmt, namespace, name)
    mode, source = groups.effective(g, rtype)
    via = f"package group {g.text}" + (f" (inherited from {source.text})" if source.text != g.text else "")
    if mode == "BLOCK":
        return f"{rtype} is BLOCKed for {_label(fmt, namespace, name)} by {via}"
    if mode == "ALLOW_SPECIFIC_REPOSITORIES" and repository.name not in source.allowed(rtype):
        return (f"{rtype} for {_label(fmt, namespace, name)} is allowed only in specific repositories by {via}, "
                f"and {repository.name} is not one of them")
    return None


def check_publish_allowed(s: Session, domain_row: Domain, repository_row: Repository, fmt: str,
                          namespace: str | None, name: str) -> None:
    """Raise AccessDenied when publishing this package into this repository is blocked, by the package's
    origin configuration (publish=BLOCK) or by its package group's effective PUBLISH restriction."""
    namespace, name = _normalise(fmt, namespace, name)
    pkg = s.scalar(select(Package).where(Package.repository_id == repository_row.id, Package.format == fmt,
                                         Package.namespace == namespace, Package.name == name))
    if pkg is not None and pkg.origin_publish == "BLOCK":
        raise AccessDenied(f"Publishing {_label(fmt, namespace, name)} to repository {repository_row.name} is "
                           "blocked by its package origin configuration (publish=BLOCK)")
    reason = _group_verdict(Groups.load(s, domain_row), "PUBLISH", repository_row, fmt, namespace, name)
    if reason:
        raise AccessDenied(f"Publishing to repository {repository_row.name} is not allowed: {reason}")


def check_upstream_allowed(s: Session, domain_row: Domain, repository_row: Repository, fmt: str,
                           namespace: str | None, name: str, *, external: bool) -> None:
    """Raise AccessDenied when `repository_row` may not take new versions of this package from outside:
    from its external connection (`external=True`, group restriction EXTERNAL_UPSTREAM) or from an
    upstream repository (`external=False`, INTERNAL_UPSTREAM). The package's own origin configuration
    (upstream=BLOCK, which is also the default once a version was published internally) is checked too."""
    namespace, name = _normalise(fmt, namespace, name)
    pkg = s.scalar(select(Package).where(Package.repository_id == repository_row.id, Package.format == fmt,
                                         Package.namespace == namespace, Package.name == name))
    if pkg is not None and origin_restrictions(pkg, has_internal_versions(s, pkg))["upstream"] == "BLOCK":
        raise AccessDenied(f"Upstream versions of {_label(fmt, namespace, name)} are blocked in repository "
                           f"{repository_row.name} by its package origin configuration (upstream=BLOCK)")
    rtype = "EXTERNAL_UPSTREAM" if external else "INTERNAL_UPSTREAM"
    reason = _group_verdict(Groups.load(s, domain_row), rtype, repository_row, fmt, namespace, name)
    if reason:
        raise AccessDenied(f"Repository {repository_row.name} may not take this package from upstream: {reason}")


# ---- dependency confusion across a resolution graph -----------------------------------------------

PROTECTION = "dependencyConfusionProtection"


def protection_on(domain_row: Domain) -> bool:
    """Is the domain's dependency-confusion protection on? (On unless turned off.)"""
    return (domain_row.settings or {}).get(PROTECTION, True) is not False


def internal_holders(s: Session, repository_ids: list[int], fmt: str, namespace: str | None,
                     name: str) -> list[int]:
    """The repositories among `repository_ids` that hold versions of the package published to them
    (origin INTERNAL, in any status)."""
    namespace, name = _normalise(fmt, namespace, name)
    q = (select(Package.repository_id).join(PackageVersion, PackageVersion.package_id == Package.id)
         .where(Package.repository_id.in_(repository_ids), Package.format == fmt, Package.namespace == namespace,
                Package.name == name, PackageVersion.origin_type == "INTERNAL").distinct())
    return list(s.scalars(q))


def external_explicitly_allowed(s: Session, domain_row: Domain, path: list[Repository], fmt: str,
                                namespace: str | None, name: str) -> bool:
    """Has someone explicitly allowed external versions of this package on their way to the
    repository asked (`path`: from it to the repository holding the connection)? Either an
    origin configuration upstream=ALLOW on the package in one of those repositories, or its
    package group's EXTERNAL_UPSTREAM set to ALLOW (or ALLOW_SPECIFIC_REPOSITORIES naming the
    connection's repository) by a group other than the root's default."""
    namespace, name = _normalise(fmt, namespace, name)
    if s.scalar(select(Package.id).where(Package.repository_id.in_([r.id for r in path]), Package.format == fmt,
                                         Package.namespace == namespace, Package.name == name,
                                         Package.origin_upstream == "ALLOW").limit(1)) is not None:
        return True
    groups = Groups.load(s, domain_row)
    g, _ = groups.associated(fmt, namespace, name)
    mode, source = groups.effective(g, "EXTERNAL_UPSTREAM")
    if source.row is None:  # the root group's implicit default is no one's decision
        return False
    return mode == "ALLOW" or (mode == "ALLOW_SPECIFIC_REPOSITORIES"
                               and path[-1].name in source.allowed("EXTERNAL_UPSTREAM"))


def confusion_reason(fmt: str, namespace: str | None, name: str, holders: list[str], through: str) -> str:
    namespace, name = _normalise(fmt, namespace, name)
    return (f"External versions of {_label(fmt, namespace, name)} are blocked through repository {through}: "
            f"the package is published internally in {', '.join(sorted(holders))} (dependency-confusion "
            "protection; allow it with an origin configuration upstream=ALLOW or a package group)")
