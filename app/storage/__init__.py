"""Blob stores: content-addressed by SHA-256. `open_blob_store(settings)` picks the backend."""

from __future__ import annotations

from app.config import blob_store_problem
from app.storage.base import BlobInfo, BlobStat, BlobStore, Hasher, TempSweep


def open_blob_store(settings, spec: str | None = None) -> BlobStore:
    """The store `spec` names (default: ARCA_BLOB_STORE): 'file' is the data dir's blobs/,
    's3://bucket/prefix' a bucket (ARCA_S3_ENDPOINT_URL for S3-compatible stores)."""
    spec = spec or settings.blob_store
    problem = blob_store_problem(spec)
    if problem:
        raise ValueError(f"The blob store {problem}")
    if spec == "file":
        from app.storage.file import FileBlobStore

        return FileBlobStore(settings.data_dir / "blobs")
    from app.storage.s3 import S3BlobStore

    return S3BlobStore.from_url(spec, endpoint_url=settings.s3_endpoint_url, staging_dir=settings.data_dir / "tmp")


__all__ = ["BlobInfo", "BlobStat", "BlobStore", "Hasher", "TempSweep", "open_blob_store"]
