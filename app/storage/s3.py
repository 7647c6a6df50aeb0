"""S3 BlobStore: `{prefix}/sha256/ab/cd/<sha256>` in any S3-compatible bucket.

Uploads never hold a whole body in memory and never expose unverified bytes under a final key:
a body up to one part (8 MiB) is buffered, hashed, verified and then PUT to its final key; a
larger body goes out as a multipart upload of 8 MiB parts under `{prefix}/tmp/<uuid>` while it
is hashed, and only after the SHA-256 (and the client's digests) check out is that upload
completed and copied (server-side, atomically) to the content-addressed key. On any error the
multipart upload is aborted / the temp object deleted. A body whose key already exists is not
stored again (the existing object's LastModified is refreshed so `arca admin gc` will not
collect it under an upload that is about to reference it).

Every S3 failure (connection refused, timeouts, 5xx, SlowDown, access denied, no bucket) becomes
`StorageUnavailable` (HTTP 503) with the reason; botocore retries with backoff first
(standard retry mode). A missing object is `FileNotFoundError`, as on the disk store."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator, Iterator
from urllib.parse import quote, urlsplit

import anyio

from app.domain.errors import StorageUnavailable
from app.storage.base import CHUNK, BlobInfo, BlobStat, Hasher, TempSweep, check_expected, hash_bytes, sweep_dir

log = logging.getLogger("arca.storage.s3")

PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
# S3's CopyObject limit; larger objects are copied part by part (boto3's managed copy does that).
COPY_SINGLE_LIMIT = 5 * 1024**3
# An existing object reused by a new upload is "touched" when it is older than this, so that
# gc's grace period (which must be longer) also protects uploads that deduplicated against it.
TOUCH_AFTER = timedelta(seconds=60)
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region_name: str | None = None, aws_access_key_id: str | None = None,
                 aws_secret_access_key: str | None = None, max_attempts: int = 4,
                 part_size: int = PART_SIZE, client=None, staging_dir: Path | None = None):
        self.bucket = bucket
        # Bodies are staged on local disk (request bodies, npm attachments) before they are uploaded.
        self.staging = Path(staging_dir) if staging_dir is not None else Path(tempfile.gettempdir()) / "arca-staging"
        self.staging.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.part_size = part_size
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "total_max_attempts": max_attempts},
                connect_timeout=5, read_timeout=60, max_pool_connections=64, signature_version="s3v4",
                # Plain MD5/SigV4 only: many S3-compatible stores reject the newer default CRC checksums.
                request_checksum_calculation="when_required", response_checksum_validation="when_required",
                s3={"addressing_style": "path"} if endpoint_url else None,
            )
            session = boto3.session.Session(aws_access_key_id=aws_access_key_id,
                                            aws_secret_access_key=aws_secret_access_key,
                                            region_name=region_name)
            client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self.client = client

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None, **kwargs) -> "S3BlobStore":
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"An S3 blob store is s3://bucket[/prefix], not {url!r}")
        return cls(parts.netloc, parts.path.strip("/"), endpoint_url=endpoint_url, **kwargs)

    def __repr__(self) -> str:
        return f"S3BlobStore({self.describe()})"

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    # ---- keys ------------------------------------------------------------------------------------

    def _join(self, rest: str) -> str:
        return f"{self.prefix}/{rest}" if self.prefix else rest

    def key_for(self, sha256: str) -> str:
        return self._join(f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}")

    @property
    def tmp_prefix(self) -> str:
        return self._join("tmp/")

    @property
    def blob_prefix(self) -> str:
        return self._join("sha256/")

    # ---- errors ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, op: str, sha256: str | None = None):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code") or "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if sha256 and code in MISSING_CODES:
                raise FileNotFoundError(f"blob {sha256} is not in s3://{self.bucket}/{self.prefix}") from exc
            raise StorageUnavailable(
                f"The blob store is unavailable: S3 {op} on bucket {self.bucket} failed "
                f"({code or status}: {err.get('Message') or exc})") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(
                f"The blob store is unavailable: S3 {op} on bucket {self.bucket} failed ({exc})") from exc

    def _head(self, key: str, op: str = "HeadObject"):
        """The HeadObject response, or None when the key does not exist."""
        from botocore.exceptions import ClientError

        try:
            with self._errors(op):
                return self.client.head_object(Bucket=self.bucket, Key=key)
        except StorageUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and (
                    str(cause.response.get("Error", {}).get("Code")) in MISSING_CODES
                    or cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404):
                return None
            raise

    # ---- writes ----------------------------------------------------------------------------------

    async def put_stream(
        self, chunks: AsyncIterator[bytes], *, limit: int | None = None, expected: dict[str, str] | None = None
    ) -> BlobInfo:
        hasher = Hasher(limit)
        buf = bytearray()
        upload: _Multipart | None = None
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                hasher.update(chunk)
                buf += chunk
                if len(buf) >= self._part_size(upload):
                    if upload is None:
                        upload = await anyio.to_thread.run_sync(self._begin_multipart)
                    data = bytes(buf)
                    buf.clear()
                    await anyio.to_thread.run_sync(upload.upload_part, data)
                    del data
            info = hasher.info()
            check_expected(info, expected)
            if upload is None:
                await anyio.to_thread.run_sync(self._put_final, bytes(buf), info)
            else:
                data = bytes(buf)
                buf.clear()
                await anyio.to_thread.run_sync(self._finish_multipart, upload, data, info)
            return info
        except BaseException:
            if upload is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(upload.discard)
            raise

    def _part_size(self, upload: "_Multipart | None") -> int:
        # Grow the part size every 1000 parts so the 10,000-part limit allows ~400 GiB.
        n = 0 if upload is None else len(upload.parts)
        return self.part_size * (1 + n // 1000)

    def _begin_multipart(self) -> "_Multipart":
        key = self.tmp_prefix + uuid.uuid4().hex
        with self._errors("CreateMultipartUpload"):
            resp = self.client.create_multipart_upload(Bucket=self.bucket, Key=key,
                                                       ContentType="application/octet-stream")
        return _Multipart(self, key, resp["UploadId"])

    def _finish_multipart(self, upload: "_Multipart", last: bytes, info: BlobInfo) -> None:
        if last:
            upload.upload_part(last)
        final = self.key_for(info.sha256)
        existing = self._head(final)
        if existing is not None:
            upload.discard()
            self._touch(final, existing)
            return
        upload.complete()
        try:
            with self._errors("CopyObject"):
                if info.size < COPY_SINGLE_LIMIT:
                    self.client.copy_object(Bucket=self.bucket, Key=final, ContentType="application/octet-stream",
                                            CopySource={"Bucket": self.bucket, "Key": upload.key})
                else:
                    self.client.copy({"Bucket": self.bucket, "Key": upload.key}, self.bucket, final)
        finally:
            upload.discard()

    def _put_final(self, data: bytes, info: BlobInfo) -> None:
        final = self.key_for(info.sha256)
        existing = self._head(final)
        if existing is not None:
            self._touch(final, existing)
            return
        with self._errors("PutObject"):
            self.client.put_object(Bucket=self.bucket, Key=final, Body=data, ContentMD5=_md5_b64(data),
                                   ContentType="application/octet-stream")

    def _touch(self, key: str, head: dict) -> None:
        """Refresh LastModified of an object a new upload is about to reference (see gc)."""
        modified = head.get("LastModified")
        if modified is None or datetime.now(timezone.utc) - modified < TOUCH_AFTER:
            return
        if head.get("ContentLength", 0) >= COPY_SINGLE_LIMIT:
            log.warning("not refreshing LastModified of %s (too large for CopyObject)", key)
            return
        with self._errors("CopyObject"):
            self.client.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                                    MetadataDirective="REPLACE", ContentType="application/octet-stream",
                                    Metadata={"arca-touched": datetime.now(timezone.utc).isoformat()})

    def put_bytes(self, data: bytes, expected: dict[str, str] | None = None) -> BlobInfo:
        info = hash_bytes(data)
        check_expected(info, expected)
        self._put_final(bytes(data), info)
        return info

    def new_temp(self) -> Path:
        return self.staging / f"{uuid.uuid4().hex}.part"

    def commit_file(self, path: Path, expected: dict[str, str] | None = None) -> BlobInfo:
        """Upload a staged file: one PUT when it fits a part, else a multipart upload under a temp
        key completed only after the file's digests check out; the file is removed either way."""
        upload: _Multipart | None = None
        try:
            hasher = Hasher()
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size <= self.part_size:
                    data = fh.read()
                    hasher.update(data)
                    info = hasher.info()
                    check_expected(info, expected)
                    self._put_final(data, info)
                    return info
                upload = self._begin_multipart()
                while chunk := fh.read(self._part_size(upload)):
                    hasher.update(chunk)
                    upload.upload_part(chunk)
            info = hasher.info()
            check_expected(info, expected)
            self._finish_multipart(upload, b"", info)
            return info
        except BaseException:
            if upload is not None:
                upload.discard()
            raise
        finally:
            path.unlink(missing_ok=True)

    # ---- reads -----------------------------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        return self._head(self.key_for(sha256)) is not None

    def stat(self, sha256: str) -> BlobStat | None:
        head = self._head(self.key_for(sha256))
        return None if head is None else BlobStat(head["ContentLength"], head["LastModified"])

    def open_chunks(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes [start, end) from a ranged GET; a connection lost mid-body resumes with a
        new ranged GET from where it stopped (a few times), so long downloads survive blips."""
        from botocore.exceptions import BotoCoreError
        from urllib3.exceptions import HTTPError as Urllib3Error

        if end is not None and end <= start:
            return
        pos, resumes = start, 0
        while True:
            rng = None
            if pos or end is not None:
                rng = f"bytes={pos}-{'' if end is None else end - 1}"
            try:
                with self._errors("GetObject", sha256):
                    resp = self.client.get_object(Bucket=self.bucket, Key=self.key_for(sha256),
                                                  **({"Range": rng} if rng else {}))
            except StorageUnavailable as exc:
                if _code(exc) == "InvalidRange":  # start at or past the end: nothing to send
                    return
                raise
            body = resp["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK):
                    if chunk:
                        pos += len(chunk)
                        yield chunk
                return
            except (BotoCoreError, Urllib3Error, ConnectionError) as exc:
                resumes += 1
                if resumes > 3:
                    raise StorageUnavailable(f"The blob store is unavailable: reading blob {sha256} from S3 "
                                             f"failed at byte {pos} ({exc})") from exc
                log.warning("S3 read of %s interrupted at byte %d (%s); resuming", sha256, pos, exc)
            finally:
                body.close()

    def read_bytes(self, sha256: str) -> bytes:
        return b"".join(self.open_chunks(sha256))

    def local_path(self, sha256: str) -> None:
        return None

    def local_name(self, sha256: str) -> None:
        return None

    def presigned_url(self, sha256: str, filename: str | None = None, expires: int = 300) -> str | None:
        params = {"Bucket": self.bucket, "Key": self.key_for(sha256)}
        if filename:
            plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
            params["ResponseContentDisposition"] = (
                f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}")
        with self._errors("presign"):
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    # ---- maintenance -----------------------------------------------------------------------------

    def delete(self, sha256: str) -> None:
        with self._errors("DeleteObject"):
            self.client.delete_object(Bucket=self.bucket, Key=self.key_for(sha256))

    def iter_stats(self) -> Iterator[tuple[str, BlobStat]]:
        with self._errors("ListObjectsV2"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                              Prefix=self.blob_prefix):
                for obj in page.get("Contents", []):
                    name = obj["Key"].rsplit("/", 1)[-1]
                    if len(name) == 64:
                        yield name, BlobStat(obj["Size"], obj["LastModified"])

    def clean_temp(self, older_than: datetime, dry_run: bool = False) -> TempSweep:
        """Abort multipart uploads and delete temp objects left by crashed processes, and the local
        staging files of interrupted uploads."""
        local = sweep_dir(self.staging, older_than, dry_run)
        n, size = local.count, local.bytes
        with self._errors("ListMultipartUploads"):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket,
                                                                                     Prefix=self.tmp_prefix):
                for up in page.get("Uploads", []):
                    if up["Initiated"] < older_than:
                        n += 1
                        size += self._uploaded_bytes(up)
                        if not dry_run:
                            self.client.abort_multipart_upload(Bucket=self.bucket, Key=up["Key"],
                                                               UploadId=up["UploadId"])
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                              Prefix=self.tmp_prefix):
                for obj in page.get("Contents", []):
                    if obj["LastModified"] < older_than:
                        n += 1
                        size += obj.get("Size", 0)
                        if not dry_run:
                            self.client.delete_object(Bucket=self.bucket, Key=obj["Key"])
        return TempSweep(n, size)

    def _uploaded_bytes(self, upload: dict) -> int:
        total = 0
        for page in self.client.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=upload["Key"],
                                                                     UploadId=upload["UploadId"]):
            total += sum(part.get("Size", 0) for part in page.get("Parts", []))
        return total

    def ping(self) -> None:
        with self._errors("HeadBucket"):
            self.client.head_bucket(Bucket=self.bucket)


def _code(exc: StorageUnavailable) -> str:
    cause = exc.__cause__
    resp = getattr(cause, "response", None) or {}
    return str(resp.get("Error", {}).get("Code") or "")


class _Multipart:
    """One multipart upload under a temp key: parts, completion, and cleanup that never raises."""

    def __init__(self, store: S3BlobStore, key: str, upload_id: str):
        self.store, self.key, self.upload_id = store, key, upload_id
        self.parts: list[dict] = []
        self.completed = False
        self.discarded = False

    def upload_part(self, data: bytes) -> None:
        n = len(self.parts) + 1
        if n > MAX_PARTS:
            raise StorageUnavailable("The upload needs more than 10,000 S3 parts")
        s = self.store
        with s._errors("UploadPart"):
            resp = s.client.upload_part(Bucket=s.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=n,
                                        Body=data, ContentMD5=_md5_b64(data))
        self.parts.append({"PartNumber": n, "ETag": resp["ETag"]})

    def complete(self) -> None:
        s = self.store
        with s._errors("CompleteMultipartUpload"):
            s.client.complete_multipart_upload(Bucket=s.bucket, Key=self.key, UploadId=self.upload_id,
                                               MultipartUpload={"Parts": self.parts})
        self.completed = True

    def discard(self) -> None:
        """Abort the upload, or delete the completed temp object. Best effort: logs, never raises
        (gc cleans what a dead endpoint leaves behind)."""
        if self.discarded:
            return
        s = self.store
        try:
            if self.completed:
                s.client.delete_object(Bucket=s.bucket, Key=self.key)
            else:
                s.client.abort_multipart_upload(Bucket=s.bucket, Key=self.key, UploadId=self.upload_id)
            self.discarded = True
        except Exception as exc:  # noqa: BLE001 - cleanup must not mask the original error
            log.warning("could not clean up S3 temp upload %s: %s", self.key, exc)
