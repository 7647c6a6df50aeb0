"""The control plane `/v1/...`: CodeArtifact's REST URIs, SigV4 auth, one error mapping."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.api import ops_arca, ops_domains as od, ops_generic as og, ops_groups as ogr, ops_packages as op
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


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


async def control_plane(request: Request) -> Response:
    key = (request.method, request.url.path.rstrip("/") or "/")
    try:
        if key in STREAMING:
            body = b""
        elif key in ALL_ROUTES:
            body = await _read_body(request)
        else:
            return error_response("UnknownOperationException", f"No operation at {key[0]} {key[1]}", 404)
        note(operation=ALL_ROUTES[key][0] if key in ALL_ROUTES else STREAMING[key],
             domain=request.query_params.get("domain"), repository=request.query_params.get("repository"),
             format=request.query_params.get("format"))
        try:
            principal = await run_in_threadpool(authenticate, request.app.state.arca, request, body)
        except SigV4Error as exc:
            return error_response(exc.code, exc.message, exc.status)
        note(principal=principal.arn)
        claimed = request.headers.get("x-amz-content-sha256")
        if body and claimed and not hmac.compare_digest(claimed, hashlib.sha256(body).hexdigest()):
            raise ValidationError("x-amz-content-sha256 does not match the request body")
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            raise ValidationError("Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ValidationError("Request body must be a JSON object")
        ctx = OpContext(request.app.state.arca, principal, dict(request.query_params), data, _base_url(request),
                        {k.lower(): v for k, v in request.headers.items()})
        if key == ("POST", "/v1/package/version/publish"):
            # The body is the asset: streamed to the blob store, verified against x-amz-content-sha256.
            return _ok(await og.publish_package_version(ctx, request.stream()))
        if key in STREAMING:
            return await _get_asset(ctx)
        _name, handler = ALL_ROUTES[key]
        return _ok(await run_in_threadpool(handler, ctx))
    except ArcaError as exc:
        return arca_error_response(exc)


async def _get_asset(ctx: OpContext) -> Response:
    asset = await run_in_threadpool(op.asset_for_download, ctx)
    headers = {"X-AssetName": asset.name, "X-PackageVersion": asset.version,
               "X-PackageVersionRevision": asset.version_revision}
    # Always the bytes themselves: SDKs do not follow a redirect for this operation.
    return StreamingResponse(ctx.arca.blobs.open_chunks(asset.sha256), media_type="application/octet-stream",
                             headers={**headers, "Content-Length": str(asset.size)})
