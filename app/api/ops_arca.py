"""Arca's own operations (what CodeArtifact lacks), routed and read by Arca's botocore model
(app/arca_model): one handler per operation name, each a service call. The router checks the
input against the model before a handler runs, as it does for CodeArtifact's."""

from __future__ import annotations

from typing import Callable

from botocore.model import OperationModel

from app import arca_model
from app.api.context import OpContext
from app.services import cleanup


def _cleanup_policy(verb: str, repository: bool) -> Callable[[OpContext], dict]:
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
    f"{verb}{scope}CleanupPolicy": _cleanup_policy(verb, scope == "Repository")
    for verb in ("Put", "Get", "Delete") for scope in ("Domain", "Repository")
}

# (method, path) -> (operation, handler), the shape of app.api.router.ROUTES
ROUTES = {key: (name, HANDLERS[name]) for key, name in arca_model.http_routes().items()}


def operation(name: str) -> OperationModel:
    return arca_model.service_model().operation_model(name)
