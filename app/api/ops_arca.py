"""Arca's own operations (what CodeArtifact lacks), routed by Arca's botocore model
(app/arca_model): one handler per operation name, each a service call."""

from __future__ import annotations

from typing import Callable

from app import arca_model
from app.api.context import OpContext
from app.services import domain_settings


def describe_domain_settings(ctx: OpContext) -> dict:
    return {"domainSettings": domain_settings.describe_domain_settings(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.q("domain-owner"))}


def update_domain_settings(ctx: OpContext) -> dict:
    return {"domainSettings": domain_settings.update_domain_settings(
        ctx.arca, ctx.principal, ctx.q("domain", required=True), ctx.body, ctx.q("domain-owner"))}


HANDLERS: dict[str, Callable[[OpContext], dict]] = {
    "DescribeDomainSettings": describe_domain_settings,
    "UpdateDomainSettings": update_domain_settings,
}

# (method, path) -> (operation, handler), the shape of app.api.router.ROUTES
ROUTES = {key: (name, HANDLERS[name]) for key, name in arca_model.http_routes().items()}
