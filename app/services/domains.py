"""Domains and repositories (control-plane use cases), and the one place where an operation's
names become rows: owner, domain, repository and package looked up, the caller's permission checked."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Blob, Domain, Package, Policy, Repository, RepositoryUpstream
from app.domain.arns import domain_arn, repository_arn
from app.domain.errors import AccessDenied, Conflict, NotFound, ValidationError
from app.domain.names import check_domain, check_format, check_repository
from app.services import authz, connections, rows
from app.services.context import Arca, PackageAt, Principal, RepoRef
from app.services.paging import page_args, with_next_token

MAX_UPSTREAMS = 10



def get_domain(s: Session, name: str) -> Domain:
    check_domain(name)
    d = s.scalar(select(Domain).where(Domain.name == name))
    if d is None:
        raise NotFound(f"Domain {name} does not exist", resource_id=name, resource_type="domain")
    return d


def get_repository(s: Session, domain: Domain, name: str) -> Repository:
    check_repository(name)
    r = s.scalar(select(Repository).where(Repository.domain_id == domain.id, Repository.name == name))
    if r is None:
        raise NotFound(f"Repository {name} does not exist in domain {domain.name}",
                       resource_id=name, resource_type="repository")
    return r


def check_owner(arca: Arca, owner: str | None) -> None:
    if owner and owner != arca.account:
        raise NotFound(f"No domain owned by {owner} here", resource_id=owner, resource_type="domain")


def owned_domain(arca: Arca, s: Session, name: str | None, owner: str | None = None) -> Domain:
    """The domain an operation names, after its owner is checked (no permission check: for callers
    whose resource is known only once the domain is loaded)."""
    check_owner(arca, owner)
    return get_domain(s, name)


def domain_for(arca: Arca, s: Session, principal: Principal, action: str, name: str | None,
               owner: str | None = None) -> Domain:
    """The domain an operation names, after its owner and the caller's permission are checked."""
    d = owned_domain(arca, s, name, owner)
    authz.require(arca, s, principal, action, d)
    return d


def repository_for(arca: Arca, s: Session, principal: Principal, action: str, domain: str | None,
                   repository: str | None, owner: str | None = None) -> tuple[Domain, Repository]:
    """The domain and repository an operation names, after the caller's permission is checked."""
    d = owned_domain(arca, s, domain, owner)
    r = get_repository(s, d, repository)
    authz.require(arca, s, principal, action, d, r)
    return d, r


def package_for(arca: Arca, s: Session, principal: Principal, action: str,
                at: PackageAt) -> tuple[Repository, Package]:
    """The repository and package an operation names, after the caller's permission is checked."""
    _d, r = repository_for(arca, s, principal, action, at.domain, at.repository, at.owner)
    return r, rows.get_package(s, r, at.coords)


def ref_for(arca: Arca, domain: str, repository: str, owner: str | None = None) -> RepoRef:
    """The RepoRef of a repository named by an operation (NotFound / ValidationError as the API
    answers them)."""
    with arca.db.read() as s:
        d = owned_domain(arca, s, domain, owner)
        r = get_repository(s, d, repository)
        return RepoRef(d.id, d.name, r.id, r.name, r.external_connection)


# ---- shapes --------------------------------------------------------------------------------

def domain_summary(arca: Arca, d: Domain) -> dict:
    out = {"name": d.name, "owner": arca.account, "arn": domain_arn(arca.region, arca.account, d.name),
           "status": "Active", "createdTime": d.created_at}
    if d.encryption_key:  # the model's minimum length is 1: absent rather than empty
        out["encryptionKey"] = d.encryption_key
    return out


def domain_description(arca: Arca, s: Session, d: Domain) -> dict:
    repo_count = s.scalar(select(func.count()).select_from(Repository).where(Repository.domain_id == d.id))
    size = s.scalar(select(func.coalesce(func.sum(Blob.size), 0)).where(Blob.domain_id == d.id))
    return {**domain_summary(arca, d), "repositoryCount": repo_count, "assetSizeBytes": int(size)}


def repository_summary(arca: Arca, d: Domain, r: Repository) -> dict:
    return {"name": r.name, "administratorAccount": arca.account, "domainName": d.name,
            "domainOwner": arca.account, "arn": repository_arn(arca.region, arca.account, d.name, r.name),
            "description": r.description or "", "createdTime": r.created_at}


def upstream_names(s: Session, r: Repository) -> list[str]:
    rows = s.execute(
        select(Repository.name).join(RepositoryUpstream, RepositoryUpstream.upstream_id == Repository.id)
        .where(RepositoryUpstream.repository_id == r.id).order_by(RepositoryUpstream.position)
    )
    return [n for (n,) in rows]


def repository_description(arca: Arca, s: Session, d: Domain, r: Repository) -> dict:
    ext = []
    if r.external_connection:
        ext = [{"externalConnectionName": r.external_connection,
                "packageFormat": connections.format_of(s, r.external_connection) or "generic",
                "status": "Available"}]
    return {**repository_summary(arca, d, r),
            "upstreams": [{"repositoryName": n} for n in upstream_names(s, r)],
            "externalConnections": ext}


# ---- domains ---------------------------------------------------------------------------------

def create_domain(arca: Arca, principal: Principal, name: str, encryption_key: str | None = None,
                  tags: list | None = None) -> dict:
    if not principal.is_admin:  # a domain has no policy yet that could allow it
        raise AccessDenied(f"User {principal.arn} is not authorized to perform codeartifact:CreateDomain")
    check_domain(name)
    try:
        with arca.db.session() as s:
            if s.scalar(select(Domain.id).where(Domain.name == name)):
                raise Conflict(f"Domain {name} already exists", resource_id=name, resource_type="domain")
            d = Domain(name=name, encryption_key=encryption_key)
            s.add(d)
            s.flush()
            rows.put_tags(s, domain_arn(arca.region, arca.account, name), tags)
            return domain_description(arca, s, d)
    except IntegrityError:
        raise Conflict(f"Domain {name} already exists", resource_id=name, resource_type="domain") from None


def describe_domain(arca: Arca, principal: Principal, name: str, owner: str | None = None) -> dict:
    with arca.db.read() as s:
        d = domain_for(arca, s, principal, "codeartifact:DescribeDomain", name, owner)
        return domain_description(arca, s, d)


def delete_domain(arca: Arca, principal: Principal, name: str, owner: str | None = None) -> dict:
    with arca.db.session() as s:
        d = domain_for(arca, s, principal, "codeartifact:DeleteDomain", name, owner)
        if s.scalar(select(func.count()).select_from(Repository).where(Repository.domain_id == d.id)):
            raise Conflict(f"Domain {d.name} still has repositories; delete them first",
                           resource_id=d.name, resource_type="domain")
        out = domain_description(arca, s, d)
        out["status"] = "Deleted"
        rows.drop_tags(s, out["arn"])
        rows.drop_tags(s, f"arn:aws:codeartifact:{arca.region}:{arca.account}:package-group/{d.name}/", prefix=True)
        s.execute(Policy.__table__.delete().where(Policy.domain_id == d.id))
        s.execute(Blob.__table__.delete().where(Blob.domain_id == d.id))
        s.delete(d)
        return out


def list_domains(arca: Arca, principal: Principal, max_results=None, next_token: str | None = None) -> dict:
    """The domains the caller may describe, by name."""
    limit, offset = page_args(max_results, next_token)
    with arca.db.read() as s:
        found = list(s.scalars(select(Domain).order_by(Domain.name).offset(offset).limit(limit + 1)))
        visible = [d for d in found[:limit]
                   if authz.is_allowed(arca, s, principal, "codeartifact:DescribeDomain", d)]
        out = {"domains": [domain_summary(arca, d) for d in visible]}
    return with_next_token(out, offset, limit, len(found))


# ---- repositories ----------------------------------------------------------------------------

ASSOCIATE = "codeartifact:AssociateWithDownstreamRepository"


def _upstream_targets(arca: Arca, s: Session, principal: Principal, d: Domain, name: str,
                      upstreams: list | None, current: list[int] = ()) -> list[Repository] | None:
    """The repositories an upstream list names, in order, once the list is valid and the caller
    may associate each one that is not already an upstream (None: the list is not being set).

    An upstream is a read grant: whoever reads the downstream repository reads the upstream's
    packages through it. So, as in CodeArtifact, adding one needs
    codeartifact:AssociateWithDownstreamRepository on the upstream repository itself. Keeping,
    reordering or removing an upstream grants nothing new and needs no more than the update."""
    if upstreams is None:
        return None
    names = []
    for u in upstreams:
        n = u.get("repositoryName") if isinstance(u, dict) else None
        if not n:
            raise ValidationError("Each upstream must be {\"repositoryName\": NAME}")
        names.append(n)
    if len(names) > MAX_UPSTREAMS:
        raise ValidationError(f"A repository can have at most {MAX_UPSTREAMS} upstream repositories")
    if len(set(names)) != len(names):
        raise ValidationError("An upstream repository is listed twice")
    targets = []
    for n in names:
        if n == name:
            raise ValidationError(f"Repository {name} cannot be its own upstream")
        targets.append(get_repository(s, d, n))
    for t in targets:
        if t.id not in current:
            authz.require(arca, s, principal, ASSOCIATE, d, t)
    return targets


def _current_upstream_ids(s: Session, r: Repository) -> list[int]:
    return list(s.scalars(select(RepositoryUpstream.upstream_id).where(RepositoryUpstream.repository_id == r.id)))


def _set_upstreams(s: Session, r: Repository, targets: list[Repository] | None) -> None:
    """Replace r's upstream list with `targets` (checked by `_upstream_targets`), refusing cycles."""
    if targets is None:
        return
    # No cycles: walk from each new upstream; reaching r again closes a loop.
    for t in targets:
        path = _path_to(s, t.id, r.id, [t.name])
        if path:
            raise ValidationError("Upstreams would form a cycle: " + " -> ".join([r.name, *path]))
    s.execute(RepositoryUpstream.__table__.delete().where(RepositoryUpstream.repository_id == r.id))
    for pos, t in enumerate(targets):
        s.add(RepositoryUpstream(repository_id=r.id, position=pos, upstream_id=t.id))


def _path_to(s: Session, start_id: int, goal_id: int, trail: list[str], seen=None) -> list[str] | None:
    seen = seen or set()
    if start_id == goal_id:
        return trail
    if start_id in seen:
        return None
    seen.add(start_id)
    found = s.execute(select(RepositoryUpstream.upstream_id, Repository.name)
                      .join(Repository, Repository.id == RepositoryUpstream.upstream_id)
                      .where(RepositoryUpstream.repository_id == start_id).order_by(RepositoryUpstream.position))
    for uid, name in found:
        path = _path_to(s, uid, goal_id, trail + [name], seen)
        if path:
            return path
    return None


def _check_description(description: str | None) -> None:
    if description is not None and len(description) > 1000:
        raise ValidationError("description must be at most 1000 characters")


def create_repository(arca: Arca, principal: Principal, domain: str, name: str, description: str | None = None,
                      upstreams: list | None = None, tags: list | None = None, owner: str | None = None) -> dict:
    with arca.db.session() as s:
        d = domain_for(arca, s, principal, "codeartifact:CreateRepository", domain, owner)
        check_repository(name)
        if s.scalar(select(Repository.id).where(Repository.domain_id == d.id, Repository.name == name)):
            raise Conflict(f"Repository {name} already exists in domain {d.name}",
                           resource_id=name, resource_type="repository")
        _check_description(description)
        targets = _upstream_targets(arca, s, principal, d, name, upstreams)
        r = Repository(domain_id=d.id, name=name, description=description or None)
        s.add(r)
        s.flush()
        _set_upstreams(s, r, targets)
        rows.put_tags(s, repository_arn(arca.region, arca.account, d.name, name), tags)
        s.flush()
        return repository_description(arca, s, d, r)


def describe_repository(arca: Arca, principal: Principal, domain: str, repository: str,
                        owner: str | None = None) -> dict:
    with arca.db.read() as s:
        d, r = repository_for(arca, s, principal, "codeartifact:DescribeRepository", domain, repository, owner)
        return repository_description(arca, s, d, r)


def update_repository(arca: Arca, principal: Principal, domain: str, repository: str, description: str | None,
                      upstreams: list | None, owner: str | None = None) -> dict:
    with arca.db.session() as s:
        d, r = repository_for(arca, s, principal, "codeartifact:UpdateRepository", domain, repository, owner)
        targets = _upstream_targets(arca, s, principal, d, r.name, upstreams, _current_upstream_ids(s, r))
        if description is not None:
            _check_description(description)
            r.description = description
        _set_upstreams(s, r, targets)
        s.flush()
        return repository_description(arca, s, d, r)


def delete_repository(arca: Arca, principal: Principal, domain: str, repository: str,
                      owner: str | None = None) -> dict:
    with arca.db.session() as s:
        d, r = repository_for(arca, s, principal, "codeartifact:DeleteRepository", domain, repository, owner)
        users = s.scalars(select(Repository.name)
                          .join(RepositoryUpstream, RepositoryUpstream.repository_id == Repository.id)
                          .where(RepositoryUpstream.upstream_id == r.id)).all()
        if users:
            raise Conflict(f"Repository {r.name} is an upstream of {', '.join(sorted(users))}; remove it there first",
                           resource_id=r.name, resource_type="repository")
        out = repository_description(arca, s, d, r)
        rows.drop_tags(s, out["arn"])
        s.execute(Package.__table__.delete().where(Package.repository_id == r.id))
        s.delete(r)
        return out


def list_repositories(arca: Arca, principal: Principal, domain: str | None = None, prefix: str | None = None,
                      max_results=None, next_token: str | None = None, owner: str | None = None) -> dict:
    """ListRepositories (every domain), or ListRepositoriesInDomain when `domain` is given: the
    repositories the caller may describe."""
    limit, offset = page_args(max_results, next_token)
    with arca.db.read() as s:
        q = select(Repository, Domain).join(Domain, Domain.id == Repository.domain_id)
        if domain:
            d = domain_for(arca, s, principal, "codeartifact:ListRepositoriesInDomain", domain, owner)
            q = q.where(Repository.domain_id == d.id)
        if prefix:
            q = q.where(Repository.name.startswith(prefix, autoescape=True))
        found = s.execute(q.order_by(Domain.name, Repository.name).offset(offset).limit(limit + 1)).all()
        visible = [(r, d) for r, d in found[:limit]
                   if authz.is_allowed(arca, s, principal, "codeartifact:DescribeRepository", d, r)]
        out = {"repositories": [repository_summary(arca, d, r) for r, d in visible]}
    return with_next_token(out, offset, limit, len(found))


def repository_endpoint(arca: Arca, principal: Principal, domain: str, repository: str, fmt: str,
                        request_base_url: str, owner: str | None = None) -> str:
    """`{base_url}/{domain}/{format}/{repository}/`: the configured base URL, else the request's."""
    fmt = connections.check_served(check_format(fmt))
    with arca.db.read() as s:
        d, r = repository_for(arca, s, principal, "codeartifact:GetRepositoryEndpoint", domain, repository, owner)
        path = f"{d.name}/{fmt}/{r.name}/"
    return f"{arca.settings.base_url or request_base_url.rstrip('/')}/{path}"


def associate_external_connection(arca: Arca, principal: Principal, domain: str, repository: str, name: str,
                                  owner: str | None = None) -> dict:
    with arca.db.session() as s:
        d, r = repository_for(arca, s, principal, "codeartifact:AssociateExternalConnection", domain, repository,
                              owner)
        connections.check_associable(s, name)
        if r.external_connection:
            raise Conflict(f"Repository {r.name} already has the external connection {r.external_connection}",
                           resource_id=r.name, resource_type="repository")
        r.external_connection = name
        s.flush()
        return repository_description(arca, s, d, r)


def disassociate_external_connection(arca: Arca, principal: Principal, domain: str, repository: str, name: str,
                                     owner: str | None = None) -> dict:
    with arca.db.session() as s:
        d, r = repository_for(arca, s, principal, "codeartifact:DisassociateExternalConnection", domain,
                              repository, owner)
        if r.external_connection != name:
            raise NotFound(f"Repository {r.name} has no external connection {name}",
                           resource_id=name, resource_type="repository")
        r.external_connection = None
        s.flush()
        return repository_description(arca, s, d, r)
