"""Roles, OIDC providers and AssumeRoleWithWebIdentity (trusted publishing from CI).

An administrator registers an issuer (CreateOpenIDConnectProvider: its URL and the audiences it
may issue tokens for) and a role whose trust policy lets that provider's tokens assume it under
conditions on their claims (`token.actions.githubusercontent.com:sub`, `...:aud`, ...), with inline
permission policies. A CI job presents its token and gets temporary credentials (an ASIA access key
id, a secret and a session token, at most the role's maximum session duration, at most 12 h) that
sign requests like any access key; nothing long-lived lives in the CI system."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.auth.conditions import Context
from app.auth.policy import TRUST, Request, evaluate, parse_policy
from app.auth.webidentity import condition_values, unverified_issuer, TokenRefused
from app.db.models import OidcProvider, Role, RoleSession
from app.domain.arns import assumed_role_arn, oidc_provider_arn, provider_host, role_arn
from app.domain.errors import (AccessDenied, AlreadyExists, InvalidIdentityToken, MalformedPolicy, NotFound,
                               ValidationError)
from app.observability.context import info as request_info
from app.services import authz, iam, oidc, revocation
from app.services.context import Arca, Principal
from app.services.identity import SESSION_KEY_PREFIX, key_context

ACTION = "sts:AssumeRoleWithWebIdentity"
MIN_SESSION, MAX_SESSION, DEFAULT_SESSION = 900, 43200, 3600


# ---- OIDC providers ------------------------------------------------------------------------------------

def normalize_url(url: str) -> str:
    oidc.check_url(url)
    return url.rstrip("/")


def _provider_shape(arca: Arca, p: OidcProvider) -> dict:
    return {"Url": provider_host(p.url), "ClientIDList": list(p.client_ids), "ThumbprintList": list(p.thumbprints),
            "CreateDate": p.created_at}


def _provider_by_arn(arca: Arca, s: Session, arn: str) -> OidcProvider:
    for p in s.scalars(select(OidcProvider)):
        if oidc_provider_arn(arca.account, p.url) == arn:
            return p
    raise NotFound(f"OpenIDConnect Provider not found for arn {arn}", resource_id=arn, resource_type="oidc-provider")


def create_provider(arca: Arca, principal: Principal | None, url: str, client_ids: list[str],
                    thumbprints: list[str] | None = None) -> dict:
    """`client_ids`: the audiences (`aud`) tokens must name. Thumbprints are kept for IAM's shape;
    Arca checks the issuer's TLS certificate the ordinary way instead."""
    url = normalize_url(url)
    if not client_ids:
        raise ValidationError("ClientIDList must name at least one audience (e.g. arca or sts.amazonaws.com)")
    arn = oidc_provider_arn(arca.account, url)
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:CreateOpenIDConnectProvider", arn)
        if s.scalar(select(OidcProvider.id).where(OidcProvider.url == url)) is not None:
            raise AlreadyExists(f"Provider with url {url} already exists.", resource_id=arn,
                                resource_type="oidc-provider")
        s.add(OidcProvider(url=url, client_ids=sorted(set(client_ids)), thumbprints=list(thumbprints or [])))
    return {"OpenIDConnectProviderArn": arn}


def get_provider(arca: Arca, principal: Principal | None, arn: str) -> dict:
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:GetOpenIDConnectProvider", arn)
        return _provider_shape(arca, _provider_by_arn(arca, s, arn))


def list_providers(arca: Arca, principal: Principal | None) -> dict:
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:ListOpenIDConnectProviders", oidc_provider_arn(arca.account, ""))
        return {"OpenIDConnectProviderList": [{"Arn": oidc_provider_arn(arca.account, p.url)}
                                              for p in s.scalars(select(OidcProvider).order_by(OidcProvider.url))]}


def delete_provider(arca: Arca, principal: Principal | None, arn: str) -> dict:
    """Its tokens can no longer assume roles; sessions already issued run out on their own."""
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:DeleteOpenIDConnectProvider", arn)
        s.delete(_provider_by_arn(arca, s, arn))
    return {}


# ---- roles ---------------------------------------------------------------------------------------------

def role_shape(arca: Arca, r: Role) -> dict:
    out = {"Path": r.path, "RoleName": r.name, "RoleId": f"AROA{r.id:016d}", "Arn": role_arn(arca.account, r.name),
           "CreateDate": r.created_at, "AssumeRolePolicyDocument": r.trust_policy,
           "MaxSessionDuration": r.max_session_duration}
    if r.description:
        out["Description"] = r.description
    return out


def _role(s: Session, name: str) -> Role:
    return iam.named(s, Role, "role", name)


def check_trust_policy(document: str) -> None:
    try:
        parse_policy(document, TRUST)
    except ValidationError as exc:
        raise MalformedPolicy(exc.message) from None


def create_role(arca: Arca, principal: Principal | None, name: str, trust_policy: str, *,
                description: str | None = None, max_session_duration: int | None = None,
                path: str | None = None) -> dict:
    iam.check_name(name, "role")
    duration = max_session_duration or DEFAULT_SESSION
    if not MIN_SESSION <= duration <= MAX_SESSION:
        raise ValidationError(f"MaxSessionDuration must be {MIN_SESSION}-{MAX_SESSION} seconds, not {duration}")
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:CreateRole", role_arn(arca.account, name))
        check_trust_policy(trust_policy)
        if s.scalar(select(Role.id).where(Role.name == name)) is not None:
            raise AlreadyExists(f"Role with name {name} already exists.", resource_id=name, resource_type="role")
        r = Role(name=name, path=path or "/", description=description, trust_policy=trust_policy,
                 max_session_duration=duration)
        s.add(r)
        s.flush()
        return {"Role": role_shape(arca, r)}


def get_role(arca: Arca, principal: Principal | None, name: str) -> dict:
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:GetRole", role_arn(arca.account, name))
        return {"Role": role_shape(arca, _role(s, name))}


def list_roles(arca: Arca, principal: Principal | None) -> dict:
    with arca.db.read() as s:
        authz.require_iam(arca, s, principal, "iam:ListRoles", role_arn(arca.account, ""))
        return {"Roles": [role_shape(arca, r) for r in s.scalars(select(Role).order_by(Role.name))],
                "IsTruncated": False}


def update_trust_policy(arca: Arca, principal: Principal | None, name: str, trust_policy: str) -> dict:
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:UpdateAssumeRolePolicy", role_arn(arca.account, name))
        r = _role(s, name)
        check_trust_policy(trust_policy)
        r.trust_policy = trust_policy
    return {}


def delete_role(arca: Arca, principal: Principal | None, name: str) -> dict:
    """The role, its policies and its sessions: their credentials and tokens die on every node."""
    with arca.db.session() as s:
        authz.require_iam(arca, s, principal, "iam:DeleteRole", role_arn(arca.account, name))
        r = _role(s, name)
        s.execute(delete(RoleSession).where(RoleSession.role_id == r.id))
        s.delete(r)
        revocation.bump(s)
    revocation.revoked_here(arca)
    return {}


# ---- AssumeRoleWithWebIdentity -------------------------------------------------------------------------

def _role_from_arn(arca: Arca, s: Session, arn: str) -> Role:
    prefix = f"arn:aws:iam::{arca.account}:role/"
    name = arn[len(prefix):].rsplit("/", 1)[-1] if arn.startswith(prefix) else None
    r = s.scalar(select(Role).where(Role.name == name)) if name else None
    if r is None:
        raise AccessDenied(f"Not authorized to perform {ACTION}: no role {arn} in account {arca.account}")
    return r


def _provider_for(s: Session, token: str) -> OidcProvider:
    try:
        issuer = unverified_issuer(token)
    except TokenRefused as exc:
        raise InvalidIdentityToken(exc.message[0].upper() + exc.message[1:]) from None
    p = s.scalar(select(OidcProvider).where(OidcProvider.url == (issuer or "").rstrip("/"))) if issuer else None
    if p is None:
        raise InvalidIdentityToken(f"No OpenIDConnect provider is registered for the token's issuer {issuer!r} "
                                   "(arca admin create-oidc-provider --url ...)")
    return p


def assume_role_with_web_identity(arca: Arca, role: str, session_name: str, token: str,
                                  duration: int | None = None) -> dict:
    """Temporary credentials for `role` (an ARN), once the token verifies against its issuer's keys
    and the role's trust policy allows its claims. Nothing is written unless both hold."""
    with arca.db.read() as s:
        r = _role_from_arn(arca, s, role)
        provider = _provider_for(s, token)
        trust, url, audiences = r.trust_policy, provider.url, tuple(provider.client_ids)
        role_id, role_name, max_duration = r.id, r.name, r.max_session_duration
    seconds = duration or DEFAULT_SESSION
    if not MIN_SESSION <= seconds <= max_duration:
        raise ValidationError(f"DurationSeconds must be {MIN_SESSION}-{max_duration} seconds for role {role_name} "
                              f"(its MaxSessionDuration), not {seconds}")
    identity = oidc.verify_token(arca, token, url, audiences)  # outside any transaction: it may fetch keys
    host = provider_host(url)
    _check_trust(arca, trust, role_arn(arca.account, role_name), oidc_provider_arn(arca.account, url), host, identity)
    key_id, secret, session_token = iam.new_key_id(SESSION_KEY_PREFIX), iam.new_secret(), secrets.token_urlsafe(96)
    now = datetime.now(timezone.utc)
    expires = now + timedelta(seconds=seconds)
    with arca.db.session() as s:
        s.execute(delete(RoleSession).where(RoleSession.expires_at < now))  # the ended ones, as we pass
        s.add(RoleSession(access_key_id=key_id, secret_sealed=arca.box.seal(secret, key_context(key_id)),
                          token_sha256=hashlib.sha256(session_token.encode()).hexdigest(), role_id=role_id,
                          session_name=session_name, subject=identity.subject[:255], provider=host[:255],
                          created_at=now, expires_at=expires))
    return {"Credentials": {"AccessKeyId": key_id, "SecretAccessKey": secret, "SessionToken": session_token,
                            "Expiration": expires},
            "SubjectFromWebIdentityToken": identity.subject,
            "AssumedRoleUser": {"AssumedRoleId": f"AROA{role_id:016d}:{session_name}",
                                "Arn": assumed_role_arn(arca.account, role_name, session_name)},
            "Provider": host, "Audience": identity.audiences[0]}


def _check_trust(arca: Arca, trust: str, target: str, provider_arn: str, host: str, identity) -> None:
    ri = request_info()
    context = Context(source_ip=ri.source_ip if ri else None, secure_transport=ri.secure_transport if ri else None,
                      now=datetime.now(timezone.utc), claims=condition_values(host, identity))
    request = Request(provider_arn, ACTION, target, context)
    if evaluate([parse_policy(trust, TRUST)], request, arca.account) != "Allow":
        raise AccessDenied(f"Not authorized to perform {ACTION}: the trust policy of {target} does not allow a "
                           f"token from {host} with sub {identity.subject!r} and aud {list(identity.audiences)}")
