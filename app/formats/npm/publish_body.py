"""The npm publish body: JSON whose `_attachments.{file}.data` holds the tarball in base64.

`BodyScanner` reads the body chunk by chunk. Everything except attachment data is kept as a
small JSON "skeleton" (parsed with json.loads at the end); attachment data is base64-decoded
as it arrives into a temp file, hashing on the way. So memory holds the manifest, never the
tarball, and the whole body is bounded by a size limit that is checked while reading.

Then `check_publish` holds npm's publish rules (one version, one attachment, digests, tarball
contents agree with the manifest) as pure functions over the parsed document and the file."""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import os
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from app.domain.errors import PayloadTooLarge, ValidationError
from app.formats.npm import names as npm_names
from app.storage.base import BlobInfo, Hasher

_STRUCT = re.compile(rb'[{}\[\]:,"]')
_STRING_END = re.compile(rb'["\\]')
_MAX_KEY = 64 * 1024
_MAX_ATTACHMENTS = 4
PACKAGE_JSON = "package/package.json"
PROVENANCE_SUFFIX = ".sigstore"
_MAX_PACKAGE_JSON = 16 * 1024 * 1024
_MAX_TAR_MEMBERS = 200_000
_IN_CHUNK = 64 * 1024
_OUT_CHUNK = 1024 * 1024  # most a single zlib call may produce


@dataclass
class Attachment:
    name: str
    path: Path
    info: BlobInfo | None = None


@dataclass
class _Frame:
    is_obj: bool
    key: str | None = None
    expect_key: bool = True


@dataclass
class BodyScanner:
    """Incremental reader of a publish body (see the module docstring)."""

    limit: int
    temp_path_factory: object  # () -> Path, a temp file the blob store can later commit
    skeleton: bytearray = field(default_factory=bytearray)
    attachments: list[Attachment] = field(default_factory=list)
    size: int = 0
    _stack: list[_Frame] = field(default_factory=list)
    _mode: str = "struct"  # struct | key | string | data
    _escape: bool = False
    _key_buf: bytearray = field(default_factory=bytearray)
    _b64_rest: bytes = b""
    _fh: object = None
    _hasher: Hasher | None = None

    # -- feeding -----------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge(
                f"The publish body is larger than this registry's limit of {self.limit} bytes "
                "(ARCA_NPM_MAX_PUBLISH_BYTES); the tarball is base64 in JSON, about 4/3 of its size")
        pos, n = 0, len(chunk)
        while pos < n:
            if self._mode == "struct":
                pos = self._struct(chunk, pos)
            else:
                pos = self._string(chunk, pos)

    def finish(self) -> dict:
        if self._mode != "struct" or self._stack:
            raise ValidationError("The publish body is not complete JSON")
        self._close_attachment()
        try:
            doc = json.loads(bytes(self.skeleton))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"The publish body is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ValidationError("The publish body must be a JSON object")
        return doc

    def cleanup(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        for a in self.attachments:
            a.path.unlink(missing_ok=True)

    # -- structure outside strings -------------------------------------------------------------
    def _struct(self, chunk: bytes, pos: int) -> int:
        m = _STRUCT.search(chunk, pos)
        if m is None:
            self.skeleton += chunk[pos:]
            return len(chunk)
        i = m.start()
        self.skeleton += chunk[pos:i]
        c = chunk[i:i + 1]
        top = self._stack[-1] if self._stack else None
        if c == b'"':
            if top is not None and top.is_obj and top.expect_key:
                self._mode, self._key_buf = "key", bytearray()
            elif self._is_attachment_data():
                self._open_attachment(top)
                self.skeleton += b'"'
                self._mode = "data"
                return i + 1
            else:
                self._mode = "string"
            self.skeleton += b'"'
            return i + 1
        if c in (b"{", b"["):
            if len(self._stack) > 64:
                raise ValidationError("The publish body nests too deeply")
            self._stack.append(_Frame(is_obj=c == b"{"))
        elif c in (b"}", b"]"):
            if not self._stack or self._stack[-1].is_obj != (c == b"}"):
                raise ValidationError("The publish body is not valid JSON")
            self._stack.pop()
        elif c == b":" and top is not None and top.is_obj:
            top.expect_key = False
        elif c == b"," and top is not None and top.is_obj:
            top.expect_key, top.key = True, None
        self.skeleton += c
        return i + 1

    def _is_attachment_data(self) -> bool:
        """Base64 tarball data, streamed to a file. A provenance bundle (`*.sigstore`, which npm
        sends as JSON text, not base64) stays in the skeleton: it is a few kilobytes."""
        s = self._stack
        return (len(s) == 3 and all(f.is_obj for f in s) and s[0].key == "_attachments"
                and s[1].key is not None and not s[1].key.endswith(PROVENANCE_SUFFIX) and s[2].key == "data")

    # -- inside strings ------------------------------------------------------------------------
    def _string(self, chunk: bytes, pos: int) -> int:
        n = len(chunk)
        if self._escape:
            self._escape = False
            self._emit(chunk[pos:pos + 1], escaped=True)
            return pos + 1
        m = _STRING_END.search(chunk, pos)
        if m is None:
            self._emit(chunk[pos:n])
            return n
        i = m.start()
        self._emit(chunk[pos:i])
        if chunk[i:i + 1] == b"\\":
            if self._mode != "data":
                self._emit(b"\\")
            if i + 1 < n:
                self._emit(chunk[i + 1:i + 2], escaped=True)
                return i + 2
            self._escape = True
            return n
        self._end_string()
        return i + 1

    def _emit(self, data: bytes, escaped: bool = False) -> None:
        if not data:
            return
        if self._mode == "string":
            self.skeleton += data
        elif self._mode == "key":
            self._key_buf += data
            if len(self._key_buf) > _MAX_KEY:
                raise ValidationError("A key in the publish body is too long")
        else:
            if escaped and data != b"/":
                raise ValidationError("Attachment data must be plain base64")
            self._decode(data)

    def _end_string(self) -> None:
        if self._mode == "key":
            try:
                key = json.loads(b'"' + bytes(self._key_buf) + b'"')
            except ValueError:
                raise ValidationError("The publish body is not valid JSON (bad key)") from None
            self._stack[-1].key = key
            self.skeleton += self._key_buf
        elif self._mode == "data":
            self._close_attachment()
        self.skeleton += b'"'
        self._mode = "struct"

    # -- attachment data -----------------------------------------------------------------------
    def _open_attachment(self, top: _Frame) -> None:
        if len(self.attachments) >= _MAX_ATTACHMENTS:
            raise ValidationError("A publish must carry exactly one tarball in _attachments")
        path = self.temp_path_factory()
        self.attachments.append(Attachment(name=self._stack[1].key, path=path))
        self._fh = open(path, "wb")
        self._hasher = Hasher()
        self._b64_rest = b""

    def _decode(self, data: bytes) -> None:
        data = self._b64_rest + data
        cut = len(data) - len(data) % 4
        self._b64_rest = data[cut:]
        if cut:
            self._write(data[:cut])

    def _write(self, b64: bytes) -> None:
        try:
            raw = binascii.a2b_base64(b64, strict_mode=True)
        except binascii.Error:
            raise ValidationError("Attachment data is not valid base64") from None
        self._hasher.update(raw)
        self._fh.write(raw)

    def _close_attachment(self) -> None:
        if self._fh is None:
            return
        if self._b64_rest:
            raise ValidationError("Attachment data is not valid base64 (truncated)")
        self._fh.flush()
        os.fsync(self._fh.fileno())  # the blob store renames this file into place as it is
        self._fh.close()
        self._fh = None
        self.attachments[-1].info = self._hasher.info()


# ---- publish rules -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Publish:
    name: str
    version: str
    manifest: dict
    tags: dict
    attachment: Attachment
    expected: dict  # {"sha512": hex, "sha1": hex} as the client declared them
    provenance: str | None = None  # the Sigstore bundle npm publish --provenance attached (JSON text)


def integrity_sha512(integrity: object) -> list[str]:
    """The hex SHA-512 digests listed in an SRI string (`sha512-<base64>` entries)."""
    out = []
    for part in str(integrity or "").split():
        alg, _, value = part.partition("-")
        if alg == "sha512":
            value = value.split("?", 1)[0]
            try:
                out.append(base64.b64decode(value, validate=True).hex())
            except (binascii.Error, ValueError):
                raise ValidationError(f"dist.integrity {part[:40]!r}... is not valid base64") from None
    return out


def check_publish(doc: dict, name: str, scanned: list[Attachment]) -> Publish:
    """npm's publish body → one version with one verified tarball, or ValidationError."""
    versions = doc.get("versions")
    if not isinstance(versions, dict) or len(versions) != 1:
        raise ValidationError("A publish must carry exactly one version in 'versions'")
    version, manifest = next(iter(versions.items()))
    npm_names.check_version(version)
    if not isinstance(manifest, dict):
        raise ValidationError(f"versions[{version!r}] must be an object")
    if manifest.get("name") != name:
        raise ValidationError(f"The manifest names {manifest.get('name')!r} but the URL names {name!r}")
    if manifest.get("version") != version:
        raise ValidationError(f"versions[{version!r}] says version {manifest.get('version')!r}")
    tags = doc.get("dist-tags") or {}
    if not isinstance(tags, dict) or any(not isinstance(v, str) for v in tags.values()):
        raise ValidationError("dist-tags must map tag names to versions")
    for tag, value in tags.items():
        npm_names.check_tag(tag)
        if value != version:
            raise ValidationError(f"dist-tag {tag!r} names {value!r}; a publish may only tag the version "
                                  f"it publishes ({version})")
    return Publish(name, version, manifest, tags, _one_attachment(doc, scanned, name, version),
                   _declared_digests(manifest, version), _provenance(doc, name, version))


def _provenance(doc: dict, name: str, version: str) -> str | None:
    """The provenance bundle attachment `{name}-{version}.sigstore` (npm names it with the scope)."""
    attachments = doc.get("_attachments") if isinstance(doc.get("_attachments"), dict) else {}
    extra = [k for k in attachments if k.endswith(PROVENANCE_SUFFIX)]
    if not extra:
        return None
    if extra != [f"{name}-{version}{PROVENANCE_SUFFIX}"]:
        raise ValidationError(f"The provenance attachment must be named {name}-{version}{PROVENANCE_SUFFIX}")
    data = attachments[extra[0]].get("data") if isinstance(attachments[extra[0]], dict) else None
    if not isinstance(data, str):
        raise ValidationError("The provenance attachment's data must be the Sigstore bundle as JSON text")
    return data


def _one_attachment(doc: dict, scanned: list[Attachment], name: str, version: str) -> Attachment:
    attachments = doc.get("_attachments")
    tarballs = [k for k in attachments if not k.endswith(PROVENANCE_SUFFIX)] if isinstance(attachments, dict) else []
    if len(tarballs) != 1 or len(scanned) != 1:
        raise ValidationError("A publish must carry exactly one tarball in _attachments")
    att = scanned[0]
    bare = name.rsplit("/", 1)[-1]
    if att.name not in (f"{name}-{version}.tgz", f"{bare}-{version}.tgz"):
        raise ValidationError(f"The attachment {att.name!r} is not the tarball of {name}@{version} "
                              f"(expected {name}-{version}.tgz)")
    meta = attachments.get(att.name) or {}
    length = meta.get("length") if isinstance(meta, dict) else None
    if length is not None and length != att.info.size:
        raise ValidationError(f"The attachment says length {length} but decodes to {att.info.size} bytes")
    return att


def _declared_digests(manifest: dict, version: str) -> dict:
    dist = manifest.get("dist")
    if not isinstance(dist, dict):
        raise ValidationError(f"versions[{version!r}].dist is missing: it must carry integrity and shasum")
    sha512 = integrity_sha512(dist.get("integrity"))
    if not sha512:
        raise ValidationError("dist.integrity must contain a sha512 digest of the tarball")
    shasum = dist.get("shasum")
    if not isinstance(shasum, str) or not re.fullmatch(r"[0-9a-fA-F]{40}", shasum):
        raise ValidationError("dist.shasum must be the SHA-1 (40 hex digits) of the tarball")
    return {"sha512": sha512, "sha1": shasum.lower()}


def check_digests(att: Attachment, expected: dict) -> dict:
    """Compare the decoded tarball with dist.integrity / dist.shasum; returns `expected` for the
    blob store (which checks once more while committing)."""
    info = att.info
    if info.sha512 not in expected["sha512"]:
        raise ValidationError("dist.integrity (sha512) does not match the attached tarball")
    if info.sha1 != expected["sha1"]:
        raise ValidationError(f"dist.shasum {expected['sha1']} does not match the attached tarball "
                              f"(sha1 {info.sha1})")
    return {"sha512": info.sha512, "sha1": info.sha1}


class _Inflater(io.RawIOBase):
    """A gzip file decompressed as it is read, at most `limit` bytes out in total. zlib is asked
    for a bounded piece of output at a time, so a tiny gzip that expands enormously costs no
    more than `limit` bytes of work before it is refused (checked on every chunk)."""

    def __init__(self, fh, limit: int):
        self.fh = fh
        self.limit = limit
        self.total = 0
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            if self._z.eof:
                return 0
            data = self._z.unconsumed_tail or self.fh.read(_IN_CHUNK)
            if not data:
                raise EOFError("the gzip stream ends early")
            self._pending = self._z.decompress(data, _OUT_CHUNK)
            self.total += len(self._pending)
            if self.total > self.limit:
                raise PayloadTooLarge(f"The attached tarball unpacks to more than {self.limit} bytes "
                                      "(ARCA_NPM_MAX_UNPACKED_BYTES)")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def check_tarball(path: Path, name: str, version: str, unpacked_limit: int) -> dict:
    """The tarball must be a gzip tar whose package/package.json names `name`@`version`, and
    unpack to at most `unpacked_limit` bytes (every member, and all of them together: the whole
    archive is read, decompressing a bounded piece at a time). Returns that package.json."""
    found = None
    try:
        with open(path, "rb") as raw, tarfile.open(fileobj=io.BufferedReader(_Inflater(raw, unpacked_limit)),
                                                   mode="r|") as tar:
            for count, member in enumerate(tar, 1):
                if count > _MAX_TAR_MEMBERS:
                    raise ValidationError(f"The attached tarball has more than {_MAX_TAR_MEMBERS} entries")
                if member.size > unpacked_limit:
                    raise PayloadTooLarge(f"{member.name} in the attached tarball is larger than {unpacked_limit} "
                                          "bytes (ARCA_NPM_MAX_UNPACKED_BYTES)")
                if member.name.lstrip("./") != PACKAGE_JSON or not member.isfile():
                    continue
                if member.size > _MAX_PACKAGE_JSON:
                    raise ValidationError("package/package.json in the tarball is too large")
                if found is not None:
                    raise ValidationError("The attached tarball has package/package.json twice")
                found = _agree(tar.extractfile(member).read(), name, version)
    except (tarfile.TarError, OSError, EOFError, zlib.error, gzip.BadGzipFile):
        raise ValidationError("The attached tarball is not a gzip-compressed tar archive") from None
    if found is None:
        raise ValidationError("The attached tarball has no package/package.json")
    return found


def read_package_json(path: Path, unpacked_limit: int) -> dict:
    """package/package.json of a tarball whose name and version are not known yet (an import of
    loose tarballs); `check_tarball` then checks the whole archive against what it says."""
    try:
        with open(path, "rb") as raw, tarfile.open(fileobj=io.BufferedReader(_Inflater(raw, unpacked_limit)),
                                                   mode="r|") as tar:
            for count, member in enumerate(tar, 1):
                if count > _MAX_TAR_MEMBERS:
                    break
                if member.name.lstrip("./") == PACKAGE_JSON and member.isfile() and member.size <= _MAX_PACKAGE_JSON:
                    pj = json.loads(tar.extractfile(member).read())
                    if not isinstance(pj, dict) or not isinstance(pj.get("name"), str) or \
                            not isinstance(pj.get("version"), str):
                        raise ValidationError("package/package.json must name the package and its version")
                    return pj
    except (tarfile.TarError, OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, UnicodeDecodeError):
        raise ValidationError("The tarball is not a gzip-compressed tar archive with a readable "
                              "package/package.json") from None
    raise ValidationError("The tarball has no package/package.json")


def _agree(data: bytes, name: str, version: str) -> dict:
    try:
        pj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("package/package.json in the tarball is not valid JSON") from None
    if not isinstance(pj, dict):
        raise ValidationError("package/package.json in the tarball is not a JSON object")
    if pj.get("name") != name or pj.get("version") != version:
        raise ValidationError(f"The tarball's package.json is {pj.get('name')}@{pj.get('version')}, "
                              f"not {name}@{version}")
    return pj
