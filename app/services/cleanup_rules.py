"""Cleanup rules: the policy document, checked when stored, and the pure decision of what one
package loses under it (`plan_package`). Nothing here touches the database; app/services/cleanup.py
loads the facts, asks this module, and removes through app/services/packages.py.

A document (JSON):

    {"action": "dispose",                               # default for every rule: dispose | delete
     "keep": ["/npm/acme/core$", {"packages": "/maven/com.acme/*", "versions": "1.*"}],
     "rules": [
       {"packages": "/npm/*", "keepLastVersions": 5},
       {"packages": "/*", "statuses": ["Unfinished", "Unlisted"], "olderThanDays": 30, "action": "delete"},
       {"packages": "/maven/*", "keepSnapshotBuilds": 3},
       {"packages": "/pypi/*", "evictExternalNotDownloadedForDays": 90}]}

`packages` is a package group pattern (app/services/package_groups.py; default `/*`). Each rule has
exactly one of the four criteria. Never removed, whatever the rules say: a version a dist-tag
points at (npm), the newest release of each package (by the format's version order, and the most
recently published one), and versions matched by a `keep` entry."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from packaging.version import InvalidVersion, Version

from app.domain.errors import ValidationError
from app.domain.status import ARCHIVED, DISPOSED, PUBLISHED, UNFINISHED, UNLISTED
from app.formats.maven.paths import SNAPSHOT, parse_filename, version_key as maven_key
from app.formats.npm.names import is_prerelease as npm_prerelease, is_semver, semver_key
from app.services.package_groups import Pattern, parse_pattern

DISPOSE, DELETE = "dispose", "delete"
ACTIONS = (DISPOSE, DELETE)
KINDS = ("keepLastVersions", "olderThanDays", "keepSnapshotBuilds", "evictExternalNotDownloadedForDays")
RANKED = (PUBLISHED, UNLISTED, ARCHIVED)  # what keepLastVersions counts unless `statuses` says otherwise
AGEABLE = (PUBLISHED, UNFINISHED, UNLISTED, ARCHIVED, DISPOSED)
MAX_DOCUMENT = 64 * 1024
MAX_RULES = 100
MAX_DAYS = 36500


@dataclass(frozen=True)
class Keep:
    pattern: Pattern
    versions: str | None = None  # an fnmatch glob over the version string


@dataclass(frozen=True)
class Rule:
    label: str
    pattern: Pattern
    kind: str
    count: int  # N of the criterion (versions, days, builds)
    action: str
    statuses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    keep: tuple[Keep, ...] = ()


# ---- the document -------------------------------------------------------------------------------

def _int(value, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{where} must be a whole number from {low} to {high}")
    return value


def _pattern(value, where: str) -> Pattern:
    if not isinstance(value, str):
        raise ValidationError(f"{where} must be a package group pattern such as /npm/* or /maven/com.acme~")
    try:
        return parse_pattern(value)
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc.message}") from None


def _only(obj: dict, allowed: set, where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ValidationError(f"{where} has unknown member(s) {', '.join(map(repr, unknown))}; "
                              f"allowed: {', '.join(sorted(allowed))}")


def _keep(entry, i: int) -> Keep:
    where = f"keep[{i}]"
    if isinstance(entry, str):
        return Keep(_pattern(entry, where))
    if not isinstance(entry, dict):
        raise ValidationError(f"{where} must be a pattern or an object with packages and versions")
    _only(entry, {"packages", "versions"}, where)
    versions = entry.get("versions")
    if versions is not None and (not isinstance(versions, str) or not 0 < len(versions) <= 255):
        raise ValidationError(f"{where}.versions must be a version glob such as 1.* (up to 255 characters)")
    return Keep(_pattern(entry.get("packages", "/*"), f"{where}.packages"), versions)


def _statuses(value, where: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or any(v not in allowed for v in value):
        raise ValidationError(f"{where} must be a non-empty list of {', '.join(allowed)}")
    return tuple(dict.fromkeys(value))


def _rule(entry, i: int, default_action: str) -> Rule:
    where = f"rules[{i}]"
    if not isinstance(entry, dict):
        raise ValidationError(f"{where} must be an object")
    _only(entry, {"name", "packages", "action", "statuses", *KINDS}, where)
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        raise ValidationError(f"{where} must have exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    label = entry.get("name", f"{where}.{kind}")
    if not isinstance(label, str) or not 0 < len(label) <= 100:
        raise ValidationError(f"{where}.name must be a string of 1 to 100 characters")
    action = entry.get("action", default_action)
    if action not in ACTIONS:
        raise ValidationError(f"{where}.action must be dispose or delete")
    pattern = _pattern(entry.get("packages", "/*"), f"{where}.packages")
    statuses: tuple[str, ...] = ()
    if kind == "keepLastVersions":
        count = _int(entry[kind], f"{where}.keepLastVersions", 1, 100000)
        statuses = _statuses(entry["statuses"], f"{where}.statuses", AGEABLE) if "statuses" in entry else RANKED
    elif kind == "olderThanDays":
        count = _int(entry[kind], f"{where}.olderThanDays", 0, MAX_DAYS)
        if "statuses" not in entry:
            raise ValidationError(f"{where}: olderThanDays needs statuses (which versions age out)")
        statuses = _statuses(entry["statuses"], f"{where}.statuses", AGEABLE)
    else:
        if "statuses" in entry:
            raise ValidationError(f"{where}: statuses applies to keepLastVersions and olderThanDays only")
        if kind == "keepSnapshotBuilds":
            count = _int(entry[kind], f"{where}.keepSnapshotBuilds", 1, 100000)
            if "action" in entry:
                raise ValidationError(f"{where}: keepSnapshotBuilds deletes old builds' files; it takes no action")
        else:
            count = _int(entry[kind], f"{where}.{kind}", 1, MAX_DAYS)
            # A Disposed copy is never fetched again (publish.check_import_open): eviction deletes.
            if entry.get("action", DELETE) != DELETE:
                raise ValidationError(f"{where}: an evicted cached version is deleted so that it can be fetched "
                                      "again; action must be delete")
            action = DELETE
    if action == DISPOSE and statuses == (DISPOSED,):
        raise ValidationError(f"{where}: Disposed versions can only be deleted; use action delete")
    return Rule(label, pattern, kind, count, action, statuses)


def parse_policy(text: str) -> Policy:
    """The policy a document describes; ValidationError naming the first problem."""
    if not isinstance(text, str) or len(text.encode()) > MAX_DOCUMENT:
        raise ValidationError(f"policyDocument must be a JSON text of at most {MAX_DOCUMENT} bytes")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"policyDocument is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValidationError("policyDocument must be a JSON object with rules")
    _only(doc, {"version", "action", "keep", "rules"}, "policyDocument")
    action = doc.get("action", DISPOSE)
    if action not in ACTIONS:
        raise ValidationError("action must be dispose or delete")
    rules, keep = doc.get("rules"), doc.get("keep", [])
    if not isinstance(rules, list) or not rules or len(rules) > MAX_RULES:
        raise ValidationError(f"rules must be a list of 1 to {MAX_RULES} rules")
    if not isinstance(keep, list) or len(keep) > MAX_RULES:
        raise ValidationError(f"keep must be a list of at most {MAX_RULES} entries")
    return Policy(tuple(_rule(r, i, action) for i, r in enumerate(rules)),
                  tuple(_keep(k, i) for i, k in enumerate(keep)))


# ---- one package's plan ---------------------------------------------------------------------------

@dataclass(frozen=True)
class VersionFacts:
    version: str
    status: str
    origin: str
    published: datetime | None
    changed: datetime
    last_download: datetime | None
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackageFacts:
    format: str
    namespace: str
    name: str
    versions: tuple[VersionFacts, ...]
    tagged: frozenset[str] = frozenset()  # versions a dist-tag points at


@dataclass
class Removal:
    version: str
    action: str  # dispose | delete | delete-files
    rule: str
    files: tuple[str, ...] = ()
    protected_by: str | None = field(default=None, compare=False)


def _when(v: VersionFacts) -> datetime:
    return v.published or v.changed


def _is_release(fmt: str, version: str) -> bool:
    if fmt == "maven":
        return not version.endswith(SNAPSHOT)
    if fmt == "npm":
        return not (is_semver(version) and npm_prerelease(version))
    if fmt == "pypi":
        try:
            return not Version(version).is_prerelease
        except InvalidVersion:
            return True
    return True


def _order_key(fmt: str, version: str):
    if fmt == "maven":
        return (1, maven_key(version))
    if fmt == "npm" and is_semver(version):
        return (1, semver_key(version))
    if fmt == "pypi":
        try:
            return (1, Version(version))
        except InvalidVersion:
            pass
    return (0, version)


def protected(pkg: PackageFacts, policy: Policy) -> dict[str, str]:
    """version -> why it is never removed."""
    out: dict[str, str] = {}
    for keep in policy.keep:
        if keep.pattern.match(pkg.format, pkg.namespace, pkg.name):
            for v in pkg.versions:
                if keep.versions is None or fnmatch.fnmatchcase(v.version, keep.versions):
                    out.setdefault(v.version, "keep")
    for v in pkg.tagged:
        out.setdefault(v, "dist-tag")
    releases = [v for v in pkg.versions if v.status == PUBLISHED and _is_release(pkg.format, v.version)]
    if releases:
        by_order = max(releases, key=lambda v: _safe_key(pkg.format, v.version))
        by_time = max(releases, key=_when)
        out.setdefault(by_order.version, "newest release")
        out.setdefault(by_time.version, "newest release")
    return out


def _safe_key(fmt: str, version: str):
    try:
        return _order_key(fmt, version)
    except (TypeError, ValueError):
        return (0, version)


def _versions_to_remove(rule: Rule, pkg: PackageFacts, now: datetime) -> list[VersionFacts]:
    if rule.kind == "keepLastVersions":
        ranked = sorted((v for v in pkg.versions if v.status in rule.statuses), key=_when, reverse=True)
        return ranked[rule.count:]
    if rule.kind == "olderThanDays":
        cutoff = now - timedelta(days=rule.count)
        return [v for v in pkg.versions if v.status in rule.statuses
                and (v.published if v.status == PUBLISHED and v.published else v.changed) < cutoff]
    if rule.kind == "evictExternalNotDownloadedForDays":
        cutoff = now - timedelta(days=rule.count)
        return [v for v in pkg.versions if v.origin == "EXTERNAL" and v.status in (PUBLISHED, UNLISTED)
                and (v.last_download or v.changed) < cutoff]
    return []


def _old_builds(rule: Rule, pkg: PackageFacts, safe: dict[str, str]) -> list[Removal]:
    """keepSnapshotBuilds: per Maven SNAPSHOT version, the files of all but the newest N builds."""
    if pkg.format != "maven":
        return []
    out = []
    for v in pkg.versions:
        if not v.version.endswith(SNAPSHOT) or v.status == DISPOSED or v.version in safe:
            continue
        builds: dict[int, list[str]] = {}
        for name in v.files:
            try:
                parsed = parse_filename(pkg.name, v.version, name)
            except ValidationError:
                continue
            if parsed.build is not None:
                builds.setdefault(parsed.build, []).append(name)
        old = sorted(builds)[:-rule.count] if len(builds) > rule.count else []
        files = tuple(sorted(f for b in old for f in builds[b]))
        if files:
            out.append(Removal(v.version, "delete-files", rule.label, files))
    return out


def plan_package(pkg: PackageFacts, policy: Policy, now: datetime) -> tuple[list[Removal], list[Removal]]:
    """(removals, protected versions a rule would have removed). The first rule that removes a
    version decides its action; a version deleted by one rule is not also disposed by another."""
    rules = [r for r in policy.rules if r.pattern.match(pkg.format, pkg.namespace, pkg.name)]
    if not rules:
        return [], []
    safe = protected(pkg, policy)
    chosen: dict[str, Removal] = {}
    spared: dict[str, Removal] = {}
    for rule in rules:
        # A cached EXTERNAL copy is fetched again when asked for: only an explicit keep holds it.
        guard = {v: why for v, why in safe.items() if why == "keep"} if rule.kind.startswith("evict") else safe
        for v in _versions_to_remove(rule, pkg, now):
            if v.status == DISPOSED and rule.action == DISPOSE:
                continue  # already disposed
            if v.version in guard:
                spared.setdefault(v.version, Removal(v.version, rule.action, rule.label, protected_by=guard[v.version]))
                continue
            current = chosen.get(v.version)
            if current is None or (current.action == DISPOSE and rule.action == DELETE):
                chosen[v.version] = Removal(v.version, rule.action, rule.label)
    for rule in rules:
        if rule.kind == "keepSnapshotBuilds":
            for r in _old_builds(rule, pkg, safe):
                if r.version not in chosen:
                    chosen.setdefault(f"{r.version}#files", r)
    order = {v.version: i for i, v in enumerate(pkg.versions)}
    return (sorted(chosen.values(), key=lambda r: (order.get(r.version, 0), r.action)),
            sorted(spared.values(), key=lambda r: order.get(r.version, 0)))
