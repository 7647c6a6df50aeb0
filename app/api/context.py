"""What an operation handler receives, and the request parsing handlers share."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.domain.coords import Coordinates
from app.domain.errors import ValidationError
from app.domain.names import check_coordinate, check_format
from app.domain.pep503 import normalize as pep503
from app.services.context import Arca, PackageAt, Principal

NAMESPACE_REQUIRED = ("maven", "swift", "generic")


@dataclass
class OpContext:
    arca: Arca
    principal: Principal
    query: dict[str, str]
    body: dict
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)

    def q(self, name: str, required: bool = False) -> str | None:
        value = self.query.get(name)
        if required and not value:
            raise ValidationError(f"Missing required parameter: {name}")
        return value or None

    def b(self, name: str, required: bool = False):
        value = self.body.get(name)
        if required and value in (None, "", [], {}):
            raise ValidationError(f"Missing required field: {name}")
        return value


def page(ctx: OpContext, in_body: bool = False) -> tuple[str | None, str | None]:
    """(maxResults, nextToken) as the request sends them."""
    if in_body:
        return ctx.body.get("maxResults"), ctx.body.get("nextToken")
    return ctx.query.get("max-results"), ctx.query.get("next-token")


def coords(ctx: OpContext) -> Coordinates:
    """The package the query names (`format`, `namespace`, `package`), in its stored spelling."""
    fmt = check_format(ctx.q("format", required=True))
    namespace = check_coordinate("namespace", ctx.q("namespace"), required=False) or ""
    name = check_coordinate("package", ctx.q("package", required=True))
    if fmt in NAMESPACE_REQUIRED and not namespace:
        raise ValidationError(f"namespace is required for {fmt} packages")
    if fmt == "pypi":
        name = pep503(name)
    if fmt == "npm":
        namespace = namespace.lstrip("@")
    return Coordinates(fmt, namespace, name)


def package_at(ctx: OpContext) -> PackageAt:
    return PackageAt(ctx.q("domain", required=True), ctx.q("repository", required=True), coords(ctx),
                     ctx.q("domain-owner"))
