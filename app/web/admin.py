"""The console's Administration area (/ui/admin/...): users, their access keys (a new key's secret is
shown once, on the page that answers its creation), groups, inline policies, roles and OIDC
providers. Every read and change goes through the same services as IAM at `POST /` and `arca
admin`, with the same permission checks (administrators, or identity policies granting `iam:...`),
the same validation and the same audit rows."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from app.domain.errors import ArcaError, ValidationError
from app.services import iam, revocation, roles
from app.web.views import Ctx


def _param(ctx: Ctx, name: str) -> str:
    return ctx.request.path_params[name]


def _field(ctx: Ctx, name: str) -> str:
    return (ctx.form.get(name) or "").strip()


# ---- users ---------------------------------------------------------------------------------------------

def users(ctx: Ctx) -> Response:
    message = error = None
    if ctx.request.method == "POST":
        name = _field(ctx, "name")
        try:
            iam.create_user(ctx.arca, ctx.principal, name, admin=ctx.form.get("admin") == "on")
            return RedirectResponse(f"/ui/admin/users/{name}", status_code=303)
        except ValidationError as exc:
            error = exc.message
    listing = iam.list_users(ctx.arca, ctx.principal, marker=ctx.q("after") or None, max_items=50)
    return ctx.render("admin_users.html", users=listing["Users"], more=listing.get("Marker"), message=message,
                      error=error, http_status=400 if error else 200)


def _user_page(ctx: Ctx, name: str, message: str | None = None, error: str | None = None,
               status: int = 200) -> Response:
    arca, p = ctx.arca, ctx.principal
    user = iam.get_user(arca, p, name)["User"]
    keys = iam.list_access_keys(arca, p, name)["AccessKeyMetadata"]
    names = iam.list_policies(arca, p, "user", name)["PolicyNames"]
    policies = [iam.get_policy(arca, p, "user", name, n) for n in names]
    groups = [g["GroupName"] for g in iam.list_groups_for_user(arca, p, name)["Groups"]]
    other_groups = [g["GroupName"] for g in iam.list_groups(arca, p)["Groups"] if g["GroupName"] not in groups]
    return ctx.render("admin_user.html", u=user, keys=keys, policies=policies, groups=groups,
                      other_groups=other_groups, message=message, error=error, http_status=status)


def user(ctx: Ctx) -> Response:
    return _user_page(ctx, _param(ctx, "name"))


def _change(ctx: Ctx, page, name: str, deleting: bool, act) -> Response:
    """One POST, one change: `act()` returns what happened (a message, or a response to send as
    is); the page is shown again with it, or with why not (400; 404 when something named is gone).
    A deletion's 404 has no page to show again: the console's error page answers it."""
    try:
        out = act()
    except ValidationError as exc:
        return page(ctx, name, error=exc.message, status=400)
    except ArcaError as exc:
        if exc.status == 404 and not deleting:
            return page(ctx, name, error=exc.message, status=404)
        raise
    return out if isinstance(out, Response) else page(ctx, name, message=out)


def _confirmed(ctx: Ctx, kind: str, name: str) -> None:
    if _field(ctx, "confirm") != name:
        raise ValidationError(f"Type the {kind} name {name} to confirm the deletion")


def user_action(ctx: Ctx) -> Response:
    arca, p, name, op = ctx.arca, ctx.principal, _param(ctx, "name"), _field(ctx, "op")
    key_id = _field(ctx, "key")

    def act() -> str | Response:
        if op == "create-key":
            return ctx.render("admin_key.html", key=iam.create_access_key(arca, p, name)["AccessKey"])
        if op in ("deactivate-key", "activate-key"):
            iam.update_access_key(arca, p, key_id, "Inactive" if op == "deactivate-key" else "Active", name)
            state = "inactive: it and its tokens are refused" if op == "deactivate-key" else "active"
            return f"Access key {key_id} is {state}."
        if op == "delete-key":
            iam.delete_access_key(arca, p, key_id, name)
            return f"Access key {key_id} deleted; its tokens no longer work."
        if op == "put-policy":
            iam.put_policy(arca, p, "user", name, _field(ctx, "policy_name"), ctx.form.get("document") or "")
            return f"Policy {_field(ctx, 'policy_name')} saved."
        if op == "delete-policy":
            iam.delete_policy(arca, p, "user", name, _field(ctx, "policy_name"))
            return f"Policy {_field(ctx, 'policy_name')} deleted."
        if op == "add-group":
            iam.add_user_to_group(arca, p, _field(ctx, "group"), name)
            return f"Added to group {_field(ctx, 'group')}."
        if op == "remove-group":
            iam.remove_user_from_group(arca, p, _field(ctx, "group"), name)
            return f"Removed from group {_field(ctx, 'group')}."
        if op == "revoke-tokens":
            revocation.revoke_tokens(arca, p, name)
            return "Every authorization token issued to this user until now is revoked, on every node."
        if op == "delete-user":
            _confirmed(ctx, "user", name)
            iam.delete_user(arca, p, name)
            return RedirectResponse("/ui/admin", status_code=303)
        raise ValidationError(f"Unknown action {op!r}")

    return _change(ctx, _user_page, name, op == "delete-user", act)


# ---- groups --------------------------------------------------------------------------------------------

def groups(ctx: Ctx) -> Response:
    error = None
    if ctx.request.method == "POST":
        name = _field(ctx, "name")
        try:
            iam.create_group(ctx.arca, ctx.principal, name)
            return RedirectResponse(f"/ui/admin/groups/{name}", status_code=303)
        except ValidationError as exc:
            error = exc.message
    return ctx.render("admin_groups.html", groups=iam.list_groups(ctx.arca, ctx.principal)["Groups"], error=error,
                      http_status=400 if error else 200)


def _group_page(ctx: Ctx, name: str, message: str | None = None, error: str | None = None,
                status: int = 200) -> Response:
    arca, p = ctx.arca, ctx.principal
    got = iam.get_group(arca, p, name)
    names = iam.list_policies(arca, p, "group", name)["PolicyNames"]
    policies = [iam.get_policy(arca, p, "group", name, n) for n in names]
    return ctx.render("admin_group.html", g=got["Group"], members=got["Users"], policies=policies,
                      message=message, error=error, http_status=status)


def group(ctx: Ctx) -> Response:
    return _group_page(ctx, _param(ctx, "name"))


def group_action(ctx: Ctx) -> Response:
    arca, p, name, op = ctx.arca, ctx.principal, _param(ctx, "name"), _field(ctx, "op")

    def act() -> str | Response:
        if op == "put-policy":
            iam.put_policy(arca, p, "group", name, _field(ctx, "policy_name"), ctx.form.get("document") or "")
            return f"Policy {_field(ctx, 'policy_name')} saved: it applies to every member."
        if op == "delete-policy":
            iam.delete_policy(arca, p, "group", name, _field(ctx, "policy_name"))
            return f"Policy {_field(ctx, 'policy_name')} deleted."
        if op == "add-user":
            iam.add_user_to_group(arca, p, name, _field(ctx, "user"))
            return f"{_field(ctx, 'user')} added."
        if op == "remove-user":
            iam.remove_user_from_group(arca, p, name, _field(ctx, "user"))
            return f"{_field(ctx, 'user')} removed."
        if op == "delete-group":
            _confirmed(ctx, "group", name)
            iam.delete_group(arca, p, name)
            return RedirectResponse("/ui/admin/groups", status_code=303)
        raise ValidationError(f"Unknown action {op!r}")

    return _change(ctx, _group_page, name, op == "delete-group", act)


# ---- roles and OIDC providers (read here; created with arca admin, IAM or the AWS CLI) ------------------

def roles_page(ctx: Ctx) -> Response:
    arca, p = ctx.arca, ctx.principal
    listed = roles.list_roles(arca, p)["Roles"]
    for r in listed:
        names = iam.list_policies(arca, p, "role", r["RoleName"])["PolicyNames"]
        r["Policies"] = [iam.get_policy(arca, p, "role", r["RoleName"], n) for n in names]
    providers = [roles.get_provider(arca, p, x["Arn"]) | {"Arn": x["Arn"]}
                 for x in roles.list_providers(arca, p)["OpenIDConnectProviderList"]]
    return ctx.render("admin_roles.html", roles=listed, providers=providers)
