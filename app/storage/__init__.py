"""Blob stores: content-addressed by SHA-256. `open_blob_store(settings)` picks the backend."""

from __future__ import annotations

from app.storage.base import BlobInfo, BlobStore, Hasher


def open_blob_store(settings) -> BlobStore:
    spec = settings.blob_store
    if spec == "file":
        from app.storage.file import FileBlobStore

        return FileBlobStore(settings.data_dir / "blobs")
    if spec.startswith("s3://"):
        from app.storage.s3 import S3BlobStore

        return S3BlobStore.from_url(spec, endpoint_url=settings.s3_endpoint_url)
    raise ValueError(f"ARCA_BLOB_STORE must be 'file' or 's3://bucket/prefix', not {spec!r}")


__all__ = ["BlobInfo", "BlobStore", "Hasher", "open_blob_store"]
