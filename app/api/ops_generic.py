"""PublishPackageVersion (generic packages, one streamed asset per call) and CopyPackageVersions."""

from __future__ import annotations

from dataclasses import replace
from typing import AsyncIterator

from starlette.concurrency import run_in_threadpool

from app.api.context import OpContext, coords
from app.domain.errors import ValidationError
from app.domain.status import UNFINISHED
from app.formats.generic.codec import check_asset_name
from app.services import domains, packages, publish

# CodeArtifact: assets join a version only while it is Unfinished (and may be replaced then);
# at most 150 per version.
GENERIC = publish.Rules(initial_status=UNFINISHED, open_statuses=(UNFINISHED,), replace=publish.WHILE_UNFINISHED,
                        max_files=150)


async def publish_package_version(ctx: OpContext, body: AsyncIterator[bytes]) -> dict:
    c = coords(ctx)
    if c.format != "generic":
        raise ValidationError(f"PublishPackageVersion supports only the generic format, not {c.format}")
    version, asset, sha256 = ctx["packageVersion"], check_asset_name(ctx["assetName"]), ctx["assetSHA256"]
    rules = GENERIC if ctx.get("unfinished") else replace(GENERIC, publish=True)
    ref = await run_in_threadpool(domains.ref_for, ctx.arca, ctx["domain"], ctx["repository"],
                                  ctx.get("domainOwner"))
    # Everything that does not need the bytes is checked first: a refused upload stores nothing.
    await run_in_threadpool(publish.preflight, ctx.arca, ctx.principal, ref, c, rules=rules, version=version,
                            name=asset, sha256=sha256)
    info = await ctx.arca.blobs.put_stream(body, limit=ctx.arca.settings.max_upload_bytes,
                                           expected={"sha256": sha256})
    added = await run_in_threadpool(publish.add_file, ctx.arca, ctx.principal, ref,
                                    publish.File(c, version, asset, info), rules)
    out = {"format": c.format, "package": c.name, "version": added.version, "versionRevision": added.version_revision,
           "status": added.status, "asset": {"name": asset, "size": info.size, "hashes": info.hashes()}}
    if c.namespace:
        out["namespace"] = c.namespace
    return out


def copy_package_versions(ctx: OpContext) -> dict:
    return packages.copy_versions(
        ctx.arca, ctx.principal, ctx["domain"], ctx["sourceRepository"], ctx["destinationRepository"], coords(ctx),
        ctx.get("versions"), ctx.get("versionRevisions"), overwrite=bool(ctx.get("allowOverwrite")),
        include_upstream=bool(ctx.get("includeFromUpstream")), owner=ctx.get("domainOwner"))
