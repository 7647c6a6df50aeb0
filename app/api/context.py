"""What an operation handler receives."""

from __future__ import annotations

from dataclasses import dataclass, field


from app.domain.errors import ValidationError
from app.services.context import Arca, Principal


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
    if in_body:
        return ctx.body.get("maxResults"), ctx.body.get("nextToken")
    return ctx.query.get("max-results"), ctx.query.get("next-token")


