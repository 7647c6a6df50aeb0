"""Who may do what: the domain owner's admins always; everyone else by the domain's and the
repository's permission policies together with their identity policies (inline policies of the
user and of its groups, or of the role a session assumed), IAM's way within one account: an
explicit Deny in any of them wins, an Allow in any of them is enough, else implicit deny.
IAM operations (`iam:...`) have no resource policies: identity policies alone decide them.

Conditions in those policies see the request being authorised: the principal, the client address
and whether it came over TLS (recorded per request by the observability middleware, whatever the
door: /v1, data plane or console), the current time in UTC, and the tags of the resource (read only
when a condition asks for them)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.auth.conditions import Context
from app.auth.policy import IDENTITY, Request, evaluate, load_stored
from app.db.models import Domain, GroupMember, IdentityPolicy, Policy, Repository, Tag
from app.domain.arns import domain_arn, package_arn, repository_arn
from app.domain.errors import AccessDenied
from app.observability.context import info as request_info
from app.services.caches import MISS
from app.services.context import Arca, Principal, RepoRef

# Data-plane actions
READ = "codeartifact:ReadFromRepository"
PUBLISH = "codeartifact:PublishPackageVersion"


def is_allowed(arca: Arca, s: Session, principal: Principal, action: str, domain: Domain,
               repository: Repository | None = None, resource_arn: str | None = None) -> bool:
    if principal.is_admin:
        return True
    if resource_arn is None:
        resource_arn = (repository_arn(arca.region, arca.account, domain.name, repository.name)
                        if repository is not None else domain_arn(arca.region, arca.account, domain.name))
    conds = [Policy.domain_id == domain.id] if repository is None else [
        Policy.repository_id.is_(None), Policy.repository_id == repository.id]
    q = select(Policy.document).where(Policy.domain_id == domain.id)
    if repository is not None:
        q = q.where(or_(*conds))
    else:
        q = q.where(Policy.repository_id.is_(None))
    docs = [load_stored(d) for d in s.scalars(q)] + identity_documents(arca, s, principal)
    if not docs:
        return False
    return evaluate(docs, _request(s, principal, action, resource_arn), arca.account) == "Allow"


def identity_documents(arca: Arca, s: Session, principal: Principal) -> list:
    """The principal's identity policies: its own and its groups' (a user), or its role's (a session).
    Cached like credentials: every change to identity policies or group membership bumps the
    revocation epoch, so each node drops them within a second (the changing node at once)."""
    if principal.role_id is not None:
        key, where = ("role", principal.role_id), IdentityPolicy.role_id == principal.role_id
    elif principal.user_id is not None:
        groups = select(GroupMember.group_id).where(GroupMember.user_id == principal.user_id)
        key = ("user", principal.user_id)
        where = or_(IdentityPolicy.user_id == principal.user_id, IdentityPolicy.group_id.in_(groups))
    else:
        return []
    texts = arca.caches.identity_policies.get(key)
    if texts is MISS:
        generation = arca.caches.identity_generation
        texts = tuple(s.scalars(select(IdentityPolicy.document).where(where).order_by(IdentityPolicy.id)))
        if generation == arca.caches.identity_generation:
            arca.caches.identity_policies.put(key, texts)
    return [load_stored(d, IDENTITY) for d in texts]


def _request(s: Session, principal: Principal, action: str, resource_arn: str) -> Request:
    aliases = (principal.role_arn,) if principal.role_arn else ()
    return Request(principal.arn, action, resource_arn, _context(s, principal, resource_arn), aliases)


def require_iam(arca: Arca, s: Session, principal: Principal | None, action: str, resource_arn: str) -> None:
    """An IAM operation (`iam:CreateUser` on arn:aws:iam::ACCOUNT:user/NAME): administrators, the
    local `arca admin` (principal None), or an Allow in the caller's identity policies and no Deny."""
    if principal is None or principal.is_admin:
        return
    docs = identity_documents(arca, s, principal)
    if evaluate(docs, _request(s, principal, action, resource_arn), arca.account) != "Allow":
        raise AccessDenied(f"User: {principal.arn} is not authorized to perform: {action} on resource: "
                           f"{resource_arn}")


def _context(s: Session, principal: Principal, resource_arn: str) -> Context:
    ri = request_info()
    return Context(principal_arn=principal.arn, username=principal.name,
                   source_ip=ri.source_ip if ri else None,
                   secure_transport=ri.secure_transport if ri else None,
                   now=datetime.now(timezone.utc),
                   resource_tags=lambda: _tags(s, resource_arn),
                   principal_tags=lambda: _tags(s, principal.arn))


def _tags(s: Session, arn: str) -> dict[str, str]:
    return {t.key: t.value for t in s.scalars(select(Tag).where(Tag.resource_arn == arn))}


def require(arca: Arca, s: Session, principal: Principal, action: str, domain: Domain,
            repository: Repository | None = None, resource_arn: str | None = None) -> None:
    if not is_allowed(arca, s, principal, action, domain, repository, resource_arn):
        target = f"{domain.name}/{repository.name}" if repository is not None else domain.name
        raise AccessDenied(f"User {principal.arn} is not authorized to perform {action} on {target}")


def package_resource(arca: Arca, domain: Domain, repository: Repository, fmt: str, namespace: str, name: str) -> str:
    return package_arn(arca.region, arca.account, domain.name, repository.name, fmt, namespace or "", name)


def require_ref(arca: Arca, s: Session, principal: Principal, action: str, ref: RepoRef) -> None:
    """`require` for the repository a data-plane request addresses (admins pay no lookup)."""
    if principal.is_admin:
        return
    require(arca, s, principal, action, s.get(Domain, ref.domain_id), s.get(Repository, ref.repository_id))
