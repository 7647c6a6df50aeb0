"""IAM-style policies: the document grammar, checked when a policy is stored, and evaluation
(explicit Deny > Allow > implicit deny).

Three kinds of document share the grammar (`kind`): resource policies of domains and repositories
(`Principal` required), identity policies of users, groups and roles (no `Principal`: they apply
to whom they are attached to; `Resource` required; `iam:` actions too, as in IAM), and a role's
trust policy (`Principal` {"Federated": OIDC provider ARN}, `sts:AssumeRoleWithWebIdentity`,
conditions on the web identity token's claims, no `Resource`).

Every element of a document is either enforced or refused: `parse_policy` raises a ValidationError
naming the first element it does not understand, so nothing is stored that could grant more (or
deny less) than it says. Matching follows IAM: action names are case-insensitive, ARNs (Resource,
Principal) are case-sensitive, and `*` / `?` are the only wildcards."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache

from app.auth.conditions import Condition, Context, glob, parse_block
from app.domain.errors import ValidationError

log = logging.getLogger("arca.policy")

MAX_POLICY_CHARS = 7168
RESOURCE, IDENTITY, TRUST = "resource", "identity", "trust"
# IAM's limits per kind (a role's trust policy: the default quota of 2048)
MAX_CHARS = {RESOURCE: MAX_POLICY_CHARS, IDENTITY: 10240, TRUST: 2048}
VERSIONS = ("2012-10-17", "2008-10-17")
TOP_LEVEL = ("Version", "Id", "Statement")
ELEMENTS = ("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource",
            "Condition")
SERVICES = {RESOURCE: ("codeartifact", "sts"), IDENTITY: ("codeartifact", "sts", "iam"), TRUST: ("sts",)}
_ACTION = {kind: re.compile(r"(?i)(?:" + "|".join(services) + r"):[A-Za-z0-9*?]+|\*")
           for kind, services in SERVICES.items()}
_ACCOUNT = re.compile(r"\d{12}")
_PROVIDER_ARN = re.compile(r"arn:aws:iam::\d{12}:oidc-provider/[^\s]+")


@dataclass(frozen=True)
class Request:
    principal_arn: str
    action: str  # e.g. "codeartifact:ReadFromRepository"
    resource_arn: str
    context: Context = field(default_factory=Context)
    # Other ARNs the principal answers to: a role session is also its role (a resource policy
    # naming arn:aws:iam::ACCOUNT:role/NAME applies to the role's sessions, as in IAM).
    principal_aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    principals: tuple[str, ...]  # "*", account ids, ARNs (patterns)
    not_principal: bool
    actions: tuple[re.Pattern, ...]
    not_action: bool
    resources: tuple[re.Pattern, ...]
    not_resource: bool
    conditions: tuple[Condition, ...] = ()
    # A stored statement that today's rules refuse (stored before they existed): an Allow grants
    # nothing and a Deny applies to every request, so it never grants more than it says.
    broken: bool = False

    def applies(self, req: Request, account: str) -> bool:
        if self.broken:
            return self.effect == "Deny"
        matched = any(_principal_matches(self.principals, arn, account)
                      for arn in (req.principal_arn, *req.principal_aliases))
        return (matched != self.not_principal
                and any(a.fullmatch(req.action) for a in self.actions) != self.not_action
                and any(r.fullmatch(req.resource_arn) for r in self.resources) != self.not_resource
                and all(c.holds(req.context) for c in self.conditions))


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for k, v in pairs:
        if k in seen:
            raise ValidationError(f"policyDocument has the key {k!r} twice in one object")
        seen[k] = v
    return seen


def _no_constant(name: str):
    raise ValidationError(f"policyDocument is not valid JSON: {name} is not a JSON value")


def _load(document: str, kind: str = RESOURCE) -> dict:
    if not document or len(document) > MAX_CHARS[kind]:
        raise ValidationError(f"policyDocument must be 1-{MAX_CHARS[kind]} characters")
    try:
        doc = json.loads(document, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ValueError as exc:
        raise ValidationError(f"policyDocument is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValidationError("policyDocument must be a JSON object")
    return doc


def _check_top(doc: dict) -> list:
    for key in doc:
        if key not in TOP_LEVEL:
            raise ValidationError(f"policyDocument has an unknown element {key!r} (allowed: {', '.join(TOP_LEVEL)})")
    if doc.get("Version") not in VERSIONS:
        raise ValidationError("policyDocument Version must be \"2012-10-17\"")
    if "Id" in doc and not isinstance(doc["Id"], str):
        raise ValidationError("policyDocument Id must be a string")
    statements = _as_list(doc.get("Statement"))
    if not statements:
        raise ValidationError("policyDocument must have at least one Statement")
    return statements


def parse_policy(document: str, kind: str = RESOURCE) -> Policy:
    """Validate a policy document of `kind`; raise ValidationError naming the problem."""
    doc = _load(document, kind)
    statements = _check_top(doc)
    variables = doc["Version"] == "2012-10-17"
    return Policy(tuple(_statement(st, _where(i, st), variables, kind) for i, st in enumerate(statements)))


@lru_cache(maxsize=2048)
def load_stored(document: str, kind: str = RESOURCE) -> Policy:
    """A stored document for evaluation (cached by its text). One stored before today's rules that
    breaks them is still evaluated, statement by statement, in the safe direction (`broken`)."""
    try:
        return parse_policy(document, kind)
    except ValidationError as exc:
        log.warning("a stored %s policy breaks today's rules (%s); its Allow statements grant "
                    "nothing and its Deny statements apply to every request until it is replaced", kind, exc)
    try:
        doc = json.loads(document)
    except ValueError:
        doc = {}
    statements = _as_list(doc.get("Statement")) if isinstance(doc, dict) else []
    variables = isinstance(doc, dict) and doc.get("Version") == "2012-10-17"
    out = []
    for i, st in enumerate(statements):
        try:
            out.append(_statement(st, _where(i, st), variables, kind))
        except ValidationError:
            effect = "Allow" if isinstance(st, dict) and st.get("Effect") == "Allow" else "Deny"
            out.append(Statement(effect, (), False, (), False, (), False, broken=True))
    return Policy(tuple(out))


def _where(i: int, st) -> str:
    sid = st.get("Sid") if isinstance(st, dict) else None
    return f"Statement[{i}]" + (f" ({sid})" if isinstance(sid, str) and sid else "")


def _statement(st, where: str, variables: bool, kind: str = RESOURCE) -> Statement:
    if not isinstance(st, dict):
        raise ValidationError(f"{where} must be an object")
    for key in st:
        if key not in ELEMENTS:
            raise ValidationError(f"{where}: unknown element {key!r} (allowed: {', '.join(ELEMENTS)})")
    if "Sid" in st and not isinstance(st["Sid"], str):
        raise ValidationError(f"{where}: Sid must be a string")
    effect = st.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise ValidationError(f"{where}: Effect must be Allow or Deny")
    p_key = _principal_key(st, where, kind)
    if p_key == "NotPrincipal" and effect != "Deny":
        raise ValidationError(f"{where}: NotPrincipal can only be used with \"Effect\": \"Deny\" (as in IAM)")
    a_key = _one_of(st, "Action", "NotAction", where, required=True)
    r_key = _one_of(st, "Resource", "NotResource", where, required=kind == IDENTITY)
    if kind == TRUST and r_key:
        raise ValidationError(f"{where}: a trust policy has no {r_key}: the role is the resource (as in IAM)")
    principals = (("*",) if p_key is None else
                  _federated(st[p_key], where) if kind == TRUST else _principals(st[p_key], p_key, where))
    return Statement(
        effect=effect,
        principals=principals,
        not_principal=p_key == "NotPrincipal",
        actions=_actions(st[a_key], a_key, where, kind),
        not_action=a_key == "NotAction",
        resources=_resources(st[r_key] if r_key else "*", r_key or "Resource", where, variables),
        not_resource=r_key == "NotResource",
        conditions=parse_block(st["Condition"], where, variables, claims=kind == TRUST) if "Condition" in st else (),
    )


def _principal_key(st: dict, where: str, kind: str) -> str | None:
    """Which of Principal/NotPrincipal the statement uses (None: an identity policy, which has neither)."""
    if kind == IDENTITY:
        for key in ("Principal", "NotPrincipal"):
            if key in st:
                raise ValidationError(f"{where}: an identity policy has no {key}: it applies to the user, group "
                                      "or role it is attached to (as in IAM)")
        return None
    if kind == TRUST and "NotPrincipal" in st:
        raise ValidationError(f"{where}: a trust policy names its principals with Principal, not NotPrincipal")
    return _one_of(st, "Principal", "NotPrincipal", where, required=True)


def _federated(value, where: str) -> tuple[str, ...]:
    """A trust policy's Principal: {"Federated": OIDC provider ARN(s)}."""
    if not isinstance(value, dict) or set(value) != {"Federated"}:
        raise ValidationError(f"{where}: Principal must be {{\"Federated\": \"arn:aws:iam::ACCOUNT:oidc-provider/"
                              "HOST\"}: Arca's roles are assumed with web identity tokens only")
    out = _strings(value["Federated"], "Principal Federated", where)
    for p in out:
        if not _PROVIDER_ARN.fullmatch(p):
            raise ValidationError(f"{where}: Principal Federated {p!r} must be an OIDC provider ARN "
                                  "(arn:aws:iam::ACCOUNT:oidc-provider/HOST)")
    return tuple(out)


def _one_of(st: dict, key: str, negated: str, where: str, required: bool) -> str | None:
    if key in st and negated in st:
        raise ValidationError(f"{where}: {key} and {negated} cannot be used together")
    if key in st:
        return key
    if negated in st:
        return negated
    if required:
        raise ValidationError(f"{where}: {key} is required" + (" (or NotPrincipal)" if key == "Principal" else
                                                                  f" (or {negated})"))
    return None


def _strings(value, name: str, where: str) -> list[str]:
    values = _as_list(value)
    if not values:
        raise ValidationError(f"{where}: {name} is required and must not be empty")
    for v in values:
        if not isinstance(v, str):
            raise ValidationError(f"{where}: {name} must be strings, not {v!r}")
    return values


def _principals(value, name: str, where: str) -> tuple[str, ...]:
    shape = f"{where}: {name} must be \"*\" or {{\"AWS\": [ARNs]}}"
    if value == "*":
        return ("*",)
    if not isinstance(value, dict) or set(value) != {"AWS"}:
        raise ValidationError(shape)
    out = _strings(value["AWS"], f"{name} AWS", where)
    for p in out:
        if not (p == "*" or _ACCOUNT.fullmatch(p) or p.startswith("arn:")):
            raise ValidationError(f"{where}: {name} {p!r} must be \"*\", an account id or an ARN")
    return tuple(out)


def _actions(value, name: str, where: str, kind: str = RESOURCE) -> tuple[re.Pattern, ...]:
    out = []
    for a in _strings(value, name, where):
        if not _ACTION[kind].fullmatch(a):
            services = SERVICES[kind]
            raise ValidationError(f"{where}: {name} {a!r} must be " + (
                "codeartifact:* style" if kind == RESOURCE else " or ".join(f"{s}:*" for s in services) + " style"))
        out.append(glob(a, ignore_case=True))  # action names are case-insensitive in IAM
    return tuple(out)


def _resources(value, name: str, where: str, variables: bool) -> tuple[re.Pattern, ...]:
    out = []
    for r in _strings(value, name, where):
        if r != "*" and not r.startswith("arn:"):
            raise ValidationError(f"{where}: {name} {r!r} must be \"*\" or an ARN")
        if variables and "${" in r:
            raise ValidationError(f"{where}: {name} {r!r} uses a policy variable, which Arca does not expand")
        out.append(glob(r))  # ARNs are case-sensitive in IAM
    return tuple(out)


def _principal_matches(principals: tuple[str, ...], principal_arn: str, account: str) -> bool:
    for p in principals:
        if p == "*" or p == principal_arn or p in (account, f"arn:aws:iam::{account}:root"):
            return True
        if glob(p).fullmatch(principal_arn):
            return True
    return False


def evaluate(policies: list[Policy], req: Request, account: str) -> str:
    """'Deny', 'Allow' or 'None' (implicit deny) over all statements of all documents."""
    result = "None"
    for policy in policies:
        for st in policy.statements:
            if not st.applies(req, account):
                continue
            if st.effect == "Deny":
                return "Deny"
            result = "Allow"
    return result
