"""Read-backs for "nothing was stored" checks that cannot pass by accident."""

from __future__ import annotations

from botocore.exceptions import ClientError


def _missing_package(exc: ClientError) -> bool:
    """A ResourceNotFound that names the package or its version, not the domain or repository."""
    r = exc.response
    return r["Error"]["Code"] == "ResourceNotFoundException" and r.get("resourceType") in ("package",
                                                                                         "package-version")


def stored_versions(client, *, domain: str, repository: str, format: str, package: str,
                    namespace: str | None = None) -> dict[str, str]:
    """{version: status} of a package; {} when the package does not exist. Only a not-found that
    names the package means "nothing stored": a missing domain or repository (a mistake in the
    test) raises instead of reading as an empty repository."""
    kw = {"namespace": namespace} if namespace else {}
    try:
        out = client.list_package_versions(domain=domain, repository=repository, format=format, package=package,
                                           **kw)
    except ClientError as exc:
        if _missing_package(exc):
            return {}
        raise
    return {v["version"]: v["status"] for v in out["versions"]}


def stored_assets(client, *, domain: str, repository: str, format: str, package: str, version: str,
                  namespace: str | None = None) -> list[str]:
    """Sorted asset names of a package version; [] when the package or the version does not exist
    (a missing domain or repository raises)."""
    kw = {"namespace": namespace} if namespace else {}
    try:
        out = client.list_package_version_assets(domain=domain, repository=repository, format=format,
                                                 package=package, packageVersion=version, **kw)
    except ClientError as exc:
        if _missing_package(exc):
            return []
        raise
    return sorted(a["name"] for a in out["assets"])
