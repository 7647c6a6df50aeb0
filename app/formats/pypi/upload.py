"""twine's legacy upload API: the multipart form (`:action=file_upload`) and its rules.

`FormReader` parses the body as it arrives: the small text fields are kept in memory, the
`content` part goes straight to a staging file while every digest is computed. The rules (form
fields, file name, archive, core metadata, digests) are checked before anything is kept."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import parse_options_header

from app.domain import sigstore
from app.domain.errors import PayloadTooLarge, ValidationError
from app.formats.pypi import dists
from app.storage.base import BlobInfo, Hasher

FORM_FIELDS_MAX = 16 * 1024 * 1024  # all text fields together (long descriptions included)
FILETYPES = {"bdist_wheel": "wheel", "sdist": "sdist"}
DIGESTS = ("sha256_digest", "blake2_256_digest", "md5_digest")


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


class FormReader:
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
    return _checked(form.spool, dist, version, f"{form.get('name')!r}", f"{form.get('version')!r}")


def check_dist(path, filename: str) -> Checked:
    """A distribution file on its own (an import): its name, then its core metadata against the
    name (runs in a worker thread). The same rules as an upload, with the file name as the form."""
    dist = dists.parse_filename(filename)
    return _checked(path, dist, str(dist.version), dist.name, str(dist.version))


def _checked(path, dist: dists.DistFile, version: str, name_said: str, version_said: str) -> Checked:
    metadata = dists.read_core_metadata(path, dist)
    core = dists.parse_core_metadata(metadata, dist.filename)
    what = "METADATA" if dist.kind == "wheel" else "PKG-INFO"
    try:
        meta_name = dists.check_name(core.name)
    except ValidationError:
        raise ValidationError(f"{what} in {dist.filename} has an invalid Name {core.name!r}") from None
    if meta_name != dist.name:
        raise ValidationError(f"{what} in {dist.filename} says Name: {core.name}, but the upload is for "
                              f"{name_said}")
    if dists.check_version(core.version) != dist.version:
        raise ValidationError(f"{what} in {dist.filename} says Version: {core.version}, but the upload is for "
                              f"{version_said}")
    return Checked(dist=dist, version=version, metadata=metadata, core=core)


# ---- PEP 740 attestations ------------------------------------------------------------------------

MAX_ATTESTATIONS = 8


def check_attestations(form: Form, filename: str) -> list[dict]:
    """The `attestations` field (`twine upload --attestations`): a JSON list of PEP 740 attestation
    objects, each for this very file (name and SHA-256) and signed by its certificate; [] without it."""
    raw = form.get("attestations")
    if raw is None:
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        raise ValidationError("The attestations field is not JSON") from None
    if not isinstance(items, list) or not items:
        raise ValidationError("The attestations field must be a non-empty JSON list of attestation objects")
    if len(items) > MAX_ATTESTATIONS:
        raise ValidationError(f"At most {MAX_ATTESTATIONS} attestations per file")
    checked = [sigstore.check_attestation(a, filename, form.info.sha256) for a in items]
    types = [c.predicate_type for c in checked]
    if len(set(types)) != len(types):
        raise ValidationError("Two attestations for one file have the same predicateType")
    return [c.document for c in checked]


def provenance_object(attestations: list[dict], uploader: str) -> bytes:
    """PEP 740's provenance object for a file, as the Integrity API serves it. Arca has no Trusted
    Publishing: the publisher is the Arca user whose token uploaded it."""
    doc = {"version": 1, "attestation_bundles": [{"publisher": {"kind": "Arca", "claims": {"uploader": uploader}},
                                                  "attestations": attestations}]}
    return json.dumps(doc, separators=(",", ":")).encode()


# ---- what is recorded ---------------------------------------------------------------------------

def dist_attributes(c: Checked, metadata_sha256: str, metadata_size: int, filetype: str | None = None,
                    provenance: BlobInfo | None = None) -> dict:
    """What every stored distribution file records: its type, its PEP 658 metadata file, Requires-Python,
    and the PEP 740 provenance object when attestations came with it."""
    attrs = {"filetype": filetype or ("bdist_wheel" if c.dist.kind == "wheel" else "sdist"),
             "metadata_sha256": metadata_sha256, "metadata_size": metadata_size}
    if provenance is not None:
        attrs["provenance_sha256"], attrs["provenance_size"] = provenance.sha256, provenance.size
    if c.core.requires_python:
        attrs["requires_python"] = c.core.requires_python
    return attrs


def file_attributes(c: Checked, form: Form, metadata_sha256: str, metadata_size: int,
                    provenance: BlobInfo | None = None) -> dict:
    """The asset's attributes: file type, PEP 658 metadata file, Requires-Python, provenance, digests."""
    attrs = dist_attributes(c, metadata_sha256, metadata_size, form.get("filetype"), provenance)
    if form.get("pyversion"):
        attrs["pyversion"] = form.get("pyversion")
    attrs["blake2_256"] = form.blake2_256
    return attrs
