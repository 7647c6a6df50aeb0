"""Generic packages (CodeArtifact's `generic` format): arbitrary assets under namespace/package/
version, published and read through the control plane (PublishPackageVersion,
GetPackageVersionAsset) — there is no data-plane layout, so this format has no routes.

The rules of its coordinates, pure."""

from __future__ import annotations

from app.domain.errors import ValidationError


def check_asset_name(value: str) -> str:
    """The service model bounds an asset name (1-255 characters, no control characters); a generic
    asset name also holds no separator but the space (no line or paragraph breaks, no odd spaces)."""
    if any(not c.isprintable() for c in value):
        raise ValidationError(f"Invalid asset name {value!r}: only printable characters and spaces")
    return value
