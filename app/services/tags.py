"""Tags on domains, repositories and package groups (TagResource, UntagResource,
ListTagsForResource), addressed by the resource's ARN."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Tag
from app.domain.errors import NotFound, ValidationError
from app.services import authz, package_groups
from app.services.context import Arca, Principal
from app.services.domains import get_domain, get_repository
from app.services.rows import put_tags

MAX_TAGS = 200
KINDS = ("domain", "repository", "package-group")
# All three operations are authorised as TagResource (CodeArtifact has an action for each).
TAG = "codeartifact:TagResource"


def _resource(arca: Arca, s: Session, principal: Principal, arn: str) -> str:
    """The ARN of an existing taggable resource the caller may tag (a package group's in its
    canonical spelling), else NotFound / AccessDenied."""
    prefix = f"arn:aws:codeartifact:{arca.region}:{arca.account}:"
    kind, _, rest = arn.removeprefix(prefix).partition("/")
    if not arn.startswith(prefix) or kind not in KINDS:
        raise NotFound(f"Resource {arn} does not exist", resource_id=arn, resource_type="resource")
    parts = rest.split("/")
    d = get_domain(s, parts[0])
    if kind == "repository":
        r = get_repository(s, d, parts[1] if len(parts) > 1 else "")
        authz.require(arca, s, principal, TAG, d, r)
    elif kind == "package-group":
        group = package_groups.Groups.load(s, d).get(package_groups.pattern_from_arn(rest)[1])
        arn = package_groups.group_arn(arca.region, arca.account, d.name, group.text)
        authz.require(arca, s, principal, TAG, d, resource_arn=arn)
    else:
        authz.require(arca, s, principal, TAG, d)
    return arn


def tag_resource(arca: Arca, principal: Principal, arn: str, tags: list) -> None:
    with arca.db.session() as s:
        arn = _resource(arca, s, principal, arn)
        existing = s.scalar(select(func.count()).select_from(Tag).where(Tag.resource_arn == arn))
        if existing + len(tags) > MAX_TAGS:
            raise ValidationError(f"A resource can have at most {MAX_TAGS} tags")
        put_tags(s, arn, tags)


def untag_resource(arca: Arca, principal: Principal, arn: str, keys: list[str]) -> None:
    with arca.db.session() as s:
        arn = _resource(arca, s, principal, arn)
        s.execute(Tag.__table__.delete().where(Tag.resource_arn == arn, Tag.key.in_(keys)))


def list_tags(arca: Arca, principal: Principal, arn: str) -> list[dict]:
    with arca.db.read() as s:
        arn = _resource(arca, s, principal, arn)
        return [{"key": t.key, "value": t.value}
                for t in s.scalars(select(Tag).where(Tag.resource_arn == arn).order_by(Tag.key))]
