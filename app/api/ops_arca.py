"""Arca's own operations (what CodeArtifact lacks), routed and read by Arca's botocore model
(app/arca_model): one handler per operation name, each a service call. The router checks the
input against the model before a handler runs, as it does for CodeArtifact's."""

from __future__ import annotations

from typing import Callable

from botocore.model import OperationModel

from app import arca_model
from app.api.context import OpContext
from app.services import cleanup, connections, domain_settings


def describe_domain_settings(ctx: OpContext) -> dict:
    return {"domainSettings": domain_settings.describe_domain_settings(
        ctx.arca, ctx.principal, ctx["domain"], ctx.get("domainOwner"))}


def update_domain_settings(ctx: OpContext) -> dict:
    changes = {k: ctx.get(k) for k in ("dependencyConfusionProtection",) if ctx.get(k) is not None}
    return {"domainSettings": domain_settings.update_domain_settings(
        ctx.arca, ctx.principal, ctx["domain"], changes, ctx.get("domainOwner"))}


def create_external_connection(ctx: OpContext) -> dict:
    return {"externalConnection": connections.create_connection(
        ctx.arca, ctx.principal, ctx["name"], ctx["format"], ctx["url"], ctx.get("authentication"),
        ctx.get("allowedUrlPrefixes"))}


def describe_external_connection(ctx: OpContext) -> dict:
    return {"externalConnection": connections.describe_connection(ctx.arca, ctx.principal, ctx["name"])}


def update_external_connection(ctx: OpContext) -> dict:
    return {"externalConnection": connections.update_connection(
        ctx.arca, ctx.principal, ctx["name"], ctx.get("url"), ctx.get("authentication"),
        ctx.get("allowedUrlPrefixes"))}


def delete_external_connection(ctx: OpContext) -> dict:
    return {"externalConnection": connections.delete_connection(ctx.arca, ctx.principal, ctx["name"])}


def list_external_connections(ctx: OpContext) -> dict:
    return connections.list_connections(ctx.arca, ctx.principal)


def _cleanup_policy(verb: str, repository: bool) -> Callable[[OpContext], dict]:
    """{Put,Get,Delete}{Domain,Repository}CleanupPolicy."""
    def handler(ctx: OpContext) -> dict:
        repo = ctx["repository"] if repository else None
        if verb == "Put":
            out = cleanup.put_policy(ctx.arca, ctx.principal, ctx["domain"], repo, ctx["policyDocument"],
                                     ctx.get("domainOwner"))
        elif verb == "Get":
            out = cleanup.get_policy(ctx.arca, ctx.principal, ctx["domain"], repo, ctx.get("domainOwner"))
        else:
            out = cleanup.delete_policy(ctx.arca, ctx.principal, ctx["domain"], repo, ctx.get("domainOwner"))
        return {"cleanupPolicy": out}

    return handler


HANDLERS: dict[str, Callable[[OpContext], dict]] = {
    "DescribeDomainSettings": describe_domain_settings,
    "UpdateDomainSettings": update_domain_settings,
    "CreateExternalConnection": create_external_connection,
    "DescribeExternalConnection": describe_external_connection,
    "UpdateExternalConnection": update_external_connection,
    "DeleteExternalConnection": delete_external_connection,
    "ListExternalConnections": list_external_connections,
    **{f"{verb}{scope}CleanupPolicy": _cleanup_policy(verb, scope == "Repository")
       for verb in ("Put", "Get", "Delete") for scope in ("Domain", "Repository")},
}

# (method, path) -> (operation, handler), the shape of app.api.router.ROUTES
ROUTES = {key: (name, HANDLERS[name]) for key, name in arca_model.http_routes().items()}


def operation(name: str) -> OperationModel:
    return arca_model.service_model().operation_model(name)
