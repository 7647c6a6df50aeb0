"""Who may do what: the domain owner's admins always; everyone else by the domain's and the
repository's permission policies (explicit Deny > Allow > implicit deny).

Conditions in those policies see the request being authorised: the principal, the client address
and whether it came over TLS (recorded per request by the observability middleware, whatever the
door: /v1, data plane or console), the current time in UTC, and the tags of the resource (read only
when a condition asks for them)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.auth.conditions import Context
from app.auth.policy import Request, evaluate, load_stored
from app.db.models import Domain, Policy, Repository, Tag
from app.domain.arns import domain_arn, package_arn, repository_arn
from app.domain.errors import AccessDenied
from app.observability.context import info as request_info
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
    docs = [load_stored(d) for d in s.scalars(q)]
    if not docs:
        return False
    req = Request(principal.arn, action, resource_arn, _context(s, principal, resource_arn))
    return evaluate(docs, req, arca.account) == "Allow"


def _context(s: Session, principal: Principal, resource_arn: str) -> Context:
    ri = request_info()
    return Context(principal_arn=principal.arn, username=principal.name,
                   source_ip=ri.source_ip if ri else None,
                   secure_transport=ri.secure_transport if ri else None,
                   now=datetime.now(timezone.utc),
                   resource_tags=lambda: {t.key: t.value for t in
                                          s.scalars(select(Tag).where(Tag.resource_arn == resource_arn))})


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
