"""Domain, repository, token, endpoint, policy and tag operations."""

from __future__ import annotations

from app.api.context import OpContext, page
from app.services import domains, identity, policies, tags


# ---- domains ---------------------------------------------------------------------------------

def create_domain(ctx: OpContext) -> dict:
    return {"domain": domains.create_domain(ctx.arca, ctx.principal, ctx["domain"], ctx.get("encryptionKey"),
                                            ctx.get("tags"))}


def describe_domain(ctx: OpContext) -> dict:
    return {"domain": domains.describe_domain(ctx.arca, ctx.principal, ctx["domain"], ctx.get("domainOwner"))}


def delete_domain(ctx: OpContext) -> dict:
    return {"domain": domains.delete_domain(ctx.arca, ctx.principal, ctx["domain"], ctx.get("domainOwner"))}


def list_domains(ctx: OpContext) -> dict:
    return domains.list_domains(ctx.arca, ctx.principal, *page(ctx))


# ---- repositories ----------------------------------------------------------------------------

def create_repository(ctx: OpContext) -> dict:
    return {"repository": domains.create_repository(
        ctx.arca, ctx.principal, ctx["domain"], ctx["repository"], ctx.get("description"), ctx.get("upstreams"),
        ctx.get("tags"), ctx.get("domainOwner"))}


def describe_repository(ctx: OpContext) -> dict:
    return {"repository": domains.describe_repository(ctx.arca, ctx.principal, ctx["domain"], ctx["repository"],
                                                      ctx.get("domainOwner"))}


def update_repository(ctx: OpContext) -> dict:
    return {"repository": domains.update_repository(
        ctx.arca, ctx.principal, ctx["domain"], ctx["repository"], ctx.get("description"), ctx.get("upstreams"),
        ctx.get("domainOwner"))}


def delete_repository(ctx: OpContext) -> dict:
    return {"repository": domains.delete_repository(ctx.arca, ctx.principal, ctx["domain"], ctx["repository"],
                                                    ctx.get("domainOwner"))}


def list_repositories(ctx: OpContext) -> dict:
    return domains.list_repositories(ctx.arca, ctx.principal, None, ctx.get("repositoryPrefix"), *page(ctx))


def list_repositories_in_domain(ctx: OpContext) -> dict:
    return domains.list_repositories(ctx.arca, ctx.principal, ctx["domain"], ctx.get("repositoryPrefix"),
                                     *page(ctx), owner=ctx.get("domainOwner"))


def get_repository_endpoint(ctx: OpContext) -> dict:
    return {"repositoryEndpoint": domains.repository_endpoint(
        ctx.arca, ctx.principal, ctx["domain"], ctx["repository"], ctx["format"], ctx.base_url,
        ctx.get("domainOwner"))}


def associate_external_connection(ctx: OpContext) -> dict:
    return {"repository": domains.associate_external_connection(
        ctx.arca, ctx.principal, ctx["domain"], ctx["repository"], ctx["externalConnection"],
        ctx.get("domainOwner"))}


def disassociate_external_connection(ctx: OpContext) -> dict:
    return {"repository": domains.disassociate_external_connection(
        ctx.arca, ctx.principal, ctx["domain"], ctx["repository"], ctx["externalConnection"],
        ctx.get("domainOwner"))}


# ---- tokens ----------------------------------------------------------------------------------

def get_authorization_token(ctx: OpContext) -> dict:
    return identity.get_authorization_token(ctx.arca, ctx.principal, ctx["domain"], ctx.get("durationSeconds"),
                                            ctx.get("domainOwner"))


# ---- policies: the domain's (`repository` None) and a repository's -----------------------------

def put_domain_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.put_policy(ctx.arca, ctx.principal, ctx["domain"], None, ctx["policyDocument"],
                                          ctx.get("policyRevision"), ctx.get("domainOwner"))}


def get_domain_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.get_policy(ctx.arca, ctx.principal, ctx["domain"], None, ctx.get("domainOwner"))}


def delete_domain_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.delete_policy(ctx.arca, ctx.principal, ctx["domain"], None,
                                             ctx.get("policyRevision"), ctx.get("domainOwner"))}


def put_repository_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.put_policy(ctx.arca, ctx.principal, ctx["domain"], ctx["repository"],
                                          ctx["policyDocument"], ctx.get("policyRevision"), ctx.get("domainOwner"))}


def get_repository_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.get_policy(ctx.arca, ctx.principal, ctx["domain"], ctx["repository"],
                                          ctx.get("domainOwner"))}


def delete_repository_permissions_policy(ctx: OpContext) -> dict:
    return {"policy": policies.delete_policy(ctx.arca, ctx.principal, ctx["domain"], ctx["repository"],
                                             ctx.get("policyRevision"), ctx.get("domainOwner"))}


# ---- tags ------------------------------------------------------------------------------------

def tag_resource(ctx: OpContext) -> dict:
    tags.tag_resource(ctx.arca, ctx.principal, ctx["resourceArn"], ctx["tags"])
    return {}


def untag_resource(ctx: OpContext) -> dict:
    tags.untag_resource(ctx.arca, ctx.principal, ctx["resourceArn"], ctx["tagKeys"])
    return {}


def list_tags_for_resource(ctx: OpContext) -> dict:
    return {"tags": tags.list_tags(ctx.arca, ctx.principal, ctx["resourceArn"])}
