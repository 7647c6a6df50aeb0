"""What an operation handler receives, and the request parsing handlers share."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.coords import Coordinates
from app.domain.errors import ValidationError
from app.domain.pep503 import normalize as pep503
from app.services.context import Arca, PackageAt, Principal

NAMESPACE_REQUIRED = ("maven", "swift", "generic")


@dataclass
class OpContext:
    """An operation's caller and input. `params` holds the input by member name, read off the request
    and checked against the service model (app/api/inputs.py) before the handler runs: required
    members are there, and every value has its member's type and constraints."""

    arca: Arca
    principal: Principal
    params: dict
    base_url: str

    def __getitem__(self, member: str):
        return self.params[member]

    def get(self, member: str, default=None):
        return self.params.get(member, default)


def page(ctx: OpContext) -> tuple[int | None, str | None]:
    """(maxResults, the cursor of the client's nextToken) of a List operation."""
    return ctx.get("maxResults"), ctx.get("nextToken")


def coords(ctx: OpContext) -> Coordinates:
    """The package the input names (`format`, `namespace`, `package`), in its stored spelling."""
    fmt, namespace, name = ctx["format"], ctx.get("namespace") or "", ctx["package"]
    if fmt in NAMESPACE_REQUIRED and not namespace:
        raise ValidationError(f"namespace is required for {fmt} packages")
    if fmt == "pypi":
        name = pep503(name)
    if fmt == "npm":
        namespace = namespace.lstrip("@")
    return Coordinates(fmt, namespace, name)


def package_at(ctx: OpContext) -> PackageAt:
    return PackageAt(ctx["domain"], ctx["repository"], coords(ctx), ctx.get("domainOwner"))
