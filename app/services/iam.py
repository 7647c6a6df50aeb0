"""IAM's users, access keys, groups, tags and inline identity policies: one function per
operation, called by the IAM door (`POST /`, app/api/iam.py), `arca admin` on the server host
(principal None: the local administrator) and the console's Administration area.

Results are IAM's response shapes (botocore's `iam` model), so every door renders the same facts.
Deleting a user or a group takes its keys, inline policies and memberships with it (IAM makes
you delete those first; Arca does it for you). Secrets are sealed (app/auth/secretbox.py) and
returned once, by CreateAccessKey."""

from __future__ import annotations

import secrets
import string
import time
from datetime import datetime, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.policy import IDENTITY, parse_policy
from app.db.models import AccessKey, Group, GroupMember, IdentityPolicy, Role, Tag, User
from app.domain.arns import group_arn, role_arn, user_arn
from app.domain.errors import AlreadyExists, Conflict, MalformedPolicy, NotFound, ValidationError
from app.services import authz, revocation
from app.services.context import Arca, Principal
from app.services.identity import key_context

NAME_CHARS = "+=,.@_-"
MAX_ITEMS = 100
_ALPHABET = string.ascii_uppercase + string.digits


def new_key_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(16))


def new_secret() -> str:
    return secrets.token_urlsafe(30)[:40]


def check_name(name: str, what: str = "user", limit: int = 64) -> None:
    if not name or len(name) > limit or not all(c.isalnum() or c in NAME_CHARS for c in name):
        raise ValidationError(f"Invalid {what} name {name!r}: 1-{limit} letters, digits or {NAME_CHARS}")


def _id(prefix: str, n: int) -> str:
    return f"{prefix}{n:016d}"


def user_shape(arca: Arca, u: User) -> dict:
    return {"Path": "/", "UserName": u.name, "UserId": _id("AIDA", u.id), "Arn": user_arn(arca.account, u.name),
            "CreateDate": u.created_at}


def group_shape(arca: Arca, g: Group) -> dict:
    return {"Path": g.path, "GroupName": g.name, "GroupId": _id("AGPA", g.id), "Arn": group_arn(arca.account, g.name),
            "CreateDate": g.created_at}


def named(s: Session, model: type, kind: str, name: str):
    """The user, group or role called `name`; IAM's NoSuchEntity (NotFound) when there is none."""
    row = s.scalar(select(model).where(model.name == name))
    if row is None:
        raise NotFound(f"The {kind} with name {name} cannot be found.", resource_id=name, resource_type=kind)
    return row


def _user(s: Session, name: str) -> User:
    return named(s, User, "user", name)


def _group(s: Session, name: str) -> Group:
    return named(s, Group, "group", name)


def _caller_name(principal: Principal | None, name: str | None) -> str:
    """IAM's default for operations on "the calling user" when UserName is left out."""
    if name:
        return name
    if principal is None or principal.user_id is None:
        raise ValidationError("UserName is required (the caller is not a user)")
    return principal.name


def _page(names: list, marker: str | None, max_items: int | None) -> tuple[list, dict]:
    """IAM's Marker/MaxItems over rows ordered by name: the marker is the last name returned."""
    limit = max_items or MAX_ITEMS
    page = names[:limit]
    more = len(names) > limit
    return page, ({"IsTruncated": True, "Marker": page[-1][0]} if more else {"IsTruncated": False})


# ---- users ---------------------------------------------------------------------------------------------

def create_user(arca: Arca, principal: Principal | None, name: str, *, admin: bool = False,
                tags: list[dict] | None = None) -> dict:
    check_name(name)
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:CreateUser", user_arn(arca.account, name))
        if admin and principal is not None and not principal.is_admin:
            raise ValidationError("Only an administrator may create administrators")
        if s.scalar(select(User.id).where(User.name == name)) is not None:
            raise AlreadyExists(f"User with name {name} already exists.", resource_id=name, resource_type="user")
        user = User(name=name, is_admin=admin)
        s.add(user)
        _put_tags(s, user_arn(arca.account, name), tags or [])
        s.flush()
        out = user_shape(arca, user)
        if tags:
            out["Tags"] = tags
        return {"User": out}


def get_user(arca: Arca, principal: Principal | None, name: str | None = None) -> dict:
    name = _caller_name(principal, name)
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:GetUser", user_arn(arca.account, name))
        u = _user(s, name)
        out = user_shape(arca, u)
        tags = _tags(s, user_arn(arca.account, name))
        if tags:
            out["Tags"] = tags
        if u.is_admin:
            out["Admin"] = True  # Arca's own: not in IAM's shape, left out by the IAM door
        return {"User": out}


def list_users(arca: Arca, principal: Principal | None, marker: str | None = None,
               max_items: int | None = None) -> dict:
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:ListUsers", user_arn(arca.account, ""))
        q = select(User).order_by(User.name)
        if marker:
            q = q.where(User.name > marker)
        rows = [(u.name, u) for u in s.scalars(q.limit((max_items or MAX_ITEMS) + 1))]
        page, more = _page(rows, marker, max_items)
        return {"Users": [user_shape(arca, u) for _n, u in page], **more}


def delete_user(arca: Arca, principal: Principal | None, name: str) -> dict:
    """The user, its keys, inline policies, group memberships and tags; its tokens die on every node."""
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:DeleteUser", user_arn(arca.account, name))
        u = _user(s, name)
        if principal is not None and principal.user_id == u.id:
            raise Conflict("You cannot delete yourself", resource_id=name, resource_type="user")
        s.execute(delete(Tag).where(Tag.resource_arn == user_arn(arca.account, name)))
        for key in s.scalars(select(AccessKey).where(AccessKey.user_id == u.id)):
            s.delete(key)  # one by one, so the audit trail names each key
        s.execute(delete(IdentityPolicy).where(IdentityPolicy.user_id == u.id))
        s.execute(delete(GroupMember).where(GroupMember.user_id == u.id))
        s.delete(u)
        revocation.bump(s)
    revocation.revoked_here(arca)
    return {}


# ---- tags ----------------------------------------------------------------------------------------------

def _tags(s: Session, arn: str) -> list[dict]:
    return [{"Key": t.key, "Value": t.value} for t in s.scalars(select(Tag).where(Tag.resource_arn == arn)
                                                                 .order_by(Tag.key))]


def _put_tags(s: Session, arn: str, tags: list[dict]) -> None:
    for tag in tags:
        existing = s.get(Tag, (arn, tag["Key"]))
        if existing is None:
            s.add(Tag(resource_arn=arn, key=tag["Key"], value=tag.get("Value", "")))
        else:
            existing.value = tag.get("Value", "")
    s.flush()
    if s.scalar(select(func.count()).select_from(Tag).where(Tag.resource_arn == arn)) > 50:
        raise ValidationError("A user has at most 50 tags")


def tag_user(arca: Arca, principal: Principal | None, name: str, tags: list[dict]) -> dict:
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:TagUser", user_arn(arca.account, name))
        _user(s, name)
        _put_tags(s, user_arn(arca.account, name), tags)
    return {}


def untag_user(arca: Arca, principal: Principal | None, name: str, keys: list[str]) -> dict:
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:UntagUser", user_arn(arca.account, name))
        _user(s, name)
        s.execute(delete(Tag).where(Tag.resource_arn == user_arn(arca.account, name), Tag.key.in_(keys)))
    return {}


def list_user_tags(arca: Arca, principal: Principal | None, name: str) -> dict:
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:ListUserTags", user_arn(arca.account, name))
        _user(s, name)
        return {"Tags": _tags(s, user_arn(arca.account, name)), "IsTruncated": False}


# ---- access keys ---------------------------------------------------------------------------------------

def _key_shape(key: AccessKey, user_name: str) -> dict:
    return {"UserName": user_name, "AccessKeyId": key.access_key_id, "Status": key.status,
            "CreateDate": key.created_at}


def create_access_key(arca: Arca, principal: Principal | None, name: str | None = None) -> dict:
    """A new key; its secret is in this answer and nowhere else (the database holds it sealed)."""
    name = _caller_name(principal, name)
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:CreateAccessKey", user_arn(arca.account, name))
        user = _user(s, name)
        key_id, secret = new_key_id("AKIA"), new_secret()
        key = AccessKey(access_key_id=key_id, secret_sealed=arca.box.seal(secret, key_context(key_id)),
                        user_id=user.id)
        s.add(key)
        s.flush()
        return {"AccessKey": {**_key_shape(key, name), "SecretAccessKey": secret}}


def _key(s: Session, user: User, key_id: str) -> AccessKey:
    key = s.scalar(select(AccessKey).where(AccessKey.access_key_id == key_id, AccessKey.user_id == user.id))
    if key is None:
        raise NotFound(f"The Access Key with id {key_id} cannot be found.", resource_id=key_id,
                       resource_type="access-key")
    return key


def list_access_keys(arca: Arca, principal: Principal | None, name: str | None = None) -> dict:
    name = _caller_name(principal, name)
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:ListAccessKeys", user_arn(arca.account, name))
        user = _user(s, name)
        keys = s.scalars(select(AccessKey).where(AccessKey.user_id == user.id).order_by(AccessKey.created_at))
        return {"AccessKeyMetadata": [_key_shape(k, name) for k in keys], "IsTruncated": False}


def update_access_key(arca: Arca, principal: Principal | None, key_id: str, status: str,
                      name: str | None = None) -> dict:
    """Active or Inactive. While a key is inactive its signed requests and every token it minted are
    refused, on every node; reactivating it revives those tokens (up to their expiry). To end them
    for good, delete the key or run `arca admin revoke-tokens`."""
    if status not in ("Active", "Inactive"):
        raise ValidationError(f"Status must be Active or Inactive, not {status!r}")
    name = _caller_name(principal, name)
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:UpdateAccessKey", user_arn(arca.account, name))
        key = _key(s, _user(s, name), key_id)
        if key.status != status:
            key.status = status
            revocation.bump(s)
    revocation.revoked_here(arca)
    return {}


def delete_access_key(arca: Arca, principal: Principal | None, key_id: str, name: str | None = None) -> dict:
    name = _caller_name(principal, name)
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:DeleteAccessKey", user_arn(arca.account, name))
        s.delete(_key(s, _user(s, name), key_id))
        revocation.bump(s)
    revocation.revoked_here(arca)
    return {}


def get_access_key_last_used(arca: Arca, principal: Principal | None, key_id: str) -> dict:
    with arca.db.read() as s:
        row = s.execute(select(AccessKey, User).join(User, User.id == AccessKey.user_id)
                        .where(AccessKey.access_key_id == key_id)).first()
        arn = user_arn(arca.account, row[1].name) if row else user_arn(arca.account, "")
        authz.require_iam(arca, s, principal, "iam:GetAccessKeyLastUsed", arn)
        if row is None:
            raise NotFound(f"The Access Key with id {key_id} cannot be found.", resource_id=key_id,
                           resource_type="access-key")
        key, user = row
        used = {"ServiceName": key.last_used_service or "N/A", "Region": key.last_used_region or "N/A"}
        if key.last_used_at is not None:
            used["LastUsedDate"] = key.last_used_at
        return {"UserName": user.name, "AccessKeyLastUsed": used}


_last_noted: dict[str, float] = {}
NOTE_EVERY = 60.0


def note_key_used(arca: Arca, key_id: str, service: str, region: str) -> None:
    """Record a key's use for GetAccessKeyLastUsed: at most once a minute per key and process (IAM
    itself is hours behind), so signed requests do not each write a row."""
    now = time.monotonic()
    if now - _last_noted.get(key_id, -NOTE_EVERY) < NOTE_EVERY:
        return
    _last_noted[key_id] = now
    with arca.db.session() as s:
        key = s.scalar(select(AccessKey).where(AccessKey.access_key_id == key_id))
        if key is not None:
            key.last_used_at = datetime.now(timezone.utc)
            key.last_used_service, key.last_used_region = service, region


# ---- groups --------------------------------------------------------------------------------------------

def create_group(arca: Arca, principal: Principal | None, name: str, path: str | None = None) -> dict:
    check_name(name, "group", 128)
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:CreateGroup", group_arn(arca.account, name))
        if s.scalar(select(Group.id).where(Group.name == name)) is not None:
            raise AlreadyExists(f"Group with name {name} already exists.", resource_id=name, resource_type="group")
        g = Group(name=name, path=path or "/")
        s.add(g)
        try:
            s.flush()
        except IntegrityError:
            raise AlreadyExists(f"Group with name {name} already exists.", resource_id=name,
                               resource_type="group") from None
        return {"Group": group_shape(arca, g)}


def get_group(arca: Arca, principal: Principal | None, name: str) -> dict:
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:GetGroup", group_arn(arca.account, name))
        g = _group(s, name)
        users = s.scalars(select(User).join(GroupMember, GroupMember.user_id == User.id)
                          .where(GroupMember.group_id == g.id).order_by(User.name))
        return {"Group": group_shape(arca, g), "Users": [user_shape(arca, u) for u in users], "IsTruncated": False}


def list_groups(arca: Arca, principal: Principal | None) -> dict:
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:ListGroups", group_arn(arca.account, ""))
        return {"Groups": [group_shape(arca, g) for g in s.scalars(select(Group).order_by(Group.name))],
                "IsTruncated": False}


def delete_group(arca: Arca, principal: Principal | None, name: str) -> dict:
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:DeleteGroup", group_arn(arca.account, name))
        s.delete(_group(s, name))  # memberships and policies go with it (ON DELETE CASCADE)
        revocation.bump(s)
    revocation.revoked_here(arca)
    return {}


def add_user_to_group(arca: Arca, principal: Principal | None, group: str, name: str) -> dict:
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:AddUserToGroup", group_arn(arca.account, group))
        g, u = _group(s, group), _user(s, name)
        if s.get(GroupMember, (g.id, u.id)) is None:
            s.add(GroupMember(group_id=g.id, user_id=u.id))
            revocation.bump(s)
    revocation.revoked_here(arca)
    return {}


def remove_user_from_group(arca: Arca, principal: Principal | None, group: str, name: str) -> dict:
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:RemoveUserFromGroup", group_arn(arca.account, group))
        g, u = _group(s, group), _user(s, name)
        member = s.get(GroupMember, (g.id, u.id))
        if member is None:
            raise NotFound(f"The user {name} is not in group {group}.", resource_id=name, resource_type="user")
        s.delete(member)
        revocation.bump(s)
    revocation.revoked_here(arca)
    return {}


def list_groups_for_user(arca: Arca, principal: Principal | None, name: str) -> dict:
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:ListGroupsForUser", user_arn(arca.account, name))
        u = _user(s, name)
        groups = s.scalars(select(Group).join(GroupMember, GroupMember.group_id == Group.id)
                           .where(GroupMember.user_id == u.id).order_by(Group.name))
        return {"Groups": [group_shape(arca, g) for g in groups], "IsTruncated": False}


# ---- inline identity policies of users, groups and roles -------------------------------------------------
# Every change here (and to group membership) bumps the revocation epoch: the identity policies a
# node has cached are dropped on every node within a second, and on this one at once.

def check_identity_policy(document: str, kind: str = IDENTITY):
    try:
        return parse_policy(document, kind)
    except ValidationError as exc:
        raise MalformedPolicy(exc.message) from None


OWNERS = {"user": (IdentityPolicy.user_id, "UserName", user_arn),
          "group": (IdentityPolicy.group_id, "GroupName", group_arn),
          "role": (IdentityPolicy.role_id, "RoleName", role_arn)}


def _owner(s: Session, kind: str, name: str):
    return named(s, {"user": User, "group": Group, "role": Role}[kind], kind, name)


def put_policy(arca: Arca, principal: Principal | None, kind: str, owner: str, policy_name: str,
               document: str) -> dict:
    """Put{User,Group}Policy: add or replace the inline policy `policy_name` of a user or group."""
    column, _label, arn = OWNERS[kind]
    check_name(policy_name, "policy", 128)
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, f"iam:Put{kind.title()}Policy", arn(arca.account, owner))
        row = _owner(s, kind, owner)
        check_identity_policy(document)
        existing = s.scalar(select(IdentityPolicy).where(column == row.id, IdentityPolicy.name == policy_name))
        if existing is None:
            s.add(IdentityPolicy(name=policy_name, document=document, **{column.key: row.id}))
        else:
            existing.document = document
        revocation.bump(s)
    revocation.revoked_here(arca)
    return {}


def _policy_row(s: Session, column, owner_id: int, owner: str, policy_name: str) -> IdentityPolicy:
    p = s.scalar(select(IdentityPolicy).where(column == owner_id, IdentityPolicy.name == policy_name))
    if p is None:
        raise NotFound(f"The {column.key.split('_')[0]} policy with name {policy_name} cannot be found "
                       f"for {owner}.", resource_id=policy_name, resource_type="policy")
    return p


def get_policy(arca: Arca, principal: Principal | None, kind: str, owner: str, policy_name: str) -> dict:
    column, label, arn = OWNERS[kind]
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, f"iam:Get{kind.title()}Policy", arn(arca.account, owner))
        row = _owner(s, kind, owner)
        p = _policy_row(s, column, row.id, owner, policy_name)
        return {label: owner, "PolicyName": p.name, "PolicyDocument": p.document}


def delete_policy(arca: Arca, principal: Principal | None, kind: str, owner: str, policy_name: str) -> dict:
    column, _label, arn = OWNERS[kind]
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, f"iam:Delete{kind.title()}Policy", arn(arca.account, owner))
        row = _owner(s, kind, owner)
        s.delete(_policy_row(s, column, row.id, owner, policy_name))
        revocation.bump(s)
    revocation.revoked_here(arca)
    return {}


def list_policies(arca: Arca, principal: Principal | None, kind: str, owner: str) -> dict:
    column, _label, arn = OWNERS[kind]
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, f"iam:List{kind.title()}Policies", arn(arca.account, owner))
        row = _owner(s, kind, owner)
        names = s.scalars(select(IdentityPolicy.name).where(column == row.id).order_by(IdentityPolicy.name))
        return {"PolicyNames": list(names), "IsTruncated": False}
