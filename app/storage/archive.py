"""Where `arca admin export` writes a domain archive and `import-domain` reads it: a directory or
an S3 prefix holding named documents (the manifest, the package list) beside a content-addressed
blob store (`blobs/`, the same layout and the same verified writes as Arca's own stores)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from app.domain.errors import StorageUnavailable, ValidationError
from app.storage.base import BlobStore


class DirArchive:
    def __init__(self, root: Path):
        from app.storage.file import FileBlobStore

        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.blobs: BlobStore = FileBlobStore(root / "blobs")

    def describe(self) -> str:
        return str(self.root)

    def write_document(self, name: str, data: bytes) -> None:
        """Written to a temp name, then renamed: a reader never sees half a document."""
        tmp = self.root / f".{name}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.root / name)
        except OSError as exc:
            raise StorageUnavailable(f"Writing {self.root / name} failed ({exc.strerror or exc})") from None

    def read_document(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None


class S3Archive:
    def __init__(self, url: str, endpoint_url: str | None, staging_dir: Path):
        from app.storage.s3 import S3BlobStore

        parts = urlsplit(url)
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        self.blobs = S3BlobStore(self.bucket, f"{self.prefix}/blobs" if self.prefix else "blobs",
                                 endpoint_url=endpoint_url, staging_dir=staging_dir)
        self.client = self.blobs.client

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def write_document(self, name: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data,
                                   ContentType="application/json")
        except Exception as exc:  # botocore's errors, normalised at the boundary
            raise StorageUnavailable(f"S3 PutObject {self._key(name)} failed: {exc}") from None

    def read_document(self, name: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            raise StorageUnavailable(f"S3 GetObject {self._key(name)} failed: {exc}") from None


def open_archive(settings, spec: str, *, create: bool):
    """A directory path or s3://bucket/prefix."""
    if spec.startswith("s3://"):
        if not urlsplit(spec).netloc:
            raise ValidationError(f"An S3 archive is s3://bucket[/prefix], not {spec!r}")
        return S3Archive(spec, settings.s3_endpoint_url, settings.data_dir / "tmp")
    root = Path(spec)
    if not create and not root.is_dir():
        raise ValidationError(f"{spec} is not a directory")
    return DirArchive(root)
