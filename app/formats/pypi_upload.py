"""twine's legacy upload API: `POST /` with a multipart form (`:action=file_upload`).

The body is parsed as it arrives: the small text fields are kept in memory, the `content` part
goes straight to a spool file beside the blob store while every digest is computed. All rules
are checked before anything is kept (form fields, file name, archive, core metadata, digests);
then the blob is committed, then the rows are written in one transaction."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from app.db.models import Domain, Repository
from app.domain.errors import Conflict, PayloadTooLarge, ValidationError
from app.formats import pypi_dists as dists
from app.services import packages as pk
from app.storage.base import CHUNK, BlobInfo, Hasher

FORM_FIELDS_MAX = 16 * 1024 * 1024  # all text fields together (long descriptions included)
FILETYPES = {"bdist_wheel": "wheel", "sdist": "sdist"}
DIGESTS = ("sha256_digest", "blake2_256_digest", "md5_digest")
CLOSED_STATUSES = (pk.ARCHIVED, pk.DISPOSED, pk.DELETED)


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    filename: str | None = None
    spool: Path | None = None
    info: BlobInfo | None = None
    blake2_256: str | None = None

    def get(self, key: str) -> str | None:
        values = self.fields.get(key)
        return values[0] if values else None

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.unlink(missing_ok=True)
            self.spool = None


class _FormReader:
    """python-multipart callbacks: text parts into memory, the file part into `spool` (hashed)."""

    def __init__(self, spool_path: Path, limit: int):
        self.form = Form()
        self.spool_path = spool_path
        self.limit = limit
        self.text_bytes = 0
        self.ended = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name: str | None = None
        self._buf: bytearray | None = None
        self._fh = None
        self._hasher: Hasher | None = None
        self._blake = None

    def callbacks(self) -> dict:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end, "on_end": self.end}

    def part_begin(self) -> None:
        self._disposition = b""
        self._name = None

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def headers_finished(self) -> None:
        _kind, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise ValidationError("A form part has no Content-Disposition name")
        self._name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            if self._name != "content":
                raise ValidationError(f"Unexpected file part {self._name!r}: the distribution goes in 'content'")
            if self.form.filename is not None:
                raise ValidationError("More than one 'content' part")
            self.form.filename = options[b"filename"].decode("utf-8", "replace")
            self._fh = open(self.spool_path, "wb")
            self.form.spool = self.spool_path
            self._hasher = Hasher(self.limit)
            self._blake = hashlib.blake2b(digest_size=32)
            self._buf = None
        else:
            self._buf = bytearray()

    def part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._buf is None:
            self._hasher.update(chunk)  # raises PayloadTooLarge past the limit
            self._blake.update(chunk)
            self._fh.write(chunk)
        else:
            self.text_bytes += len(chunk)
            if self.text_bytes > FORM_FIELDS_MAX:
                raise PayloadTooLarge(f"The form's text fields exceed {FORM_FIELDS_MAX} bytes")
            self._buf.extend(chunk)

    def part_end(self) -> None:
        if self._buf is None:
            if self._fh is not None:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()
                self._fh = None
                self.form.info = self._hasher.info()
                self.form.blake2_256 = self._blake.hexdigest()
        else:
            self.form.fields.setdefault(self._name, []).append(self._buf.decode("utf-8", "replace"))
            self._buf = None

    def end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _spool_path(arca) -> Path:
    new_temp = getattr(arca.blobs, "new_temp_path", None)
    if new_temp is not None:
        return new_temp()  # same file system as the blobs: committing is a rename
    tmp = arca.settings.data_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp, suffix=".part")
    os.close(fd)
    return Path(name)


async def read_form(dp) -> Form:
    """Parse the request body; on any error the spool file is removed."""
    request = dp.request
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise ValidationError("An upload is a multipart/form-data POST (the legacy upload API that twine uses)")
    limit = dp.arca.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + FORM_FIELDS_MAX:
        raise PayloadTooLarge(f"Upload is larger than the limit of {limit} bytes")
    reader = _FormReader(_spool_path(dp.arca), limit)
    parser = MultipartParser(params[b"boundary"], reader.callbacks())
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
        if not reader.ended:
            raise ValidationError("The multipart body ended early")
    except ClientDisconnect:
        reader.close()
        reader.form.discard()
        raise ValidationError("The client disconnected during the upload") from None
    except Exception as exc:
        reader.close()
        reader.form.discard()
        if isinstance(exc, (ValidationError, PayloadTooLarge)):
            raise
        raise ValidationError(f"Malformed multipart body: {exc}") from None
    finally:
        reader.close()
    return reader.form


# ---- the rules ---------------------------------------------------------------------------------

@dataclass
class Checked:
    dist: dists.DistFile
    version: str  # PEP 440 normal form
    metadata: bytes
    core: dists.CoreMetadata


def check_form(form: Form) -> tuple[dists.DistFile, str]:
    """The form fields and the file name (cheap checks; no file access)."""
    if form.get(":action") != "file_upload":
        raise ValidationError(f"Unsupported ':action' {form.get(':action')!r}: only 'file_upload' is accepted")
    if form.get("protocol_version") != "1":
        raise ValidationError(f"Unsupported protocol_version {form.get('protocol_version')!r}: must be '1'")
    if form.info is None or not form.filename:
        raise ValidationError("The upload has no 'content' file part")
    for key in ("name", "version"):
        if not (form.get(key) or "").strip():
            raise ValidationError(f"The form field '{key}' is missing")
    name = dists.check_name(form.get("name").strip())
    version = dists.check_version(form.get("version").strip())
    dist = dists.parse_filename(form.filename)
    if dist.name != name:
        raise ValidationError(f"The file name {form.filename} is for project {dist.name!r}, "
                              f"but the form says {form.get('name')!r}")
    if dist.version != version:
        raise ValidationError(f"The file name {form.filename} is for version {dist.version}, "
                              f"but the form says {form.get('version')!r}")
    filetype = form.get("filetype")
    if filetype is not None and FILETYPES.get(filetype) != dist.kind:
        raise ValidationError(f"filetype {filetype!r} does not fit {form.filename} (use bdist_wheel or sdist)")
    check_digests(form)
    return dist, str(version)


def check_digests(form: Form) -> None:
    sent = {k: (form.get(k) or "").strip().lower() for k in DIGESTS if (form.get(k) or "").strip()}
    if not sent:
        raise ValidationError("Include at least one message digest (sha256_digest, blake2_256_digest or md5_digest)")
    have = {"sha256_digest": form.info.sha256, "blake2_256_digest": form.blake2_256, "md5_digest": form.info.md5}
    for key, want in sent.items():
        if want != have[key]:
            raise ValidationError(f"{key} mismatch: the form says {want} but the uploaded file hashes to "
                                  f"{have[key]}; nothing was stored")


def check_archive(form: Form, dist: dists.DistFile, version: str) -> Checked:
    """Open the archive and compare its core metadata with the form (runs in a worker thread)."""
    metadata = dists.read_core_metadata(form.spool, dist)
    core = dists.parse_core_metadata(metadata, dist.filename)
    what = "METADATA" if dist.kind == "wheel" else "PKG-INFO"
    try:
        meta_name = dists.check_name(core.name)
    except ValidationError:
        raise ValidationError(f"{what} in {dist.filename} has an invalid Name {core.name!r}") from None
    if meta_name != dist.name:
        raise ValidationError(f"{what} in {dist.filename} says Name: {core.name}, but the upload is for "
                              f"{form.get('name')!r}")
    if dists.check_version(core.version) != dist.version:
        raise ValidationError(f"{what} in {dist.filename} says Version: {core.version}, but the upload is for "
                              f"{form.get('version')!r}")
    return Checked(dist=dist, version=version, metadata=metadata, core=core)


# ---- storing -----------------------------------------------------------------------------------

def _existing_sha256(arca, repo_ref, dist: dists.DistFile, version: str) -> tuple[str | None, str | None]:
    """(sha256 of an asset already stored under this file name, status of the version)."""
    with arca.db.read() as s:
        repo = s.get(Repository, repo_ref.repository_id)
        pkg = pk.find_package(s, repo, pk.Coordinates("pypi", "", dist.name))
        if pkg is None:
            return None, None
        ver = pk.find_version(s, pkg, version)
        if ver is None:
            return None, None
        asset = pk.find_asset(s, ver, dist.filename)
        return (asset.blob.sha256 if asset else None), ver.status


async def _commit_blob(arca, form: Form) -> BlobInfo:
    expected = {"sha256": form.info.sha256}
    put_file = getattr(arca.blobs, "put_file", None)
    if put_file is not None:
        info = await run_in_threadpool(put_file, form.spool, expected)
        form.spool = None  # renamed into the store
        return info

    async def chunks():
        with open(form.spool, "rb") as fh:
            while chunk := await run_in_threadpool(fh.read, CHUNK):
                yield chunk

    return await arca.blobs.put_stream(chunks(), expected=expected)


def _write_rows(dp, c: Checked, form: Form, info: BlobInfo, meta_info: BlobInfo) -> bool:
    arca = dp.arca
    with arca.db.session() as s:
        dp.require_sync(s, "codeartifact:PublishPackageVersion")
        domain = s.get(Domain, dp.repo.domain_id)
        repo = s.get(Repository, dp.repo.repository_id)
        coords = pk.Coordinates("pypi", "", c.dist.name)
        pkg = pk.package_for_publish(s, domain, repo, coords, display_name=c.core.name)  # origin controls
        pk.bump(s, pkg)  # first: serialises concurrent uploads to this project
        ver, _created = pk.get_or_create_version(
            s, pkg, c.version, status=pk.PUBLISHED, summary=c.core.summary, attributes=dict(c.core.attributes))
        if ver.status in CLOSED_STATUSES:
            raise Conflict(f"Version {c.version} of {c.dist.name} is {ver.status}; files cannot be added to it",
                           resource_id=c.version, resource_type="package-version")
        pk.blob_row(s, domain.id, meta_info)  # the PEP 658 metadata file, served at {file}.metadata
        attrs = {"filetype": form.get("filetype") or ("bdist_wheel" if c.dist.kind == "wheel" else "sdist"),
                 "metadata_sha256": meta_info.sha256, "metadata_size": meta_info.size}
        if c.core.requires_python:
            attrs["requires_python"] = c.core.requires_python
        if form.get("pyversion"):
            attrs["pyversion"] = form.get("pyversion")
        attrs["blake2_256"] = form.blake2_256
        _asset, created = pk.put_asset(s, domain, ver, c.dist.filename, info, attributes=attrs)
        if created and not (ver.attributes or {}).get("requires_python") and c.core.requires_python:
            ver.attributes = {**(ver.attributes or {}), "requires_python": c.core.requires_python}
        return created


async def upload(dp) -> tuple[int, str]:
    """Handle one `file_upload`; returns (status, message). Raises ArcaError for refusals."""
    await dp.require("codeartifact:PublishPackageVersion")
    form = await read_form(dp)
    try:
        dist, version = check_form(form)
        stored_sha, status = await run_in_threadpool(_existing_sha256, dp.arca, dp.repo, dist, version)
        if stored_sha is not None:
            if stored_sha == form.info.sha256:
                return 200, f"{dist.filename} is already stored with identical content\n"
            raise Conflict(f"File already exists: {dist.filename} is stored with different content; "
                           "published files are immutable (upload a new version)")
        if status in CLOSED_STATUSES:
            raise Conflict(f"Version {version} of {dist.name} is {status}; files cannot be added to it")
        checked = await run_in_threadpool(check_archive, form, dist, version)
        info = await _commit_blob(dp.arca, form)
        meta_info = await run_in_threadpool(dp.arca.blobs.put_bytes, checked.metadata)
        try:
            created = await run_in_threadpool(_write_rows, dp, checked, form, info, meta_info)
        except Conflict as exc:
            if "already exists" in exc.message and not exc.message.startswith("File already exists"):
                raise Conflict(f"File already exists: {exc.message}") from None
            raise
    finally:
        form.discard()
    if created:
        return 200, f"Stored {dist.filename} ({dist.name} {version})\n"
    return 200, f"{dist.filename} is already stored with identical content\n"
