"""Package groups: CodeArtifact's domain-wide origin controls by package-path pattern.

A pattern follows a package path `/{format}/{namespace}/{name}` with unspecified components left
out and a suffix that says how the last one matches (CodeArtifact's definition syntax):

    /*                      every package (the domain's root group; exists implicitly, cannot be deleted)
    /npm/*                  every npm package
    /maven/com.acme~        namespaces starting with `com.acme`
    /npm/acme/*             namespace exactly `acme` (npm scopes may be written `@acme`)
    /npm/acme/ui-~          names starting with `ui-` in namespace `acme`
    /maven/com.acme/lib$    exactly one package
    /pypi//requests$        formats without a namespace leave that component blank

A package belongs to ("is associated with") the most specific group whose pattern matches it;
a group's parent is the most specific other group that contains every package it can match.
Each group has a mode per restriction type (PUBLISH, EXTERNAL_UPSTREAM, INTERNAL_UPSTREAM):
ALLOW, BLOCK, ALLOW_SPECIFIC_REPOSITORIES (only the listed repositories) or INHERIT (the parent's
effective mode). The root group defaults to ALLOW and cannot INHERIT.

Association strength: `*` and `$` matches, and `~` matches that end at a word boundary
(`com.acme~` vs `com.acme` or `com.acme.tools`), are STRONG; a `~` match inside a word
(`com.acme~` vs `com.acmecorp`) is WEAK. Both count as associated.

Enforcement lives in app/services/origins.py: it combines the package's own origin configuration
(PutPackageOriginConfiguration, per repository) with its group's effective mode: both must allow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, unquote

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Domain, PackageGroup, Repository
from app.domain.errors import Conflict, NotFound, ValidationError
from app.domain.names import COORD_RE, FORMATS
from app.domain.pep503 import normalize as pep503
from app.services.rows import drop_tags

ROOT = "/*"
TYPES = ("EXTERNAL_UPSTREAM", "INTERNAL_UPSTREAM", "PUBLISH")
MODES = ("ALLOW", "ALLOW_SPECIFIC_REPOSITORIES", "BLOCK", "INHERIT")
NO_NAMESPACE = ("pypi", "nuget", "ruby", "cargo")
NAMESPACE_REQUIRED = ("maven", "generic", "swift")
MAX_PATTERN = 520
WORD_BREAK = ".-_/@"

# Specificity levels, least to most specific.
L_ROOT, L_FORMAT, L_NS_PREFIX, L_NS, L_NAME_PREFIX, L_NAME = range(6)


@dataclass(frozen=True)
class Pattern:
    text: str  # canonical spelling, as stored
    level: int
    format: str | None = None
    namespace: str | None = None  # a prefix at L_NS_PREFIX, exact from L_NS on
    name: str | None = None  # a prefix at L_NAME_PREFIX, exact at L_NAME

    @property
    def specificity(self) -> tuple[int, int, int]:
        return (self.level, len(self.namespace or ""), len(self.name or ""))

    def match(self, fmt: str, namespace: str, name: str) -> str | None:
        """'STRONG', 'WEAK' or None."""
        if self.level == L_ROOT:
            return "STRONG"
        if fmt != self.format:
            return None
        if self.level == L_FORMAT:
            return "STRONG"
        if self.level == L_NS_PREFIX:
            return _prefix_strength(namespace, self.namespace)
        if namespace != self.namespace:
            return None
        if self.level == L_NS:
            return "STRONG"
        if self.level == L_NAME_PREFIX:
            return _prefix_strength(name, self.name)
        return "STRONG" if name == self.name else None

    def contains(self, other: "Pattern") -> bool:
        """True when every package `other` can match is also matched by self."""
        if self.level == L_ROOT:
            return True
        if other.level == L_ROOT or other.format != self.format or other.level < self.level:
            return False
        if self.level == L_FORMAT:
            return True
        if self.level == L_NS_PREFIX:
            return (other.namespace or "").startswith(self.namespace or "")
        if other.namespace != self.namespace:
            return False
        if self.level == L_NS:
            return True
        if self.level == L_NAME_PREFIX:
            return (other.name or "").startswith(self.name or "")
        return other.name == self.name


def _prefix_strength(value: str, prefix: str) -> str | None:
    if not value.startswith(prefix):
        return None
    if len(value) == len(prefix) or not prefix or value[len(prefix)] in WORD_BREAK or prefix[-1] in WORD_BREAK:
        return "STRONG"
    return "WEAK"


def _component(fmt: str, kind: str, value: str, pattern: str) -> str:
    if not COORD_RE.fullmatch(value) or "*" in value:
        raise ValidationError(f"Invalid package group pattern {pattern!r}: {kind} {value!r} may not contain "
                              "'*', '#', '/' or whitespace")
    if fmt == "npm" and kind == "namespace":
        value = value.lstrip("@")
    if fmt == "pypi" and kind == "name":
        value = pep503(value)
    if fmt == "nuget" and kind == "name":
        value = value.lower()
    return value


def parse_pattern(text: str | None) -> Pattern:
    """Validate a package group definition; raise ValidationError naming the problem."""
    if not text:
        raise ValidationError("packageGroup is required")
    if not 2 <= len(text) <= MAX_PATTERN or any(c.isspace() or not c.isprintable() for c in text):
        raise ValidationError(f"Invalid package group pattern {text!r}: 2-{MAX_PATTERN} characters, "
                              "no whitespace or control characters")
    if not text.startswith("/"):
        raise ValidationError(f"Invalid package group pattern {text!r}: it must start with '/'")
    if text == ROOT:
        return Pattern(ROOT, L_ROOT)
    parts = text[1:].split("/")
    fmt = parts[0]
    if fmt not in FORMATS:
        raise ValidationError(f"Invalid package group pattern {text!r}: unknown format {fmt!r} "
                              f"(one of {', '.join(FORMATS)})")
    if len(parts) == 2 and parts[1] == "*":
        return Pattern(f"/{fmt}/*", L_FORMAT, fmt)
    if len(parts) == 2 and parts[1].endswith("~") and len(parts[1]) > 1:
        if fmt in NO_NAMESPACE:
            raise ValidationError(f"Invalid package group pattern {text!r}: {fmt} packages have no namespace")
        ns = _component(fmt, "namespace", parts[1][:-1], text)
        return Pattern(f"/{fmt}/{ns}~", L_NS_PREFIX, fmt, ns)
    if len(parts) != 3 or not parts[2] or parts[2][-1] not in "*~$":
        raise ValidationError(
            f"Invalid package group pattern {text!r}: use /*, /FORMAT/*, /FORMAT/NAMESPACE~, /FORMAT/NAMESPACE/*, "
            "/FORMAT/NAMESPACE/NAME~ or /FORMAT/NAMESPACE/NAME$ (blank NAMESPACE for formats without one)")
    raw_ns, last = parts[1], parts[2]
    if fmt in NO_NAMESPACE and raw_ns:
        raise ValidationError(f"Invalid package group pattern {text!r}: {fmt} packages have no namespace; "
                              f"leave it blank, e.g. /{fmt}//NAME$")
    ns = _component(fmt, "namespace", raw_ns, text) if raw_ns else ""
    if last == "*":
        if not raw_ns and fmt not in NO_NAMESPACE and fmt != "npm":
            raise ValidationError(f"Invalid package group pattern {text!r}: {fmt} packages need a namespace")
        return Pattern(f"/{fmt}/{ns}/*", L_NS, fmt, ns)
    if fmt in NAMESPACE_REQUIRED and not raw_ns:
        raise ValidationError(f"Invalid package group pattern {text!r}: a {fmt} package name needs its namespace")
    if len(last) < 2 or "*" in last[:-1]:
        raise ValidationError(f"Invalid package group pattern {text!r}: '*' may only follow a '/'")
    name = _component(fmt, "name", last[:-1], text)
    level = L_NAME_PREFIX if last[-1] == "~" else L_NAME
    return Pattern(f"/{fmt}/{ns}/{name}{last[-1]}", level, fmt, ns, name)


# ---- ARNs -----------------------------------------------------------------------------------------

def group_arn(region: str, account: str, domain: str, pattern: str) -> str:
    """CodeArtifact's form: package-group/{domain}{pattern with its specials percent-encoded}."""
    encoded = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(pattern, safe="/@.-_+:=,"))
    return f"arn:aws:codeartifact:{region}:{account}:package-group/{domain}{encoded}"


def pattern_from_arn(rest: str) -> tuple[str, str]:
    """(domain, pattern) from the part of a package-group ARN after `package-group/`."""
    domain, slash, encoded = rest.partition("/")
    return domain, unquote(slash + encoded)


# ---- the groups of a domain --------------------------------------------------------------------

@dataclass
class Group:
    pattern: Pattern
    row: PackageGroup | None  # None for the implicit root group
    created: datetime

    @property
    def text(self) -> str:
        return self.pattern.text

    def mode(self, rtype: str) -> str:
        modes = (self.row.restrictions if self.row is not None else None) or {}
        return modes.get(rtype) or ("ALLOW" if self.pattern.level == L_ROOT else "INHERIT")

    def allowed(self, rtype: str) -> list[str]:
        return sorted(((self.row.allowed_repositories if self.row is not None else None) or {}).get(rtype) or [])


class Groups:
    """All groups of one domain, loaded once: matching, hierarchy and effective modes."""

    def __init__(self, domain: Domain, rows: list[PackageGroup]):
        self.domain = domain
        self.by_text: dict[str, Group] = {}
        for r in rows:
            self.by_text[r.pattern] = Group(parse_pattern(r.pattern), r, r.created_at)
        if ROOT not in self.by_text:
            self.by_text[ROOT] = Group(Pattern(ROOT, L_ROOT), None, domain.created_at)

    @classmethod
    def load(cls, s: Session, domain: Domain) -> "Groups":
        return cls(domain, list(s.scalars(select(PackageGroup).where(PackageGroup.domain_id == domain.id))))

    def sorted(self) -> list[Group]:
        return sorted(self.by_text.values(), key=lambda g: g.text)

    def get(self, text: str) -> Group:
        p = parse_pattern(text)
        g = self.by_text.get(p.text)
        if g is None:
            raise NotFound(f"Package group {p.text} does not exist in domain {self.domain.name}",
                           resource_id=p.text, resource_type="package-group")
        return g

    def parent(self, g: Group | Pattern) -> Group | None:
        p = g.pattern if isinstance(g, Group) else g
        best = None
        for other in self.by_text.values():
            if other.text == p.text or not other.pattern.contains(p):
                continue
            if best is None or other.pattern.specificity > best.pattern.specificity:
                best = other
        return best

    def children(self, g: Group) -> list[Group]:
        return [c for c in self.sorted() if c.text != g.text and (p := self.parent(c)) is not None
                and p.text == g.text]

    def associated(self, fmt: str, namespace: str, name: str) -> tuple[Group, str]:
        """The most specific group matching the package, and the association strength."""
        best, strength = self.by_text[ROOT], "STRONG"
        for g in self.by_text.values():
            hit = g.pattern.match(fmt, namespace, name)
            if hit and g.pattern.specificity > best.pattern.specificity:
                best, strength = g, hit
        return best, strength

    def effective(self, g: Group, rtype: str) -> tuple[str, Group]:
        """(effective mode, the group it comes from) following INHERIT up the hierarchy."""
        seen = set()
        while g.mode(rtype) == "INHERIT" and g.text not in seen:
            seen.add(g.text)
            parent = self.parent(g)
            if parent is None:
                return "ALLOW", g
            g = parent
        return g.mode(rtype), g


# ---- shapes --------------------------------------------------------------------------------------

def reference(arca, domain: Domain, g: Group) -> dict:
    return {"arn": group_arn(arca.region, arca.account, domain.name, g.text), "pattern": g.text}


def description(arca, groups: Groups, g: Group) -> dict:
    d = groups.domain
    restrictions = {}
    for rtype in TYPES:
        mode = g.mode(rtype)
        eff, source = groups.effective(g, rtype)
        r = {"mode": mode, "effectiveMode": eff, "repositoriesCount": len(source.allowed(rtype))}
        if mode == "INHERIT":
            r["inheritedFrom"] = reference(arca, d, source)
        restrictions[rtype] = r
    out = {"arn": group_arn(arca.region, arca.account, d.name, g.text), "pattern": g.text,
           "domainName": d.name, "domainOwner": arca.account, "createdTime": g.created,
           "originConfiguration": {"restrictions": restrictions}}
    if g.row is not None and g.row.contact_info:
        out["contactInfo"] = g.row.contact_info
    if g.row is not None and g.row.description:
        out["description"] = g.row.description
    parent = groups.parent(g)
    if parent is not None:
        out["parent"] = reference(arca, d, parent)
    return out


# ---- writes --------------------------------------------------------------------------------------

def create(s: Session, domain: Domain, pattern: str, description_: str | None, contact: str | None) -> PackageGroup:
    p = parse_pattern(pattern)
    if p.text == ROOT or s.scalar(select(PackageGroup.id).where(PackageGroup.domain_id == domain.id,
                                                                PackageGroup.pattern == p.text)):
        raise Conflict(f"Package group {p.text} already exists in domain {domain.name}",
                       resource_id=p.text, resource_type="package-group")
    try:
        with s.begin_nested():
            row = PackageGroup(domain_id=domain.id, pattern=p.text, description=description_ or None,
                               contact_info=contact or None, restrictions={t: "INHERIT" for t in TYPES},
                               allowed_repositories={})
            s.add(row)
    except IntegrityError:
        raise Conflict(f"Package group {p.text} already exists in domain {domain.name}",
                       resource_id=p.text, resource_type="package-group") from None
    return row


def materialize(s: Session, groups: Groups, g: Group) -> PackageGroup:
    """The row of a group, creating the implicit root group's row on its first change."""
    if g.row is not None:
        return g.row
    try:
        with s.begin_nested():
            row = PackageGroup(domain_id=groups.domain.id, pattern=ROOT, restrictions={t: "ALLOW" for t in TYPES},
                               allowed_repositories={}, created_at=g.created)
            s.add(row)
    except IntegrityError:
        row = s.scalar(select(PackageGroup).where(PackageGroup.domain_id == groups.domain.id,
                                                  PackageGroup.pattern == ROOT))
    g.row = row
    return row


def update_origin(s: Session, groups: Groups, g: Group, restrictions: dict | None, add: list | None,
                  remove: list | None) -> dict:
    """Apply UpdatePackageGroupOriginConfiguration; returns allowedRepositoryUpdates."""
    restrictions = restrictions or {}
    for mode in restrictions.values():
        if mode == "INHERIT" and g.text == ROOT:
            raise ValidationError("The root package group /* has no parent to INHERIT from")
    changes = {}
    for key, items in (("ADDED", add or []), ("REMOVED", remove or [])):
        for item in items:
            # The model leaves both members optional; an entry needs both.
            rtype, repo = item.get("originRestrictionType"), item.get("repositoryName")
            if rtype is None or repo is None:
                raise ValidationError("Each allowed repository needs repositoryName and originRestrictionType "
                                      f"({', '.join(TYPES)})")
            if key == "ADDED" and s.scalar(select(Repository.id).where(
                    Repository.domain_id == groups.domain.id, Repository.name == repo)) is None:
                raise NotFound(f"Repository {repo} does not exist in domain {groups.domain.name}",
                               resource_id=repo, resource_type="repository")
            changes.setdefault(rtype, {}).setdefault(key, []).append(repo)
    row = materialize(s, groups, g)
    modes = dict(row.restrictions or {})
    modes.update(restrictions)
    allowed = {k: list(v) for k, v in (row.allowed_repositories or {}).items()}
    for rtype, ops in changes.items():
        names = set(allowed.get(rtype, []))
        names |= set(ops.get("ADDED", []))
        names -= set(ops.get("REMOVED", []))
        allowed[rtype] = sorted(names)
    row.restrictions, row.allowed_repositories = modes, allowed
    s.flush()
    return {rtype: {k: sorted(set(v)) for k, v in ops.items()} for rtype, ops in changes.items()}


def delete(arca, s: Session, groups: Groups, g: Group) -> dict:
    if g.text == ROOT:
        raise ValidationError("The root package group /* cannot be deleted")
    out = description(arca, groups, g)
    drop_tags(s, out["arn"])
    s.delete(g.row)
    return out
