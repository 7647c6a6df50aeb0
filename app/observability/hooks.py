"""Audit rows and package events written by the same flush, in the same transaction, as the change.

A `before_flush` hook looks at what the unit of work is about to write. Services stay unaware of
auditing; nothing a service changes through the session can escape the trail or the outbox."""

from __future__ import annotations

import copy
import uuid
from datetime import timezone

from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session

from app.db.models import (AccessKey, Asset, AuditEvent, CleanupPolicy, Delivery, Domain, ExternalConnection, Group,
                           GroupMember, IdentityPolicy, OidcProvider, OutboxEvent, Package, PackageGroup,
                           PackageVersion, Policy, Repository, RepositoryUpstream, Role, RoleSession, User, Webhook,
                           utcnow)
from app.domain.status import DISPOSED
from app.observability import context, metrics

_installed = False
CLI_PRINCIPAL = "local:arca-admin"
DETAIL_TYPE = "CodeArtifact Package Version State Change"


def install(account: str, region: str) -> None:
    global _installed
    if _installed:
        return
    _installed = True
    event.listen(Session, "before_flush", lambda s, ctx, objs: _before_flush(s, account, region))


def _changed(obj, *attrs: str) -> dict:
    state = inspect(obj)
    out = {}
    for a in attrs:
        hist = state.attrs[a].history
        if hist.has_changes():
            out[a] = {"from": hist.deleted[0] if hist.deleted else None,
                      "to": hist.added[0] if hist.added else None}
    return out


def _audit(s: Session, action: str, rtype: str, resource: str, domain: str | None, **details) -> None:
    ri = context.info()
    if ri is not None and ri.operation:
        details.setdefault("operation", ri.operation)
    s.add(AuditEvent(at=utcnow(), principal=(ri.principal if ri and ri.principal else
                                             (None if ri else CLI_PRINCIPAL)),
                     action=action, resource_type=rtype, resource=resource, domain=domain,
                     source_ip=ri.source_ip if ri else None, request_id=ri.request_id if ri else None,
                     details={k: _jsonable(v) for k, v in details.items()}))


def _jsonable(v):
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _domain_name(s: Session, domain_id: int | None) -> str | None:
    d = s.get(Domain, domain_id) if domain_id else None
    return d.name if d else None


def _version_place(s: Session, v: PackageVersion):
    pkg = s.get(Package, v.package_id)
    repo = s.get(Repository, pkg.repository_id) if pkg else None
    dom = s.get(Domain, repo.domain_id) if repo else None
    return pkg, repo, dom


def _coord(pkg: Package) -> str:
    return f"{pkg.format}/{pkg.namespace + '/' if pkg.namespace else ''}{pkg.name}"


def _before_flush(s: Session, account: str, region: str) -> None:
    with s.no_autoflush:
        # Versions before their assets: an asset added with its version belongs to the Created event.
        for obj in sorted(s.new, key=lambda o: not isinstance(o, PackageVersion)):
            _on_new(s, obj, account, region)
        for obj in list(s.dirty):
            if s.is_modified(obj, include_collections=False):
                _on_dirty(s, obj, account, region)
        for obj in list(s.deleted):
            _on_deleted(s, obj, account, region)
        _refresh_events(s)


def _on_new(s, obj, account, region):
    if isinstance(obj, Asset):
        v = s.get(PackageVersion, obj.package_version_id)
        pkg = s.get(Package, v.package_id) if v is not None else None
        metrics.UPLOADS.labels(pkg.format if pkg is not None else "-").inc()
        _asset_changed(s, v, "assetsAdded", account, region)
    elif isinstance(obj, Domain):
        _audit(s, "CreateDomain", "domain", obj.name, obj.name)
    elif isinstance(obj, Repository):
        dn = _domain_name(s, obj.domain_id)
        _audit(s, "CreateRepository", "repository", f"{dn}/{obj.name}", dn, description=obj.description)
    elif isinstance(obj, RepositoryUpstream):
        repo = s.get(Repository, obj.repository_id)
        up = s.get(Repository, obj.upstream_id)
        if repo is not None:
            dn = _domain_name(s, repo.domain_id)
            _audit(s, "AddUpstream", "repository", f"{dn}/{repo.name}", dn, upstream=up.name if up else None,
                   position=obj.position)
    elif isinstance(obj, Policy):
        _audit(s, "PutPermissionsPolicy", "policy", obj.resource_arn, _domain_name(s, obj.domain_id))
    elif isinstance(obj, CleanupPolicy):
        _audit(s, "PutCleanupPolicy", "cleanup-policy", obj.resource_arn, _domain_name(s, obj.domain_id))
    elif isinstance(obj, User):
        _audit(s, "CreateUser", "user", obj.name, None, admin=bool(obj.is_admin))
    elif isinstance(obj, AccessKey):
        user = s.get(User, obj.user_id)
        _audit(s, "CreateAccessKey", "access-key", obj.access_key_id, None, user=user.name if user else None)
    elif isinstance(obj, Webhook):
        _audit(s, "CreateWebhook", "webhook", obj.url, _domain_name(s, obj.domain_id))
    elif isinstance(obj, PackageGroup):
        _audit(s, "CreatePackageGroup", "package-group", obj.pattern, _domain_name(s, obj.domain_id))
    elif isinstance(obj, ExternalConnection):
        _audit(s, "CreateExternalConnection", "external-connection", obj.name, None, format=obj.format, url=obj.url,
               authentication=(obj.auth or {}).get("type"))  # never the sealed secret
    elif _audit_identity(s, obj, created=True):
        return
    elif isinstance(obj, PackageVersion):
        pkg, repo, dom = _version_place(s, obj)
        if pkg is None:
            return
        _audit(s, "CreatePackageVersion", "package-version", f"{dom.name}/{repo.name}/{_coord(pkg)}@{obj.version}",
               dom.name, status=obj.status, origin=obj.origin_type)
        _event(s, dom, repo, pkg, obj, "Created", account, region)


def _on_dirty(s, obj, account, region):
    if isinstance(obj, Asset):
        if _changed(obj, "blob_id"):
            _asset_changed(s, s.get(PackageVersion, obj.package_version_id), "assetsUpdated", account, region)
    elif isinstance(obj, PackageVersion):
        change = _changed(obj, "status")
        if change:
            pkg, repo, dom = _version_place(s, obj)
            _audit(s, "UpdatePackageVersionStatus", "package-version",
                   f"{dom.name}/{repo.name}/{_coord(pkg)}@{obj.version}", dom.name, **change)
            _event(s, dom, repo, pkg, obj, "Updated", account, region, status_changed=True)
    elif isinstance(obj, Package):
        change = _changed(obj, "origin_publish", "origin_upstream")
        if change:
            repo = s.get(Repository, obj.repository_id)
            dn = _domain_name(s, repo.domain_id)
            _audit(s, "PutPackageOriginConfiguration", "package", f"{dn}/{repo.name}/{_coord(obj)}", dn, **change)
    elif isinstance(obj, Repository):
        change = _changed(obj, "description", "external_connection")
        if change:
            dn = _domain_name(s, obj.domain_id)
            _audit(s, "UpdateRepository", "repository", f"{dn}/{obj.name}", dn, **change)
    elif isinstance(obj, Policy):
        if _changed(obj, "document"):
            _audit(s, "PutPermissionsPolicy", "policy", obj.resource_arn, _domain_name(s, obj.domain_id))
    elif isinstance(obj, CleanupPolicy):
        if _changed(obj, "document"):
            _audit(s, "PutCleanupPolicy", "cleanup-policy", obj.resource_arn, _domain_name(s, obj.domain_id))
    elif isinstance(obj, PackageGroup):
        change = _changed(obj, "description", "contact_info", "restrictions", "allowed_repositories")
        if change:
            _audit(s, "UpdatePackageGroup", "package-group", obj.pattern, _domain_name(s, obj.domain_id),
                   **change)
    elif isinstance(obj, AccessKey):
        change = _changed(obj, "status")
        if change:
            _audit(s, "UpdateAccessKey", "access-key", obj.access_key_id, None, **change)
    elif isinstance(obj, ExternalConnection):
        change = _changed(obj, "url", "allowed_prefixes", "auth")
        if _changed(obj, "secret"):
            change["secret"] = "changed"  # never the secret, sealed or not
        if change:
            _audit(s, "UpdateExternalConnection", "external-connection", obj.name, None, **change)
    elif isinstance(obj, User):
        change = _changed(obj, "is_admin", "tokens_valid_after")
        if _changed(obj, "password_hash"):
            change["password"] = "changed"  # never the hash itself
        if change:
            _audit(s, "RevokeTokens" if "tokens_valid_after" in change else "UpdateUser", "user", obj.name, None,
                   **change)
    elif isinstance(obj, IdentityPolicy) and _changed(obj, "document"):
        kind, owner = _policy_owner(s, obj)
        _audit(s, f"Put{kind.title()}Policy", kind, owner, None, policyName=obj.name)
    elif isinstance(obj, Role):
        change = _changed(obj, "trust_policy", "tokens_valid_after")
        if change:
            _audit(s, "RevokeTokens" if "tokens_valid_after" in change else "UpdateAssumeRolePolicy", "role",
                   obj.name, None)


def _on_deleted(s, obj, account, region):
    if isinstance(obj, Asset):
        v = s.get(PackageVersion, obj.package_version_id)
        if v is None or v in s.deleted:  # a deleted version's event and audit row say it all
            return
        _asset_changed(s, v, "assetsRemoved", account, region)
        if v.status != DISPOSED:  # a single file removed (cleanup's old SNAPSHOT builds), not a disposal
            pkg, repo, dom = _version_place(s, v)
            if pkg is not None and repo is not None:
                _audit(s, "DeletePackageVersionAsset", "asset",
                       f"{dom.name}/{repo.name}/{_coord(pkg)}@{v.version}/{obj.name}", dom.name)
                metrics.FILES_REMOVED.labels(pkg.format).inc()
    elif isinstance(obj, Domain):
        _audit(s, "DeleteDomain", "domain", obj.name, obj.name)
    elif isinstance(obj, Repository):
        dn = _domain_name(s, obj.domain_id)
        _audit(s, "DeleteRepository", "repository", f"{dn}/{obj.name}", dn)
    elif isinstance(obj, Policy):
        _audit(s, "DeletePermissionsPolicy", "policy", obj.resource_arn, _domain_name(s, obj.domain_id))
    elif isinstance(obj, CleanupPolicy):
        _audit(s, "DeleteCleanupPolicy", "cleanup-policy", obj.resource_arn, _domain_name(s, obj.domain_id))
    elif isinstance(obj, Package):
        repo = s.get(Repository, obj.repository_id)
        if repo is not None:
            dn = _domain_name(s, repo.domain_id)
            _audit(s, "DeletePackage", "package", f"{dn}/{repo.name}/{_coord(obj)}", dn)
    elif isinstance(obj, PackageVersion):
        pkg, repo, dom = _version_place(s, obj)
        if pkg is None or repo is None:
            return
        _audit(s, "DeletePackageVersion", "package-version", f"{dom.name}/{repo.name}/{_coord(pkg)}@{obj.version}",
               dom.name, status=obj.status)
        _event(s, dom, repo, pkg, obj, "Deleted", account, region, status_changed=True)
    elif isinstance(obj, Webhook):
        _audit(s, "DeleteWebhook", "webhook", obj.url, _domain_name(s, obj.domain_id))
    elif isinstance(obj, PackageGroup):
        _audit(s, "DeletePackageGroup", "package-group", obj.pattern, _domain_name(s, obj.domain_id))
    elif isinstance(obj, AccessKey):
        _audit(s, "DeleteAccessKey", "access-key", obj.access_key_id, None)
    elif isinstance(obj, ExternalConnection):
        _audit(s, "DeleteExternalConnection", "external-connection", obj.name, None)
    elif isinstance(obj, User):
        _audit(s, "DeleteUser", "user", obj.name, None)
    else:
        _audit_identity(s, obj, created=False)


def _policy_owner(s: Session, p: IdentityPolicy) -> tuple[str, str]:
    for kind, model, key in (("user", User, p.user_id), ("group", Group, p.group_id), ("role", Role, p.role_id)):
        if key is not None:
            row = s.get(model, key)
            return kind, row.name if row is not None else "?"
    return "user", "?"


def _audit_identity(s: Session, obj, created: bool) -> bool:
    """Audit rows for identity objects created or deleted (never a secret: a new role session names
    its key id only). False: not an identity object."""
    verb = "Create" if created else "Delete"
    if isinstance(obj, Group):
        _audit(s, f"{verb}Group", "group", obj.name, None)
    elif isinstance(obj, GroupMember):
        g, u = s.get(Group, obj.group_id), s.get(User, obj.user_id)
        _audit(s, "AddUserToGroup" if created else "RemoveUserFromGroup", "group", g.name if g else "?", None,
               user=u.name if u else None)
    elif isinstance(obj, IdentityPolicy):
        kind, owner = _policy_owner(s, obj)
        _audit(s, f"{'Put' if created else 'Delete'}{kind.title()}Policy", kind, owner, None, policyName=obj.name)
    elif isinstance(obj, Role):
        _audit(s, f"{verb}Role", "role", obj.name, None)
    elif isinstance(obj, OidcProvider):
        _audit(s, f"{verb}OpenIDConnectProvider", "oidc-provider", obj.url, None,
               **({"audiences": list(obj.client_ids)} if created else {}))
    elif isinstance(obj, RoleSession) and created:
        role = s.get(Role, obj.role_id)
        _audit(s, "AssumeRoleWithWebIdentity", "role", role.name if role else "?", None, subject=obj.subject,
               provider=obj.provider, sessionName=obj.session_name, accessKeyId=obj.access_key_id,
               expires=obj.expires_at)
    else:
        return False
    return True


# ---- package events (EventBridge envelope, CodeArtifact detail) -----------------------------------

def _next_sequence(s: Session, pkg: Package) -> int:
    pending = s.info.setdefault("arca_seq", {})
    if pkg.id not in pending:
        pending[pkg.id] = s.scalar(select(func.coalesce(func.max(OutboxEvent.sequence_number), 0))
                                   .where(OutboxEvent.package_id == pkg.id)) or 0
    pending[pkg.id] += 1
    return pending[pkg.id]


def _event(s, dom: Domain, repo: Repository, pkg: Package, v: PackageVersion, operation: str,
           account: str, region: str, status_changed: bool = False) -> OutboxEvent:
    state = "Deleted" if operation == "Deleted" else v.status
    seq = _next_sequence(s, pkg)
    dedup = uuid.uuid4().hex
    now = utcnow().astimezone(timezone.utc)
    detail = {
        "domainName": dom.name, "domainOwner": account, "repositoryName": repo.name,
        "packageFormat": pkg.format, "packageNamespace": pkg.namespace or None, "packageName": pkg.name,
        "packageVersion": v.version, "packageVersionState": state, "packageVersionRevision": v.revision,
        "changes": {"assetsAdded": 0, "assetsRemoved": 0, "assetsUpdated": 0, "metadataUpdated": False,
                    "statusChanged": status_changed},
        "operationType": operation, "sequenceNumber": seq, "eventDeduplicationId": dedup,
    }
    envelope = {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": DETAIL_TYPE, "source": "aws.codeartifact",
        "account": account, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
        "resources": [f"arn:aws:codeartifact:{region}:{account}:package/{dom.name}/{repo.name}/{pkg.format}/"
                      f"{pkg.namespace or ''}/{pkg.name}"],
        "detail": detail,
    }
    ev = OutboxEvent(domain_id=dom.id, package_id=pkg.id, sequence_number=seq, dedup_id=dedup, payload=envelope,
                     created_at=now)
    s.add(ev)
    if operation != "Deleted":
        s.info.setdefault(_EVENTS, {})[v] = ev
    if operation != "Updated" or status_changed:
        metrics.STATUS_CHANGES.labels(pkg.format, state).inc()
    if state == "Published" and (operation == "Created" or status_changed):
        metrics.PUBLISHES.labels(pkg.format).inc()
    for hook in s.scalars(select(Webhook).where(Webhook.domain_id == dom.id)):
        f = hook.filters or {}
        if f.get("format") and f["format"] != pkg.format:
            continue
        if f.get("repository") and f["repository"] != repo.name:
            continue
        if f.get("namespace") and f["namespace"] != (pkg.namespace or ""):
            continue
        if f.get("package") and f["package"] != pkg.name:
            continue
        s.add(Delivery(event=ev, webhook_id=hook.id, status="pending", attempts=0, next_attempt_at=now))
    return ev


# The latest event of each version in this session's transaction: asset changes made by the same
# transaction are counted in it (one event per change of a version, as CodeArtifact sends), and it
# carries the version's final revision and state.
_EVENTS = "arca_events"


def _asset_changed(s: Session, v: PackageVersion | None, change: str, account: str, region: str) -> None:
    if v is None or v in s.deleted:
        return
    ev = s.info.get(_EVENTS, {}).get(v)
    if ev is None or ev not in s:
        pkg, repo, dom = _version_place(s, v)
        if pkg is None or repo is None:
            return
        ev = _event(s, dom, repo, pkg, v, "Updated", account, region)
    payload = copy.deepcopy(ev.payload)
    payload["detail"]["changes"][change] += 1
    ev.payload = payload


def _refresh_events(s: Session) -> None:
    """Events of this transaction show their version as it is now (assets change the revision)."""
    for v, ev in list(s.info.get(_EVENTS, {}).items()):
        if ev not in s or v in s.deleted:
            continue
        detail = ev.payload["detail"]
        if (detail["packageVersionRevision"], detail["packageVersionState"]) != (v.revision, v.status):
            payload = copy.deepcopy(ev.payload)
            payload["detail"].update(packageVersionRevision=v.revision, packageVersionState=v.status)
            ev.payload = payload
