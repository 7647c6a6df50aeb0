"""Resource permission policies of domains and repositories (Put/Get/Delete{Domain,Repository}
PermissionsPolicy). A policy is stored only when every element is understood (app/auth/policy.py);
authz.py evaluates them. `repository=None` addresses the domain's own policy."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.policy import parse_policy
from app.db.models import Domain, Policy, Repository
from app.domain.arns import domain_arn, repository_arn
from app.domain.errors import Conflict, NotFound
from app.services.context import Arca, Principal
from app.services.domains import domain_for, repository_for
from app.services.rows import new_revision


def _target(arca: Arca, s: Session, principal: Principal, verb: str, domain: str, repository: str | None,
            owner: str | None) -> tuple[Domain, Repository | None, str]:
    """(domain, repository or None, the policy's resource ARN), after `codeartifact:{verb}...` is checked."""
    if repository is None:
        d = domain_for(arca, s, principal, f"codeartifact:{verb}DomainPermissionsPolicy", domain, owner)
        return d, None, domain_arn(arca.region, arca.account, d.name)
    d, r = repository_for(arca, s, principal, f"codeartifact:{verb}RepositoryPermissionsPolicy", domain,
                          repository, owner)
    return d, r, repository_arn(arca.region, arca.account, d.name, r.name)


def _shape(p: Policy) -> dict:
    return {"resourceArn": p.resource_arn, "revision": p.revision, "document": p.document}


def _check_revision(p: Policy, want: str | None) -> None:
    if want and want != p.revision:
        raise Conflict(f"policyRevision {want} does not match the current revision {p.revision}",
                       resource_id=p.resource_arn, resource_type="policy")


def _find(s: Session, arn: str) -> Policy | None:
    return s.scalar(select(Policy).where(Policy.resource_arn == arn))


def _get(s: Session, arn: str) -> Policy:
    p = _find(s, arn)
    if p is None:
        raise NotFound(f"No permissions policy is set on {arn}", resource_id=arn, resource_type="policy")
    return p


def put_policy(arca: Arca, principal: Principal, domain: str, repository: str | None, document: str,
               revision: str | None = None, owner: str | None = None) -> dict:
    """Set the policy (replacing it only when `revision` is absent or still current)."""
    with arca.db.session() as s:
        d, r, arn = _target(arca, s, principal, "Put", domain, repository, owner)
        parse_policy(document)
        p = _find(s, arn)
        if p is None:
            p = Policy(domain_id=d.id, repository_id=r.id if r else None, resource_arn=arn, document=document,
                       revision=new_revision())
            s.add(p)
        else:
            _check_revision(p, revision)
            p.document, p.revision = document, new_revision()
        s.flush()
        return _shape(p)


def get_policy(arca: Arca, principal: Principal, domain: str, repository: str | None = None,
               owner: str | None = None) -> dict:
    with arca.db.read() as s:
        _d, _r, arn = _target(arca, s, principal, "Get", domain, repository, owner)
        return _shape(_get(s, arn))


def delete_policy(arca: Arca, principal: Principal, domain: str, repository: str | None = None,
                  revision: str | None = None, owner: str | None = None) -> dict:
    """Remove the policy (when `revision` is absent or still current); returns what was removed."""
    with arca.db.session() as s:
        _d, _r, arn = _target(arca, s, principal, "Delete", domain, repository, owner)
        p = _get(s, arn)
        _check_revision(p, revision)
        out = _shape(p)
        s.delete(p)
        return out
