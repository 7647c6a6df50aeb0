"""The control plane `/v1/...`: CodeArtifact's REST URIs, SigV4 auth, one error mapping."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from app.api import inputs, ops_arca, ops_domains as od, ops_generic as og, ops_groups as ogr, ops_packages as op
from app.api.auth import SigV4Error, authenticate
from app.api.context import OpContext
from app.api.errors import arca_error_response, error_response
from app.domain.errors import ArcaError, ValidationError
from app.observability.context import note

log = logging.getLogger("arca.api")

ROUTES: dict[tuple[str, str], tuple[str, Callable]] = {
    ("POST", "/v1/domain"): ("CreateDomain", od.create_domain),
    ("GET", "/v1/domain"): ("DescribeDomain", od.describe_domain),
    ("DELETE", "/v1/domain"): ("DeleteDomain", od.delete_domain),
    ("POST", "/v1/domains"): ("ListDomains", od.list_domains),
    ("PUT", "/v1/domain/permissions/policy"): ("PutDomainPermissionsPolicy", od.put_domain_permissions_policy),
    ("GET", "/v1/domain/permissions/policy"): ("GetDomainPermissionsPolicy", od.get_domain_permissions_policy),
    ("DELETE", "/v1/domain/permissions/policy"): ("DeleteDomainPermissionsPolicy", od.delete_domain_permissions_policy),
    ("POST", "/v1/repository"): ("CreateRepository", od.create_repository),
    ("GET", "/v1/repository"): ("DescribeRepository", od.describe_repository),
    ("PUT", "/v1/repository"): ("UpdateRepository", od.update_repository),
    ("DELETE", "/v1/repository"): ("DeleteRepository", od.delete_repository),
    ("POST", "/v1/repositories"): ("ListRepositories", od.list_repositories),
    ("POST", "/v1/domain/repositories"): ("ListRepositoriesInDomain", od.list_repositories_in_domain),
    ("GET", "/v1/repository/endpoint"): ("GetRepositoryEndpoint", od.get_repository_endpoint),
    ("POST", "/v1/repository/external-connection"): ("AssociateExternalConnection", od.associate_external_connection),
    ("DELETE", "/v1/repository/external-connection"): ("DisassociateExternalConnection", od.disassociate_external_connection),
    ("PUT", "/v1/repository/permissions/policy"): ("PutRepositoryPermissionsPolicy", od.put_repository_permissions_policy),
    ("GET", "/v1/repository/permissions/policy"): ("GetRepositoryPermissionsPolicy", od.get_repository_permissions_policy),
    ("DELETE", "/v1/repository/permissions/policies"): ("DeleteRepositoryPermissionsPolicy", od.delete_repository_permissions_policy),
    ("POST", "/v1/authorization-token"): ("GetAuthorizationToken", od.get_authorization_token),
    ("POST", "/v1/packages"): ("ListPackages", op.list_packages),
    ("GET", "/v1/package"): ("DescribePackage", op.describe_package),
    ("DELETE", "/v1/package"): ("DeletePackage", op.delete_package),
    ("POST", "/v1/package"): ("PutPackageOriginConfiguration", op.put_package_origin_configuration),
    ("POST", "/v1/package/versions"): ("ListPackageVersions", op.list_package_versions),
    ("GET", "/v1/package/version"): ("DescribePackageVersion", op.describe_package_version),
    ("POST", "/v1/package/versions/update_status"): ("UpdatePackageVersionsStatus", op.update_package_versions_status),
    ("POST", "/v1/package/versions/dispose"): ("DisposePackageVersions", op.dispose_package_versions),
    ("POST", "/v1/package/versions/delete"): ("DeletePackageVersions", op.delete_package_versions),
    ("POST", "/v1/package/version/assets"): ("ListPackageVersionAssets", op.list_package_version_assets),
    ("GET", "/v1/package/version/readme"): ("GetPackageVersionReadme", op.get_package_version_readme),
    ("POST", "/v1/package/version/dependencies"): ("ListPackageVersionDependencies", op.list_package_version_dependencies),
    ("POST", "/v1/tag"): ("TagResource", od.tag_resource),
    ("POST", "/v1/untag"): ("UntagResource", od.untag_resource),
    ("POST", "/v1/tags"): ("ListTagsForResource", od.list_tags_for_resource),
    ("POST", "/v1/package/versions/copy"): ("CopyPackageVersions", og.copy_package_versions),
    ("POST", "/v1/package-group"): ("CreatePackageGroup", ogr.create_package_group),
    ("GET", "/v1/package-group"): ("DescribePackageGroup", ogr.describe_package_group),
    ("PUT", "/v1/package-group"): ("UpdatePackageGroup", ogr.update_package_group),
    ("DELETE", "/v1/package-group"): ("DeletePackageGroup", ogr.delete_package_group),
    ("PUT", "/v1/package-group-origin-configuration"): (
        "UpdatePackageGroupOriginConfiguration", ogr.update_package_group_origin_configuration),
    ("POST", "/v1/package-groups"): ("ListPackageGroups", ogr.list_package_groups),
    ("POST", "/v1/package-groups/sub-groups"): ("ListSubPackageGroups", ogr.list_sub_package_groups),
    ("GET", "/v1/list-associated-packages"): ("ListAssociatedPackages", ogr.list_associated_packages),
    ("GET", "/v1/package-group-allowed-repositories"): (
        "ListAllowedRepositoriesForGroup", ogr.list_allowed_repositories_for_group),
    ("GET", "/v1/get-associated-package-group"): ("GetAssociatedPackageGroup", ogr.get_associated_package_group),
}
# Arca's own operations (app/arca_model), in the same style.
ALL_ROUTES = {**ROUTES, **ops_arca.ROUTES}
# Operations that stream their body and are handled below instead of through ROUTES.
STREAMING = {("GET", "/v1/package/version/asset"): "GetPackageVersionAsset",
             ("POST", "/v1/package/version/publish"): "PublishPackageVersion"}
MAX_JSON_BODY = 1024 * 1024
# The members that page a List operation; its nextToken is bound to all the others.
PAGING = ("maxResults", "nextToken")


def _json_default(value):
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _ok(data: dict) -> Response:
    return Response(json.dumps(data, default=_json_default), media_type="application/json")


async def _read_body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise ValidationError("Request body is too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body) if body else {}
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise ValidationError("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationError("Request body must be a JSON object")
    return data


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def _listing(params: dict) -> dict:
    """What a List operation's nextToken is bound to: its input but the paging members."""
    return {k: v for k, v in params.items() if k not in PAGING}


async def control_plane(request: Request) -> Response:
    key = (request.method, request.url.path.rstrip("/") or "/")
    try:
        if key == ("POST", "/v1/package/version/publish"):
            # streamed: the signed x-amz-content-sha256 is checked as the body is stored
            name, body = STREAMING[key], None
        elif key in STREAMING:
            name, body = STREAMING[key], await _read_body(request)
        elif key in ALL_ROUTES:
            name, body = ALL_ROUTES[key][0], await _read_body(request)
        else:
            return error_response("UnknownOperationException", f"No operation at {key[0]} {key[1]}", 404)
        note(operation=name, domain=request.query_params.get("domain"),
             repository=request.query_params.get("repository"), format=request.query_params.get("format"))
        try:
            principal = await run_in_threadpool(authenticate, request.app.state.arca, request, body)
        except SigV4Error as exc:
            return error_response(exc.code, exc.message, exc.status)
        note(principal=principal.arn)
        arca = request.app.state.arca
        # The operation's input, checked against the service model before any handler runs.
        model = ops_arca.operation(name) if key in ops_arca.ROUTES else inputs.operation(name)
        params = inputs.read_input(model, request.query_params.multi_items(),
                                   {k.lower(): v for k, v in request.headers.items()}, _json_object(body or b""))
        if params.get("nextToken"):
            params["nextToken"] = arca.pages.open(name, _listing(params), params["nextToken"])
        ctx = OpContext(arca, principal, params, _base_url(request))
        if key == ("POST", "/v1/package/version/publish"):
            # The body is the asset: streamed to the blob store, verified against x-amz-content-sha256.
            return _ok(await og.publish_package_version(ctx, request.stream()))
        if key in STREAMING:
            return await _get_asset(ctx)
        out = await run_in_threadpool(ALL_ROUTES[key][1], ctx)
        if out.get("nextToken"):
            out["nextToken"] = arca.pages.seal(name, _listing(params), out["nextToken"])
        return _ok(out)
    except ArcaError as exc:
        return arca_error_response(exc)
    except ClientDisconnect:
        raise  # nobody to answer
    except Exception:
        # A bug, not the client's fault: answered in CodeArtifact's shape (which SDKs retry), and
        # the connection stays usable instead of being dropped by the server's last-resort handler.
        log.exception("control plane: %s %s failed", request.method, request.url.path)
        return error_response("InternalServerException", "Internal error; the server log has the details", 500)


async def _get_asset(ctx: OpContext) -> Response:
    asset = await run_in_threadpool(op.asset_for_download, ctx)
    headers = {"X-AssetName": asset.name, "X-PackageVersion": asset.version,
               "X-PackageVersionRevision": asset.version_revision}
    # Always the bytes themselves: SDKs do not follow a redirect for this operation.
    return StreamingResponse(ctx.arca.blobs.open_chunks(asset.sha256), media_type="application/octet-stream",
                             headers={**headers, "Content-Length": str(asset.size)})
