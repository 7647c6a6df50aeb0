"""Generic packages (CodeArtifact's `generic` format): arbitrary assets under namespace/package/
version, published and read through the control plane (PublishPackageVersion,
GetPackageVersionAsset) — there is no data-plane layout, so this format has no routes.

The rules of its coordinates, pure."""

from __future__ import annotations

import re

from app.domain.errors import ValidationError

SHA256_RE = re.compile(r"[0-9a-f]{64}")


def check_asset_name(value: str | None) -> str:
    if not value or len(value) > 255 or any(not c.isprintable() for c in value):
        raise ValidationError(f"Invalid asset name {value!r}: 1-255 characters, no control characters")
    return value


def check_sha256(value: str | None) -> str:
    """The asset's SHA-256 as the client declares it (header x-amz-content-sha256)."""
    sha256 = (value or "").lower()
    if not SHA256_RE.fullmatch(sha256):
        raise ValidationError("assetSHA256 (header x-amz-content-sha256) must be the hex SHA-256 of the asset")
    return sha256
