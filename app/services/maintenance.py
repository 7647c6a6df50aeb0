"""Storage maintenance for `arca admin`: gc, fsck and migrate-storage, on either backend.

What references a blob: an `Asset` row (`Asset.blob_id`), or a SHA-256 named in the JSON
`attributes` of an asset, version or package (e.g. PyPI's PEP 658 metadata file is a blob whose
hash is `Asset.attributes["metadata_sha256"]`). Any 64-hex string found anywhere in those
attributes counts as a reference: gc errs on the side of keeping.

Blob rows are per domain; the stored object is shared by every domain with the same content.

Each job reports how far it got through `progress(phase, done, total)` (total None while unknown):
the CLI draws it. Every step is complete on its own (a row deleted in its own transaction, an
object deleted after its re-check, a blob copied to a temp name and committed when verified), so a
job stopped anywhere (Ctrl-C, SIGTERM) leaves nothing half-done and is simply run again."""

from __future__ import annotations

import contextlib
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator

import anyio
from sqlalchemy import delete, exists, func, select
from sqlalchemy.exc import IntegrityError

from app.db.models import Asset, Blob, Domain, Package, PackageVersion, Repository
from app.domain.errors import ValidationError
from app.storage import BlobStore, open_blob_store
from app.storage.base import Hasher

HEX64 = re.compile(r"^[0-9a-f]{64}$")
WORKERS = 8

Progress = Callable[[str, int, "int | None"], None]


def no_progress(phase: str, done: int, total: int | None) -> None:
    pass


@contextlib.contextmanager
def _parallel(fn, items: list, workers: int) -> Iterator[Iterator]:
    """`fn` over `items` in threads, results in order; when the caller stops early (an interrupt),
    the calls not started are cancelled and the running ones finish (each is complete on its own)."""
    pool = ThreadPoolExecutor(workers)
    try:
        yield pool.map(fn, items)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _counting(items: Iterable, phase: str, progress: Progress) -> Iterator:
    """`items`, reporting how many went by (their number is unknown until the end)."""
    n = 0
    progress(phase, 0, None)
    for item in items:
        yield item
        n += 1
        progress(phase, n, None)


def open_target(settings, spec: str) -> BlobStore:
    """A blob store for `spec` ('file' = the data dir's blobs/, or s3://bucket/prefix)."""
    try:
        return open_blob_store(settings, spec)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


# ---- references ------------------------------------------------------------------------------------

def _hashes_in(value, out: set) -> None:
    if isinstance(value, str):
        if len(value) == 64 and HEX64.match(value):
            out.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _hashes_in(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _hashes_in(v, out)


def attribute_references(arca) -> set[str]:
    """Every SHA-256 named in asset, version or package attributes."""
    out: set[str] = set()
    with arca.db.read() as s:
        for column in (Asset.attributes, PackageVersion.attributes, Package.attributes):
            for (attrs,) in s.execute(select(column)).yield_per(1000):
                if attrs:
                    _hashes_in(attrs, out)
    return out


def _live_hashes(arca, excluding: set[int] = frozenset()) -> set[str]:
    """SHA-256s with a Blob row in some domain (rows in `excluding` do not count: dry runs)."""
    with arca.db.read() as s:
        if not excluding:
            return set(s.scalars(select(Blob.sha256).distinct()))
        return {sha for blob_id, sha in s.execute(select(Blob.id, Blob.sha256)) if blob_id not in excluding}


def _has_row(arca, sha256: str) -> bool:
    with arca.db.read() as s:
        return bool(s.scalar(select(exists().where(Blob.sha256 == sha256))))


# ---- gc --------------------------------------------------------------------------------------------

def gc(arca, grace_seconds: int = 3600, dry_run: bool = False, progress: Progress = no_progress) -> dict:
    """Delete unreferenced blobs older than the grace period.

    1. Blob rows (per domain) that no asset and no attribute references and that were created
       before the cut-off are deleted, each only if still unreferenced at that moment (a racing
       publish that attaches an asset wins: the foreign key refuses the delete).
    2. Stored objects that no Blob row in any domain names and that were written (or reused by
       an upload, which refreshes their time) before the cut-off are deleted. An upload in flight
       has stored its object but not yet committed its row: its object is young, so it is kept.
    3. Temp files / S3 multipart uploads older than the cut-off (left by crashed processes)."""
    if grace_seconds < 0:
        raise ValidationError("--grace-seconds must not be negative")
    store = arca.blobs
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=grace_seconds)
    attr_refs = attribute_references(arca)
    report = {"dry_run": dry_run, "grace_seconds": grace_seconds, "store": store.describe(),
              "blob_rows_deleted": 0, "blob_rows_kept_young": 0, "objects_deleted": 0,
              "objects_kept_young": 0, "bytes_freed": 0, "temp_cleaned": 0, "deleted": []}

    # 1. rows
    unreferenced = ~exists().where(Asset.blob_id == Blob.id)
    with arca.db.read() as s:
        candidates = s.execute(select(Blob.id, Blob.sha256, Blob.created_at, Domain.name)
                               .join(Domain, Domain.id == Blob.domain_id).where(unreferenced)).all()
    would_delete: set[int] = set()
    progress("blob rows", 0, len(candidates))
    for i, (blob_id, sha256, created, _domain) in enumerate(candidates, 1):
        progress("blob rows", i, len(candidates))
        if sha256 in attr_refs:
            continue
        if created >= cutoff:
            report["blob_rows_kept_young"] += 1
            continue
        if dry_run:
            report["blob_rows_deleted"] += 1
            would_delete.add(blob_id)
            continue

        try:
            with arca.db.session() as s:
                n = s.execute(delete(Blob).where(Blob.id == blob_id, unreferenced)).rowcount
        except IntegrityError:  # an asset was attached meanwhile
            n = 0
        report["blob_rows_deleted"] += n

    # 2. objects
    live = _live_hashes(arca, excluding=would_delete)
    for sha256, st in _counting(store.iter_stats(), "stored objects", progress):
        if sha256 in live or sha256 in attr_refs:
            continue
        if st.modified >= cutoff:
            report["objects_kept_young"] += 1
            continue
        # Re-check right before deleting: a row committed since the listing, or an upload that
        # reused this object (and refreshed its time), keeps it.
        if not dry_run and _has_row(arca, sha256):
            continue
        st = store.stat(sha256)
        if st is None or st.modified >= cutoff:
            continue
        if not dry_run:
            store.delete(sha256)
        report["objects_deleted"] += 1
        report["bytes_freed"] += st.size
        report["deleted"].append(sha256)

    # 3. temp leftovers
    sweep = store.clean_temp(cutoff, dry_run)
    report["temp_cleaned"], report["temp_bytes"] = sweep.count, sweep.bytes
    return report


# ---- fsck ------------------------------------------------------------------------------------------

def _check_blob(store, expect: dict) -> tuple[str, str | None]:
    """('ok'|'missing'|'corrupt', detail) after re-reading and re-hashing the whole blob."""
    sha256 = expect["sha256"]
    hasher = Hasher()
    try:
        for chunk in store.open_chunks(sha256):
            hasher.update(chunk)
    except FileNotFoundError:
        return "missing", "the stored object does not exist"
    info = hasher.info()
    problems = []
    if info.sha256 != sha256:
        problems.append(f"SHA-256 is {info.sha256}")
    if expect.get("size") is not None and info.size != expect["size"]:
        problems.append(f"size is {info.size}, expected {expect['size']}")
    for alg in ("sha1", "md5", "sha512"):
        if expect.get(alg) and getattr(info, alg) != expect[alg]:
            problems.append(f"{alg} differs")
    return ("corrupt", "; ".join(problems)) if problems else ("ok", None)


def _asset_labels(arca, sha256s: Iterable[str]) -> dict[str, list[dict]]:
    """Who uses each blob: {sha256: [{domain, repository, format, namespace?, package, version, asset}]}."""
    wanted = set(sha256s)
    out: dict[str, list[dict]] = {h: [] for h in wanted}
    if not wanted:
        return out
    q = (select(Blob.sha256, Domain.name, Repository.name, Package.format, Package.namespace, Package.name,
                PackageVersion.version, PackageVersion.status, Asset.name, Asset.attributes)
         .select_from(Asset).join(Blob, Blob.id == Asset.blob_id)
         .join(PackageVersion, PackageVersion.id == Asset.package_version_id)
         .join(Package, Package.id == PackageVersion.package_id)
         .join(Repository, Repository.id == Package.repository_id)
         .join(Domain, Domain.id == Repository.domain_id))

    def label(dom, repo, fmt, ns, pkg, ver, status, asset, via=None):
        d = {"domain": dom, "repository": repo, "format": fmt, "package": pkg, "version": ver,
             "status": status, "asset": asset}
        if ns:
            d["namespace"] = ns
        if via:
            d["via"] = via
        return d

    with arca.db.read() as s:
        for sha, dom, repo, fmt, ns, pkg, ver, status, asset, attrs in s.execute(q).yield_per(1000):
            if sha in wanted:
                out[sha].append(label(dom, repo, fmt, ns, pkg, ver, status, asset))
            for key, value in (attrs or {}).items():
                if isinstance(value, str) and value in wanted:
                    out[value].append(label(dom, repo, fmt, ns, pkg, ver, status, asset, via=f"attributes.{key}"))
    return out


def fsck(arca, progress: Progress = no_progress) -> dict:
    """Re-read every referenced blob, recompute its hashes and size; report missing and corrupt
    blobs with the assets that use them (`ok` is False when there are any), and the temporary
    files uploads left behind (an interrupted upload's; `gc` removes them after its grace period)."""
    store = arca.blobs
    attr_refs = attribute_references(arca)
    referenced = exists().where(Asset.blob_id == Blob.id)
    expected: dict[str, dict] = {}
    with arca.db.read() as s:
        rows = s.execute(select(Blob.sha256, Blob.size, Blob.sha1, Blob.md5, Blob.sha512, referenced)).all()
        n_assets = s.scalar(select(func.count()).select_from(Asset))
    unreferenced_rows = 0
    for sha256, size, sha1, md5, sha512, is_ref in rows:
        if not is_ref and sha256 not in attr_refs:
            unreferenced_rows += 1
            continue
        cur = expected.setdefault(sha256, {"sha256": sha256, "size": size, "sha1": sha1, "md5": md5,
                                           "sha512": sha512})
        if (cur["size"], cur["sha1"], cur["md5"], cur["sha512"]) != (size, sha1, md5, sha512):
            cur["inconsistent_rows"] = True
    # A hash named in attributes without any Blob row is not treated as a blob (it may be any
    # digest a format records); with a row, it is checked above like an asset's blob.
    results: dict[str, tuple[str, str | None]] = {}
    progress("blobs", 0, len(expected))
    with _parallel(lambda e: _check_blob(store, e), list(expected.values()), WORKERS) as checks:
        for i, (sha256, result) in enumerate(zip(expected, checks), 1):
            results[sha256] = result
            progress("blobs", i, len(expected))
    for sha256, exp in expected.items():
        if exp.get("inconsistent_rows") and results[sha256][0] == "ok":
            results[sha256] = ("corrupt", "blob rows in different domains disagree about this blob's hashes")
    bad = {h: r for h, r in results.items() if r[0] != "ok"}
    users = _asset_labels(arca, bad)
    missing, corrupt = [], []
    for sha256, (kind, detail) in sorted(bad.items()):
        entry = {"sha256": sha256, "problem": detail, "assets": users.get(sha256, [])}
        (missing if kind == "missing" else corrupt).append(entry)
    stored = 0
    orphans = 0
    for sha256, _st in _counting(store.iter_stats(), "stored objects", progress):
        stored += 1
        if sha256 not in expected and sha256 not in attr_refs and not _has_row(arca, sha256):
            orphans += 1
    temp = store.clean_temp(datetime.now(timezone.utc), dry_run=True)  # counts, removes nothing
    return {"ok": not bad, "store": store.describe(), "blobs_checked": len(expected),
            "bytes_checked": sum(e["size"] or 0 for e in expected.values()), "assets": n_assets,
            "missing": missing, "corrupt": corrupt, "stored_objects": stored,
            "unreferenced_blob_rows": unreferenced_rows, "unreferenced_objects": orphans,
            "temp_files": temp.count, "temp_bytes": temp.bytes}


# ---- migrate-storage -------------------------------------------------------------------------------

def copy_blob(source, target, sha256: str) -> tuple[str, int | str]:
    """(outcome, size copied or the reason it is corrupt): present, missing, corrupt or copied; the copy is
    verified against `sha256` on the way in (also `arca admin export` and `import-domain`)."""
    if target.exists(sha256):
        return "present", 0
    if not source.exists(sha256):
        return "missing", 0

    async def chunks():
        for chunk in source.open_chunks(sha256):
            yield chunk

    async def put():
        return await target.put_stream(chunks(), expected={"sha256": sha256})

    try:
        info = anyio.run(put)
    except ValidationError as exc:  # the source's bytes do not hash to their name: not copied
        return "corrupt", exc.message
    return "copied", info.size


def migrate_storage(arca, target_spec: str, progress: Progress = no_progress) -> dict:
    """Copy every blob the database references (and every other stored object) from the current
    store to `target_spec`. Each copy is verified by SHA-256 on the way in; blobs already in the
    target are skipped, so an interrupted run is simply run again."""
    source = arca.blobs
    target = open_target(arca.settings, target_spec)
    if source.describe() == target.describe():
        raise ValidationError(f"The target {target_spec} is the current blob store")
    target.ping()
    hashes: list[str] = []
    seen: set[str] = set()
    with arca.db.read() as s:
        for (h,) in s.execute(select(Blob.sha256).distinct().order_by(Blob.sha256)):
            hashes.append(h)
            seen.add(h)
    for h, _st in source.iter_stats():
        if h not in seen:
            hashes.append(h)
            seen.add(h)
    counts = {"copied": 0, "present": 0, "missing": 0, "corrupt": 0}
    copied_bytes = 0
    missing: list[str] = []
    corrupt: list[dict] = []
    progress("blobs", 0, len(hashes))
    with _parallel(lambda h: copy_blob(source, target, h), hashes, 4) as copies:
        for i, (sha256, (outcome, size)) in enumerate(zip(hashes, copies), 1):
            counts[outcome] += 1
            if outcome == "copied":
                copied_bytes += size
            elif outcome == "missing":
                missing.append(sha256)
            elif outcome == "corrupt":
                corrupt.append({"sha256": sha256, "problem": size})
            progress("blobs", i, len(hashes))
    return {"source": source.describe(), "target": target.describe(), "blobs": len(hashes),
            "copied": counts["copied"], "already_present": counts["present"], "bytes_copied": copied_bytes,
            "missing_in_source": missing, "corrupt_in_source": corrupt, "ok": not missing and not corrupt,
            "next_step": f"set ARCA_BLOB_STORE={target_spec} and restart every arca serve process"}
