"""Domain, repository, token, endpoint, policy and tag operations."""

from __future__ import annotations


from sqlalchemy import func, select

from app.api.context import OpContext, page
from app.auth.policy import parse_policy
from app.db.models import Domain, Policy, Repository, Tag
from app.domain.arns import domain_arn, repository_arn
from app.domain.errors import Conflict, NotFound, ValidationError
from app.domain.names import check_format
from app.services import authz, domains, identity
from app.services.rows import new_revision
from app.services.paging import next_token, page_args


def _domain(ctx: OpContext, s, action: str, name_key: str = "domain") -> Domain:
    domains.check_owner(ctx.arca, ctx.q("domain-owner"))
    d = domains.get_domain(s, ctx.q(name_key, required=True))
    authz.require(ctx.arca, s, ctx.principal, action, d)
    return d


def _repo(ctx: OpContext, s, action: str) -> tuple[Domain, Repository]:
    domains.check_owner(ctx.arca, ctx.q("domain-owner"))
    d = domains.get_domain(s, ctx.q("domain", required=True))
    r = domains.get_repository(s, d, ctx.q("repository", required=True))
    authz.require(ctx.arca, s, ctx.principal, action, d, r)
    return d, r


# ---- domains ---------------------------------------------------------------------------------

def create_domain(ctx: OpContext) -> dict:
    if not ctx.principal.is_admin:
        raise_denied(ctx, "codeartifact:CreateDomain")
    return {"domain": domains.create_domain(ctx.arca, ctx.q("domain", required=True),
                                            ctx.b("encryptionKey"), ctx.b("tags"))}


def raise_denied(ctx: OpContext, action: str):
    from app.domain.errors import AccessDenied

    raise AccessDenied(f"User {ctx.principal.arn} is not authorized to perform {action}")


def describe_domain(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        d = _domain(ctx, s, "codeartifact:DescribeDomain")
        return {"domain": domains.domain_description(ctx.arca, s, d)}


def delete_domain(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        d = _domain(ctx, s, "codeartifact:DeleteDomain")
        return {"domain": domains.delete_domain(ctx.arca, s, d)}


def list_domains(ctx: OpContext) -> dict:
    limit, offset = page_args(*page(ctx, in_body=True))
    with ctx.arca.db.read() as s:
        rows = list(s.scalars(select(Domain).order_by(Domain.name).offset(offset).limit(limit + 1)))
        visible = [d for d in rows[:limit]
                   if authz.is_allowed(ctx.arca, s, ctx.principal, "codeartifact:DescribeDomain", d)]
        out = {"domains": [domains.domain_summary(ctx.arca, d) for d in visible]}
    token = next_token(offset, limit, len(rows))
    if token:
        out["nextToken"] = token
    return out


# ---- repositories ----------------------------------------------------------------------------

def create_repository(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        d = _domain(ctx, s, "codeartifact:CreateRepository")
        return {"repository": domains.create_repository(
            ctx.arca, s, d, ctx.q("repository", required=True), ctx.b("description"),
            ctx.b("upstreams"), ctx.b("tags"))}


def describe_repository(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        d, r = _repo(ctx, s, "codeartifact:DescribeRepository")
        return {"repository": domains.repository_description(ctx.arca, s, d, r)}


def update_repository(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        d, r = _repo(ctx, s, "codeartifact:UpdateRepository")
        return {"repository": domains.update_repository(ctx.arca, s, d, r, ctx.b("description"),
                                                        ctx.b("upstreams"))}


def delete_repository(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        d, r = _repo(ctx, s, "codeartifact:DeleteRepository")
        return {"repository": domains.delete_repository(ctx.arca, s, d, r)}


def _list_repos(ctx: OpContext, domain_name: str | None) -> dict:
    limit, offset = page_args(*page(ctx))
    prefix = ctx.q("repository-prefix")
    with ctx.arca.db.read() as s:
        q = select(Repository, Domain).join(Domain, Domain.id == Repository.domain_id)
        if domain_name:
            d = _domain(ctx, s, "codeartifact:ListRepositoriesInDomain")
            q = q.where(Repository.domain_id == d.id)
        if prefix:
            q = q.where(Repository.name.startswith(prefix, autoescape=True))
        rows = s.execute(q.order_by(Domain.name, Repository.name).offset(offset).limit(limit + 1)).all()
        visible = [(r, d) for r, d in rows[:limit]
                   if authz.is_allowed(ctx.arca, s, ctx.principal, "codeartifact:DescribeRepository", d, r)]
        out = {"repositories": [domains.repository_summary(ctx.arca, d, r) for r, d in visible]}
    token = next_token(offset, limit, len(rows))
    if token:
        out["nextToken"] = token
    return out


def list_repositories(ctx: OpContext) -> dict:
    return _list_repos(ctx, None)


def list_repositories_in_domain(ctx: OpContext) -> dict:
    return _list_repos(ctx, ctx.q("domain", required=True))


def get_repository_endpoint(ctx: OpContext) -> dict:
    fmt = check_format(ctx.q("format", required=True))
    with ctx.arca.db.read() as s:
        d, r = _repo(ctx, s, "codeartifact:GetRepositoryEndpoint")
    base = ctx.arca.settings.base_url or ctx.base_url.rstrip("/")
    return {"repositoryEndpoint": f"{base}/{d.name}/{fmt}/{r.name}/"}


def associate_external_connection(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        d, r = _repo(ctx, s, "codeartifact:AssociateExternalConnection")
        return {"repository": domains.associate_external_connection(
            ctx.arca, s, d, r, ctx.q("external-connection", required=True))}


def disassociate_external_connection(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        d, r = _repo(ctx, s, "codeartifact:DisassociateExternalConnection")
        return {"repository": domains.disassociate_external_connection(
            ctx.arca, s, d, r, ctx.q("external-connection", required=True))}


# ---- tokens ----------------------------------------------------------------------------------

def get_authorization_token(ctx: OpContext) -> dict:
    raw = ctx.q("duration")
    try:
        duration = None if raw is None else int(raw)
    except ValueError:
        raise ValidationError(f"durationSeconds must be an integer, not {raw!r}") from None
    with ctx.arca.db.read() as s:
        d = _domain(ctx, s, "codeartifact:GetAuthorizationToken")
    return identity.issue_token(ctx.arca, ctx.principal, d.name, duration)


# ---- policies --------------------------------------------------------------------------------

def _policy_shape(p: Policy) -> dict:
    return {"resourceArn": p.resource_arn, "revision": p.revision, "document": p.document}


def _put_policy(ctx: OpContext, s, d: Domain, r: Repository | None, arn: str) -> dict:
    document = ctx.b("policyDocument", required=True)
    parse_policy(document)
    p = s.scalar(select(Policy).where(Policy.resource_arn == arn))
    want = ctx.b("policyRevision")
    if p is not None and want and want != p.revision:
        raise Conflict(f"policyRevision {want} does not match the current revision {p.revision}",
                       resource_id=arn, resource_type="policy")
    if p is None:
        p = Policy(domain_id=d.id, repository_id=r.id if r else None, resource_arn=arn, document=document,
                   revision=new_revision())
        s.add(p)
    else:
        p.document, p.revision = document, new_revision()
    s.flush()
    return {"policy": _policy_shape(p)}


def _get_policy(s, arn: str) -> Policy:
    p = s.scalar(select(Policy).where(Policy.resource_arn == arn))
    if p is None:
        raise NotFound(f"No permissions policy is set on {arn}", resource_id=arn, resource_type="policy")
    return p


def _delete_policy(ctx: OpContext, s, arn: str) -> dict:
    p = _get_policy(s, arn)
    want = ctx.q("policy-revision")
    if want and want != p.revision:
        raise Conflict(f"policyRevision {want} does not match the current revision {p.revision}",
                       resource_id=arn, resource_type="policy")
    out = {"policy": _policy_shape(p)}
    s.delete(p)
    return out


def _domain_from_body(ctx: OpContext, s, action: str) -> Domain:
    domains.check_owner(ctx.arca, ctx.b("domainOwner"))
    d = domains.get_domain(s, ctx.b("domain", required=True))
    authz.require(ctx.arca, s, ctx.principal, action, d)
    return d


def put_domain_permissions_policy(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        d = _domain_from_body(ctx, s, "codeartifact:PutDomainPermissionsPolicy")
        return _put_policy(ctx, s, d, None, domain_arn(ctx.arca.region, ctx.arca.account, d.name))


def get_domain_permissions_policy(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        d = _domain(ctx, s, "codeartifact:GetDomainPermissionsPolicy")
        return {"policy": _policy_shape(_get_policy(s, domain_arn(ctx.arca.region, ctx.arca.account, d.name)))}


def delete_domain_permissions_policy(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        d = _domain(ctx, s, "codeartifact:DeleteDomainPermissionsPolicy")
        return _delete_policy(ctx, s, domain_arn(ctx.arca.region, ctx.arca.account, d.name))


def _repo_arn(ctx, d, r) -> str:
    return repository_arn(ctx.arca.region, ctx.arca.account, d.name, r.name)


def put_repository_permissions_policy(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        d, r = _repo(ctx, s, "codeartifact:PutRepositoryPermissionsPolicy")
        return _put_policy(ctx, s, d, r, _repo_arn(ctx, d, r))


def get_repository_permissions_policy(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        d, r = _repo(ctx, s, "codeartifact:GetRepositoryPermissionsPolicy")
        return {"policy": _policy_shape(_get_policy(s, _repo_arn(ctx, d, r)))}


def delete_repository_permissions_policy(ctx: OpContext) -> dict:
    with ctx.arca.db.session() as s:
        d, r = _repo(ctx, s, "codeartifact:DeleteRepositoryPermissionsPolicy")
        return _delete_policy(ctx, s, _repo_arn(ctx, d, r))


# ---- tags ------------------------------------------------------------------------------------

def _tag_target(ctx: OpContext, s) -> str:
    arn = ctx.q("resourceArn", required=True)
    prefix = f"arn:aws:codeartifact:{ctx.arca.region}:{ctx.arca.account}:"
    kind, _, rest = arn.removeprefix(prefix).partition("/")
    if not arn.startswith(prefix) or kind not in ("domain", "repository", "package-group"):
        raise NotFound(f"Resource {arn} does not exist", resource_id=arn, resource_type="resource")
    parts = rest.split("/")
    d = domains.get_domain(s, parts[0])
    if kind == "repository":
        r = domains.get_repository(s, d, parts[1] if len(parts) > 1 else "")
        authz.require(ctx.arca, s, ctx.principal, "codeartifact:TagResource", d, r)
    elif kind == "package-group":
        from app.services import package_groups

        group = package_groups.Groups.load(s, d).get(package_groups.pattern_from_arn(rest)[1])
        arn = package_groups.group_arn(ctx.arca.region, ctx.arca.account, d.name, group.text)
        authz.require(ctx.arca, s, ctx.principal, "codeartifact:TagResource", d, resource_arn=arn)
    else:
        authz.require(ctx.arca, s, ctx.principal, "codeartifact:TagResource", d)
    return arn


def tag_resource(ctx: OpContext) -> dict:
    tags = ctx.b("tags", required=True)
    with ctx.arca.db.session() as s:
        arn = _tag_target(ctx, s)
        existing = s.scalar(select(func.count()).select_from(Tag).where(Tag.resource_arn == arn))
        if existing + len(tags) > 200:
            raise ValidationError("A resource can have at most 200 tags")
        for t in tags:
            s.merge(Tag(resource_arn=arn, key=t["key"], value=t["value"]))
    return {}


def untag_resource(ctx: OpContext) -> dict:
    keys = ctx.b("tagKeys", required=True)
    with ctx.arca.db.session() as s:
        arn = _tag_target(ctx, s)
        s.execute(Tag.__table__.delete().where(Tag.resource_arn == arn, Tag.key.in_(keys)))
    return {}


def list_tags_for_resource(ctx: OpContext) -> dict:
    with ctx.arca.db.read() as s:
        arn = _tag_target(ctx, s)
        rows = s.scalars(select(Tag).where(Tag.resource_arn == arn).order_by(Tag.key))
        return {"tags": [{"key": t.key, "value": t.value} for t in rows]}


