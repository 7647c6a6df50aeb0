"""`POST /`: IAM and STS in AWS's query protocol, told apart by the SigV4 credential scope's
service (`iam`, `sts`), or, for the one unsigned operation (AssumeRoleWithWebIdentity: the web
identity token is the credential), by the `Version` field. Input and output follow botocore's
`iam` and `sts` models (app/api/query_protocol.py), so boto3, the AWS CLI and `arca` drive it
unchanged. One handler per operation, each one service call; one mapping of ArcaError to IAM's
error codes."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable
from urllib.parse import parse_qsl

import botocore.session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from app.api.auth import SigV4Error, authenticate, scope_service
from app.api.query_protocol import read_params, render_error, render_result
from app.domain import errors as e
from app.domain.errors import ArcaError
from app.observability.context import info as request_info, note
from app.services import iam, roles
from app.services.context import Arca, Principal

log = logging.getLogger("arca.api.iam")
MAX_BODY = 1024 * 1024
# Read when the first IAM or STS call comes: the two models hold about 7 MiB that a worker
# answering only package clients never uses.
@lru_cache(maxsize=2)
def _model(service: str):
    return botocore.session.get_session().get_service_model(service)


def _service_of_version(version: str) -> str | None:
    return next((name for name in OPERATIONS if _model(name).api_version == version), None)
UNSIGNED = {("sts", "AssumeRoleWithWebIdentity")}


@dataclass
class Call:
    arca: Arca
    principal: Principal | None
    params: dict

    def __getitem__(self, member: str):
        return self.params[member]

    def get(self, member: str, default=None):
        return self.params.get(member, default)


def _user(c: Call) -> dict:
    out = iam.get_user(c.arca, c.principal, c.get("UserName"))
    out["User"].pop("Admin", None)
    return out


def _caller(c: Call) -> dict:
    p = c.principal
    user_id = (f"AROA{p.role_id:016d}:{p.name.split('/', 1)[-1]}" if p.role_id is not None
               else f"AIDA{p.user_id:016d}")
    return {"UserId": user_id, "Account": c.arca.account, "Arn": p.arn}


IAM: dict[str, Callable[[Call], dict]] = {
    "CreateUser": lambda c: iam.create_user(c.arca, c.principal, c["UserName"], tags=c.get("Tags")),
    "GetUser": _user,
    "ListUsers": lambda c: iam.list_users(c.arca, c.principal, c.get("Marker"), c.get("MaxItems")),
    "DeleteUser": lambda c: iam.delete_user(c.arca, c.principal, c["UserName"]),
    "TagUser": lambda c: iam.tag_user(c.arca, c.principal, c["UserName"], c["Tags"]),
    "UntagUser": lambda c: iam.untag_user(c.arca, c.principal, c["UserName"], c["TagKeys"]),
    "ListUserTags": lambda c: iam.list_user_tags(c.arca, c.principal, c["UserName"]),
    "CreateAccessKey": lambda c: iam.create_access_key(c.arca, c.principal, c.get("UserName")),
    "ListAccessKeys": lambda c: iam.list_access_keys(c.arca, c.principal, c.get("UserName")),
    "UpdateAccessKey": lambda c: iam.update_access_key(c.arca, c.principal, c["AccessKeyId"], c["Status"],
                                                       c.get("UserName")),
    "DeleteAccessKey": lambda c: iam.delete_access_key(c.arca, c.principal, c["AccessKeyId"], c.get("UserName")),
    "GetAccessKeyLastUsed": lambda c: iam.get_access_key_last_used(c.arca, c.principal, c["AccessKeyId"]),
    "CreateGroup": lambda c: iam.create_group(c.arca, c.principal, c["GroupName"], c.get("Path")),
    "GetGroup": lambda c: iam.get_group(c.arca, c.principal, c["GroupName"]),
    "ListGroups": lambda c: iam.list_groups(c.arca, c.principal),
    "DeleteGroup": lambda c: iam.delete_group(c.arca, c.principal, c["GroupName"]),
    "AddUserToGroup": lambda c: iam.add_user_to_group(c.arca, c.principal, c["GroupName"], c["UserName"]),
    "RemoveUserFromGroup": lambda c: iam.remove_user_from_group(c.arca, c.principal, c["GroupName"],
                                                                c["UserName"]),
    "ListGroupsForUser": lambda c: iam.list_groups_for_user(c.arca, c.principal, c["UserName"]),
    "CreateRole": lambda c: roles.create_role(c.arca, c.principal, c["RoleName"], c["AssumeRolePolicyDocument"],
                                              description=c.get("Description"),
                                              max_session_duration=c.get("MaxSessionDuration"), path=c.get("Path")),
    "GetRole": lambda c: roles.get_role(c.arca, c.principal, c["RoleName"]),
    "ListRoles": lambda c: roles.list_roles(c.arca, c.principal),
    "DeleteRole": lambda c: roles.delete_role(c.arca, c.principal, c["RoleName"]),
    "UpdateAssumeRolePolicy": lambda c: roles.update_trust_policy(c.arca, c.principal, c["RoleName"],
                                                                  c["PolicyDocument"]),
    "CreateOpenIDConnectProvider": lambda c: roles.create_provider(c.arca, c.principal, c["Url"],
                                                                   c.get("ClientIDList") or [],
                                                                   c.get("ThumbprintList")),
    "GetOpenIDConnectProvider": lambda c: roles.get_provider(c.arca, c.principal, c["OpenIDConnectProviderArn"]),
    "ListOpenIDConnectProviders": lambda c: roles.list_providers(c.arca, c.principal),
    "DeleteOpenIDConnectProvider": lambda c: roles.delete_provider(c.arca, c.principal,
                                                                   c["OpenIDConnectProviderArn"]),
}
for _kind, _owner in (("User", "UserName"), ("Group", "GroupName"), ("Role", "RoleName")):
    IAM[f"Put{_kind}Policy"] = (lambda k, o: lambda c: iam.put_policy(
        c.arca, c.principal, k, c[o], c["PolicyName"], c["PolicyDocument"]))(_kind.lower(), _owner)
    IAM[f"Get{_kind}Policy"] = (lambda k, o: lambda c: iam.get_policy(
        c.arca, c.principal, k, c[o], c["PolicyName"]))(_kind.lower(), _owner)
    IAM[f"Delete{_kind}Policy"] = (lambda k, o: lambda c: iam.delete_policy(
        c.arca, c.principal, k, c[o], c["PolicyName"]))(_kind.lower(), _owner)
    IAM[f"List{_kind}Policies"] = (lambda k, o: lambda c: iam.list_policies(
        c.arca, c.principal, k, c[o]))(_kind.lower(), _owner)

STS: dict[str, Callable[[Call], dict]] = {
    "AssumeRoleWithWebIdentity": lambda c: roles.assume_role_with_web_identity(
        c.arca, c["RoleArn"], c["RoleSessionName"], c["WebIdentityToken"], c.get("DurationSeconds")),
    "GetCallerIdentity": _caller,
}
OPERATIONS = {"iam": IAM, "sts": STS}

# ArcaError -> (IAM/STS error code, HTTP status), looked up along the exception's MRO.
ERRORS: dict[type, tuple[str, int]] = {
    e.AlreadyExists: ("EntityAlreadyExists", 409),
    e.MalformedPolicy: ("MalformedPolicyDocument", 400),
    e.InvalidIdentityToken: ("InvalidIdentityToken", 400),
    e.ExpiredToken: ("ExpiredTokenException", 400),
    e.IdpRejectedClaim: ("IDPRejectedClaim", 403),
    e.IdpCommunicationError: ("IDPCommunicationError", 400),
    e.NotFound: ("NoSuchEntity", 404),
    e.Conflict: ("DeleteConflict", 409),
    e.PayloadTooLarge: ("ValidationError", 400),
    e.ValidationError: ("ValidationError", 400),
    e.AccessDenied: ("AccessDenied", 403),
    e.Unauthenticated: ("InvalidClientTokenId", 403),
    e.TooManyRequests: ("Throttling", 400),
    e.DatabaseUnavailable: ("ServiceUnavailable", 503),
    ArcaError: ("ServiceFailure", 500),
}
# SigV4's refusals (named as CodeArtifact names them) as IAM and STS name them.
SIGV4_CODES = {"UnrecognizedClientException": "InvalidClientTokenId",
               "InvalidSignatureException": "SignatureDoesNotMatch",
               "MissingAuthenticationTokenException": "MissingAuthenticationToken",
               "IncompleteSignatureException": "IncompleteSignature"}


def _request_id() -> str:
    ri = request_info()
    return ri.request_id if ri is not None and ri.request_id else str(uuid.uuid4())


def _error(service: str, code: str, message: str, status: int) -> Response:
    namespace = _model(service).metadata["xmlNamespace"]
    return Response(render_error(code, message, namespace, _request_id(), sender=status < 500), status_code=status,
                    media_type="text/xml")


def _arca_error(service: str, exc: ArcaError) -> Response:
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            code, status = ERRORS[cls]
            return _error(service, code, exc.message, status)
    raise exc  # pragma: no cover - ArcaError is in the table


async def _form(request: Request) -> tuple[bytes, dict[str, str]]:
    body, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise e.PayloadTooLarge(f"The request body is larger than {MAX_BODY} bytes")
        body.append(chunk)
    raw = b"".join(body)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise e.ValidationError("The request body is not a form (application/x-www-form-urlencoded)") from None
    form: dict[str, str] = {}
    for k, v in pairs:
        if k in form:
            raise e.ValidationError(f"The parameter {k[:60]!r} is given twice")
        form[k] = v
    return raw, form


async def query_api(request: Request) -> Response:
    arca: Arca = request.app.state.arca
    service = scope_service(request.headers.get("authorization")) or "iam"
    try:
        raw, form = await _form(request)
        if not request.headers.get("authorization"):
            service = _service_of_version(form.get("Version", "")) or service
        if service not in OPERATIONS:
            return _error("iam", "InvalidClientTokenId", f"Credential scope service {service!r}: this endpoint "
                          "serves iam and sts (CodeArtifact is at /v1)", 403)
        action = form.get("Action", "")
        handler = OPERATIONS[service].get(action)
        if handler is None:
            return _error(service, "InvalidAction", f"Could not find operation {action[:60]!r} for {service} "
                          f"(Arca serves: {', '.join(sorted(OPERATIONS[service]))})", 400)
        note(operation=f"{service}:{action}")
        principal = None
        if (service, action) not in UNSIGNED:
            try:
                principal = await run_in_threadpool(authenticate, arca, request, raw, service)
            except SigV4Error as exc:
                return _error(service, SIGV4_CODES.get(exc.code, exc.code), exc.message, exc.status)
            note(principal=principal.arn)
        op = _model(service).operation_model(action)
        params = read_params(op, form)
        result = await run_in_threadpool(handler, Call(arca, principal, params))
        xml = render_result(op, result, _model(service).metadata["xmlNamespace"], _request_id())
        return Response(xml, media_type="text/xml")
    except ArcaError as exc:
        return _arca_error(service if service in OPERATIONS else "iam", exc)
    except ClientDisconnect:
        raise
    except Exception:
        log.exception("IAM/STS: %s failed", request.url.path)
        return _error(service if service in OPERATIONS else "iam", "ServiceFailure",
                      "Internal error; the server log has the details", 500)


__all__ = ["query_api", "OPERATIONS"]
