"""Domain, repository, token, endpoint, policy and tag operations."""

from __future__ import annotations

from app.api.context import OpContext, page
from app.domain.errors import ValidationError
from app.services import domains, identity, policies, tags


# ---- domains ---------------------------------------------------------------------------------

def create_domain(ctx: OpContext) -> dict:
    return {"domain": domains.create_domain(ctx.arca, ctx.principal, ctx.q("domain", required=True),
                                            ctx.b("encryptionKey"), ctx.b("tags"))}


def describe_domain(ctx: OpContext) -> dict:
    return {"domain": domains.describe_domain(ctx.arca, ctx.principal, ctx.q("domain", required=True),
                                              ctx.q("domain-owner"))}


def delete_domain(ctx: OpContext) -> dict:
    return {"domain": domains.delete_domain(ctx.arca, ctx.principal, ctx.q("domain", required=True),
                                            ctx.q("domain-owner"))}


def list_domains(ctx: OpContext) -> dict:
    return domains.list_domains(ctx.arca, ctx.principal, *page(ctx, in_body=True))


# ---- repositories ----------------------------------------------------------------------------

def create_repository(ctx: OpContext) -> dict:
    return {"repository": domains.create_repository(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("repository", required=True),
        ctx.b("description"), ctx.b("upstreams"), ctx.b("tags"), ctx.q("domain-owner"))}


def describe_repository(ctx: OpContext) -> dict:
    return {"repository": domains.describe_repository(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("repository", required=True),
        ctx.q("domain-owner"))}


def update_repository(ctx: OpContext) -> dict:
    return {"repository": domains.update_repository(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("repository", required=True),
        ctx.b("description"), ctx.b("upstreams"), ctx.q("domain-owner"))}


def delete_repository(ctx: OpContext) -> dict:
    return {"repository": domains.delete_repository(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("repository", required=True),
        ctx.q("domain-owner"))}


def list_repositories(ctx: OpContext) -> dict:
    return domains.list_repositories(ctx.arca, ctx.principal, None, ctx.q("repository-prefix"), *page(ctx))


def list_repositories_in_domain(ctx: OpContext) -> dict:
    return domains.list_repositories(ctx.arca, ctx.principal, ctx.q("domain", required=True),
                                     ctx.q("repository-prefix"), *page(ctx), owner=ctx.q("domain-owner"))


def get_repository_endpoint(ctx: OpContext) -> dict:
    fmt = ctx.q("format", required=True)
    return {"repositoryEndpoint": domains.repository_endpoint(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("repository", required=True), fmt,
        ctx.base_url, ctx.q("domain-owner"))}


def associate_external_connection(ctx: OpContext) -> dict:
    return {"repository": domains.associate_external_connection(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("repository", required=True),
        ctx.q("external-connection", required=True), ctx.q("domain-owner"))}


def disassociate_external_connection(ctx: OpContext) -> dict:
    return {"repository": domains.disassociate_external_connection(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("repository", required=True),
        ctx.q("external-connection", required=True), ctx.q("domain-owner"))}


# ---- tokens ----------------------------------------------------------------------------------

def get_authorization_token(ctx: OpContext) -> dict:
    raw = ctx.q("duration")
    try:
        duration = None if raw is None else int(raw)
    except ValueError:
        raise ValidationError(f"durationSeconds must be an integer, not {raw!r}") from None
    return identity.get_authorization_token(ctx.arca, ctx.principal, ctx.q("domain", required=True), duration,
                                            ctx.q("domain-owner"))


# ---- policies: the domain's (`repository` None) and a repository's -----------------------------

def put_domain_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.put_policy(ctx.arca, ctx.principal, ctx.b("domain", required=True), None,
                                          ctx.b("policyDocument", required=True), ctx.b("policyRevision"),
                                          ctx.b("domainOwner"))}


def get_domain_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.get_policy(ctx.arca, ctx.principal, ctx.q("domain", required=True), None,
                                          ctx.q("domain-owner"))}


def delete_domain_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.delete_policy(ctx.arca, ctx.principal, ctx.q("domain", required=True), None,
                                             ctx.q("policy-revision"), ctx.q("domain-owner"))}


def put_repository_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.put_policy(ctx.arca, ctx.principal, ctx.q("domain", required=True),
                                          ctx.q("repository", required=True), ctx.b("policyDocument", required=True),
                                          ctx.b("policyRevision"), ctx.q("domain-owner"))}


def get_repository_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.get_policy(ctx.arca, ctx.principal, ctx.q("domain", required=True),
                                          ctx.q("repository", required=True), ctx.q("domain-owner"))}


def delete_repository_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.delete_policy(ctx.arca, ctx.principal, ctx.q("domain", required=True),
                                             ctx.q("repository", required=True), ctx.q("policy-revision"),
                                             ctx.q("domain-owner"))}


# ---- tags ------------------------------------------------------------------------------------

def tag_resource(ctx: OpContext) -> dict:
    new = ctx.b("tags", required=True)
    tags.tag_resource(ctx.arca, ctx.principal, ctx.q("resourceArn", required=True), new)
    return {}


def untag_resource(ctx: OpContext) -> dict:
    keys = ctx.b("tagKeys", required=True)
    tags.untag_resource(ctx.arca, ctx.principal, ctx.q("resourceArn", required=True), keys)
    return {}


def list_tags_for_resource(ctx: OpContext) -> dict:
    return {"tags": tags.list_tags(ctx.arca, ctx.principal, ctx.q("resourceArn", required=True))}
