"""`arca admin gc / fsck / migrate-storage` through the real CLI against real servers, on the disk
store and on S3 (moto's standalone server), and a server running on S3 end to end."""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from app.config import settings_from_env
from app.db.models import Blob, Domain, Repository, utcnow
from app.domain.coords import Coordinates
from app.domain.status import PUBLISHED
from app.services import packages, rows as pk
from app.services.context import Arca
from app.storage.file import FileBlobStore
from app.storage.s3 import S3BlobStore
from tests.support.moto_server import CREDS, start_moto
from tests.support.server import refused_port, start_server

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    m = start_moto(tmp_path_factory.mktemp("moto"))
    yield m
    m.stop()


class Setup:
    """A server on one backend, plus an in-process services context on the same DB and store."""

    def __init__(self, server, backend: str, moto=None, bucket: str | None = None):
        self.server, self.backend, self.moto, self.bucket = server, backend, moto, bucket
        self.arca = Arca.from_settings(settings_from_env(server.env), migrate=False)
        if backend == "s3":  # the in-process store gets the dummy credentials explicitly
            self.arca.blobs = S3BlobStore.from_url(server.env["ARCA_BLOB_STORE"], endpoint_url=moto.url, **CREDS)

    def publish(self, domain: str, repo: str, package: str, version: str, files: dict[str, bytes],
                attributes: dict | None = None) -> dict:
        """Store blobs, then the rows (as a format does), Published; returns {name: sha256}."""
        infos = {name: self.arca.blobs.put_bytes(data) for name, data in files.items()}
        with self.arca.db.session() as s:
            dom = s.scalar(select(Domain).where(Domain.name == domain))
            rep = s.scalar(select(Repository).where(Repository.domain_id == dom.id, Repository.name == repo))
            p = pk.get_or_create_package(s, rep, Coordinates("maven", "com.example", package))
            pk.bump(s, p)
            ver, _ = pk.get_or_create_version(s, p, version, status=PUBLISHED)
            for name, info in infos.items():
                pk.put_asset(s, dom, ver, name, info, attributes=(attributes or {}).get(name))
        return {name: info.sha256 for name, info in infos.items()}

    def blob_row(self, domain: str, data: bytes) -> None:
        """A stored blob with a Blob row but no asset (like PyPI's PEP 658 metadata file)."""
        info = self.arca.blobs.put_bytes(data)
        with self.arca.db.session() as s:
            dom = s.scalar(select(Domain).where(Domain.name == domain))
            pk.blob_row(s, dom.id, info)

    def delete_version(self, domain: str, repo: str, package: str, version: str) -> None:
        with self.arca.db.session() as s:
            dom = s.scalar(select(Domain).where(Domain.name == domain))
            rep = s.scalar(select(Repository).where(Repository.domain_id == dom.id, Repository.name == repo))
            p = pk.get_package(s, rep, Coordinates("maven", "com.example", package))
            assert packages.remove(s, p, [version])["successfulVersions"]

    def age_rows(self, sha256: str, seconds: int) -> None:
        with self.arca.db.session() as s:
            s.execute(update(Blob).where(Blob.sha256 == sha256)
                      .values(created_at=utcnow() - timedelta(seconds=seconds)))

    def age_object(self, sha256: str, seconds: int) -> bool:
        """Backdate a stored object (possible on disk only; S3 sets LastModified itself)."""
        if isinstance(self.arca.blobs, FileBlobStore):
            t = utcnow().timestamp() - seconds
            os.utime(self.arca.blobs.path_for(sha256), (t, t))
            return True
        return False

    def stored(self) -> set[str]:
        return {sha256 for sha256, _stat in self.arca.blobs.iter_stats()}

    def row_hashes(self) -> set[str]:
        with self.arca.db.read() as s:
            return set(s.scalars(select(Blob.sha256)))

    def get_asset(self, domain: str, repo: str, package: str, version: str, asset: str) -> bytes:
        """Through the server's control plane (it streams from the server's blob store)."""
        resp = self.server.boto().get_package_version_asset(
            domain=domain, repository=repo, format="maven", namespace="com.example", package=package,
            packageVersion=version, asset=asset)
        return resp["asset"].read()

    def corrupt(self, sha256: str, data: bytes) -> None:
        b = self.arca.blobs
        if isinstance(b, FileBlobStore):
            b.path_for(sha256).write_bytes(data)
        else:
            b.client.put_object(Bucket=b.bucket, Key=b.key_for(sha256), Body=data)

    def admin_json(self, *args: str, expect_rc: int = 0) -> dict:
        proc = self.server.admin(*args, check=False)
        assert proc.returncode == expect_rc, f"arca admin {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout)

    def close(self):
        self.arca.db.dispose()
        self.server.stop()


def _setup(tmp_path, backend: str, moto=None) -> Setup:
    env, bucket = {}, None
    if moto is not None:
        env.update(moto.env())
    if backend == "s3":
        bucket = moto.new_bucket()
        env["ARCA_BLOB_STORE"] = f"s3://{bucket}/arca"
    else:
        env["ARCA_BLOB_STORE"] = "file"  # also in the suite's S3 phase: this case is about the disk
    return Setup(start_server(tmp_path / "srv", env=env), backend, moto, bucket)


@pytest.fixture(params=["file", "s3"])
def setup(request, tmp_path):
    moto = request.getfixturevalue("moto") if request.param == "s3" else None
    st = _setup(tmp_path, request.param, moto)
    yield st
    st.close()


def test_gc_collects_unreferenced_old_blobs_only(setup, unique):
    d, r = f"d{unique}", "repo"
    setup.server.create_repo(d, r)
    kept = setup.publish(d, r, "kept", "1.0", {"kept-1.0.jar": b"referenced jar " + unique.encode(),
                                               "kept-1.0.pom": b"<project/>" + unique.encode()})
    # A blob referenced only from an asset's attributes (PEP 658 style), with an old row.
    meta = b"Metadata-Version: 2.1\n" + unique.encode()
    meta_sha = hashlib.sha256(meta).hexdigest()
    setup.blob_row(d, meta)
    setup.publish(d, r, "kept", "2.0", {"kept-2.0.jar": b"second " + unique.encode()},
                  attributes={"kept-2.0.jar": {"metadata_sha256": meta_sha}})
    setup.age_rows(meta_sha, 7200)
    # A version deleted long ago: its blob row and object are garbage.
    gone = setup.publish(d, r, "gone", "1.0", {"gone-1.0.jar": b"deleted jar " + unique.encode()})
    gone_sha = gone["gone-1.0.jar"]
    setup.delete_version(d, r, "gone", "1.0")
    setup.age_rows(gone_sha, 7200)
    setup.age_object(gone_sha, 7200)
    # An upload in flight: stored a moment ago, its row not yet committed → must survive.
    young = setup.arca.blobs.put_bytes(b"upload in flight " + unique.encode()).sha256
    # An object with no row, written long ago (a crashed upload's leftover).
    old_orphan = setup.arca.blobs.put_bytes(b"old orphan " + unique.encode()).sha256
    on_disk = setup.age_object(old_orphan, 7200)
    before = setup.stored()

    dry = setup.admin_json("gc", "--dry-run")
    assert dry["dry_run"] is True and dry["blob_rows_deleted"] == 1
    assert setup.stored() == before and gone_sha in setup.row_hashes()

    out = setup.admin_json("gc")  # default grace: one hour
    assert out["blob_rows_deleted"] == 1 and gone_sha not in setup.row_hashes()
    stored = setup.stored()
    assert young in stored and meta_sha in stored and set(kept.values()) <= stored
    if on_disk:  # objects could be backdated: the old ones are gone already
        assert out["objects_deleted"] == 2 and set(out["deleted"]) == {gone_sha, old_orphan}
        assert gone_sha not in stored and old_orphan not in stored
    else:  # S3 objects are all younger than an hour: kept by the grace period
        assert out["objects_deleted"] == 0 and {gone_sha, old_orphan} <= stored
        assert out["objects_kept_young"] == 3

    out = setup.admin_json("gc", "--grace-seconds", "0")
    stored = setup.stored()
    assert young not in stored and gone_sha not in stored and old_orphan not in stored
    assert meta_sha in stored and set(kept.values()) <= stored and meta_sha in setup.row_hashes()
    assert setup.get_asset(d, r, "kept", "1.0", "kept-1.0.jar") == b"referenced jar " + unique.encode()
    assert setup.admin_json("fsck")["ok"] is True


def test_gc_keeps_object_shared_with_another_domain(setup, unique):
    """The object is shared by content across domains: deleting one domain's row keeps it."""
    d1, d2 = f"a{unique}", f"b{unique}"
    setup.server.create_repo(d1, "rr")
    setup.server.create_repo(d2, "rr")
    data = b"shared across domains " + unique.encode()
    sha = setup.publish(d1, "rr", "lib", "1.0", {"lib-1.0.jar": data})["lib-1.0.jar"]
    setup.publish(d2, "rr", "lib", "1.0", {"lib-1.0.jar": data})
    setup.delete_version(d1, "rr", "lib", "1.0")
    setup.age_rows(sha, 7200)
    setup.age_object(sha, 7200)
    out = setup.admin_json("gc", "--grace-seconds", "0")
    assert out["blob_rows_deleted"] == 1 and sha not in out["deleted"]
    assert sha in setup.stored() and sha in setup.row_hashes()
    assert setup.get_asset(d2, "rr", "lib", "1.0", "lib-1.0.jar") == data


def test_fsck_reports_corrupt_and_missing_blobs(setup, unique):
    d, r = f"d{unique}", "repo"
    setup.server.create_repo(d, r)
    a = setup.publish(d, r, "app", "1.0", {"app-1.0.jar": b"good jar", "app-1.0.pom": b"good pom"})
    b = setup.publish(d, r, "lib", "3.1", {"lib-3.1.jar": os.urandom(9 * MiB)})
    clean = setup.admin_json("fsck")
    assert clean["ok"] is True and clean["missing"] == [] and clean["corrupt"] == []
    assert clean["blobs_checked"] == 3 and clean["bytes_checked"] == 16 + 9 * MiB

    setup.corrupt(a["app-1.0.jar"], b"evil jar")  # same size, other bytes
    setup.arca.blobs.delete(b["lib-3.1.jar"])
    out = setup.admin_json("fsck", expect_rc=1)
    assert out["ok"] is False
    (corrupt,) = out["corrupt"]
    assert corrupt["sha256"] == a["app-1.0.jar"] and "SHA-256 is" in corrupt["problem"]
    assert corrupt["assets"] == [{"domain": d, "repository": r, "format": "maven", "namespace": "com.example",
                                  "package": "app", "version": "1.0", "status": "Published",
                                  "asset": "app-1.0.jar"}]
    (missing,) = out["missing"]
    assert missing["sha256"] == b["lib-3.1.jar"]
    assert [x["asset"] for x in missing["assets"]] == ["lib-3.1.jar"]


def test_migrate_storage_disk_to_s3_then_serve_from_s3(tmp_path, moto, unique):
    st = _setup(tmp_path, "file", moto)
    try:
        d, r = f"d{unique}", "repo"
        st.server.create_repo(d, r)
        big = os.urandom(12 * MiB)
        files = {"big-1.0.jar": big, "big-1.0.pom": b"<project>big</project>"}
        shas = st.publish(d, r, "big", "1.0", files)
        shas |= st.publish(d, r, "small", "0.1", {"small-0.1.jar": b"small"})
        orphan = st.arca.blobs.put_bytes(b"an object without a row").sha256
        bucket = moto.new_bucket()
        target = f"s3://{bucket}/migrated"

        first = st.admin_json("migrate-storage", "--to", target)
        assert first["ok"] is True and first["blobs"] == 4
        assert first["copied"] == 4 and first["already_present"] == 0
        assert first["bytes_copied"] == sum(len(v) for v in files.values()) + len(b"small") + len(
            b"an object without a row")
        s3 = S3BlobStore.from_url(target, endpoint_url=moto.url, **CREDS)
        assert {h for h, _ in s3.iter_stats()} == set(shas.values()) | {orphan}
        assert s3.read_bytes(shas["big-1.0.jar"]) == big

        # Interrupted run, resumed: one blob missing in the target is copied, the rest skipped.
        s3.delete(shas["small-0.1.jar"])
        again = st.admin_json("migrate-storage", "--to", target)
        assert again["copied"] == 1 and again["already_present"] == 3
        third = st.admin_json("migrate-storage", "--to", target)
        assert third["copied"] == 0 and third["already_present"] == 4

        # Same store as the current one: refused.
        proc = st.server.admin("migrate-storage", "--to", "file", check=False)
        assert proc.returncode == 1 and "current blob store" in proc.stderr

        # Switch the server to S3 and serve the same blobs from there.
        st.server.stop()
        shutil_rmtree(st.arca.blobs.root / "sha256")  # prove nothing is read from the disk any more
        st.server.env["ARCA_BLOB_STORE"] = target
        st.server.start()
        assert httpx.get(st.server.url + "/readyz").json() == {"ready": True}
        assert st.get_asset(d, r, "big", "1.0", "big-1.0.jar") == big
        assert st.get_asset(d, r, "small", "0.1", "small-0.1.jar") == b"small"
        assert st.admin_json("fsck")["ok"] is True
    finally:
        st.close()


def test_migrate_storage_reports_corrupt_source_blob(tmp_path, moto, unique):
    st = _setup(tmp_path, "file", moto)
    try:
        d, r = f"d{unique}", "repo"
        st.server.create_repo(d, r)
        shas = st.publish(d, r, "lib", "1.0", {"lib-1.0.jar": b"fine", "lib-1.0.pom": b"bit rot"})
        st.corrupt(shas["lib-1.0.pom"], b"bit r0t")
        bucket = moto.new_bucket()
        out = st.admin_json("migrate-storage", "--to", f"s3://{bucket}/x")
        assert out["ok"] is False and out["copied"] == 1
        assert [c["sha256"] for c in out["corrupt_in_source"]] == [shas["lib-1.0.pom"]]
        s3 = S3BlobStore.from_url(f"s3://{bucket}/x", endpoint_url=moto.url, **CREDS)
        assert {h for h, _ in s3.iter_stats()} == {shas["lib-1.0.jar"]}
    finally:
        st.close()


def test_s3_server_end_to_end_and_readiness(tmp_path, moto, unique):
    """A server on S3: Maven PUT/GET stream through the bucket; /readyz pings the bucket; with the
    store unreachable, /readyz is 503 and an upload is 503 with a reason and leaves no rows."""
    st = _setup(tmp_path, "s3", moto)
    try:
        assert httpx.get(st.server.url + "/readyz").json() == {"ready": True}
        d, r = f"d{unique}", "repo"
        st.server.create_repo(d, r)
        auth = ("aws", st.server.token(d))
        base = st.server.endpoint(d, "maven", r) + "com/example/e2e/1.0/"
        jar = os.urandom(10 * MiB)
        put = httpx.put(base + "e2e-1.0.jar", content=jar, auth=auth, timeout=60)
        assert put.status_code == 201, put.text
        metadata = ("<metadata><groupId>com.example</groupId><artifactId>e2e</artifactId><versioning>"
                    "<versions><version>1.0</version></versions></versioning></metadata>")
        put = httpx.put(base.replace("1.0/", "maven-metadata.xml"), content=metadata, auth=auth, timeout=60)
        assert put.status_code == 200, put.text
        get = httpx.get(base + "e2e-1.0.jar", auth=auth, timeout=60)
        assert get.status_code == 200 and get.content == jar
        assert hashlib.sha256(jar).hexdigest() in st.stored()

        # The store goes away (endpoint nowhere): readiness and uploads say so.
        st.server.stop()
        with refused_port() as nowhere:
            st.server.env["ARCA_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{nowhere}"
            st.server.start()
            ready = httpx.get(st.server.url + "/readyz", timeout=60)
            assert ready.status_code == 503 and "blob_store" in ready.json()["problems"]
            resp = httpx.put(base.replace("e2e", "down") + "down-1.0.jar", content=b"x" * 1000,
                             auth=auth, timeout=60)
            assert resp.status_code == 503 and "blob store is unavailable" in resp.text
        versions = st.server.boto().list_package_versions(domain=d, repository=r, format="maven",
                                                          namespace="com.example", package="e2e")["versions"]
        assert [v["version"] for v in versions] == ["1.0"]
        with pytest.raises(st.server.boto().exceptions.ResourceNotFoundException):
            st.server.boto().list_package_versions(domain=d, repository=r, format="maven",
                                                   namespace="com.example", package="down")
    finally:
        st.close()


def shutil_rmtree(path):
    import shutil

    shutil.rmtree(path)


# ---- progress, interruption (issue 18 item 11) -------------------------------------------------------

def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        assert line.startswith("{"), f"not a JSON line: {line!r}"
    return [json.loads(line) for line in lines]


def check_progress(job: str, stderr: str) -> list[dict]:
    """Off a terminal a job writes only JSON lines: progress, each phase counting up (to its total
    when known), then one `done` with the summary."""
    lines = json_lines(stderr)
    assert all(x["job"] == job and x["time"].endswith("Z") for x in lines)
    assert [x["event"] for x in lines[:-1]] == ["progress"] * (len(lines) - 1) and lines[-1]["event"] == "done"
    phases: dict[str, list[dict]] = {}
    for x in lines[:-1]:
        phases.setdefault(x["phase"], []).append(x)
    for steps in phases.values():
        done = [x["done"] for x in steps]
        assert done == sorted(done) and done[0] == 0
        if steps[-1]["total"] is not None:
            assert done[-1] == steps[-1]["total"]
    return lines


def test_long_jobs_write_progress_as_json_lines_off_a_terminal(tmp_path, moto):
    st = _setup(tmp_path, "file", moto)
    try:
        for i in range(300):
            st.arca.blobs.put_bytes(f"object {i}".encode())
        gc = st.server.admin("gc", "--dry-run")
        lines = check_progress("gc", gc.stderr)
        assert {x["phase"] for x in lines[:-1]} == {"blob rows", "stored objects"}
        assert lines[-1]["objects_kept_young"] == 300 == json.loads(gc.stdout)["objects_kept_young"]
        # at most one line per 1% (and one every 2 seconds), not one per object
        assert len([x for x in lines if x.get("phase") == "stored objects"]) < 300

        fsck = st.server.admin("fsck")
        lines = check_progress("fsck", fsck.stderr)
        assert lines[-1]["stored_objects"] == 300 and lines[-1]["ok"] is True

        bucket = moto.new_bucket()
        moved = st.server.admin("migrate-storage", "--to", f"s3://{bucket}/x")
        lines = check_progress("migrate-storage", moved.stderr)
        blobs = [x for x in lines if x.get("phase") == "blobs"]
        assert blobs[-1]["done"] == blobs[-1]["total"] == 300 and lines[-1]["copied"] == 300
        assert 2 < len(blobs) <= 102
    finally:
        st.close()


def test_long_job_on_a_terminal_draws_progress_bars(setup):
    import pty
    import subprocess

    from tests.support.server import ARCA

    for i in range(20):
        setup.arca.blobs.put_bytes(f"tty object {i}".encode())
    leader, follower = pty.openpty()
    proc = subprocess.Popen([ARCA, "admin", "fsck"], env={**setup.server.env, "TERM": "xterm", "COLUMNS": "120"},
                            cwd=setup.server.root, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the job closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    report = json.loads(proc.stdout.read())
    assert proc.wait(60) == 0 and report["stored_objects"] == 20
    text = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode("utf-8", "replace")).split())
    assert "fsck: blobs" in text and "fsck: stored objects" in text and "━" in text
    assert "finished in" in text and "stored objects 20" in text
    assert '"event"' not in text  # bars, not JSON lines


def test_an_interrupted_migration_stops_cleanly_and_is_run_again(tmp_path, moto):
    import signal
    import subprocess

    from tests.support.server import ARCA

    st = _setup(tmp_path, "file", moto)
    try:
        shas = {st.arca.blobs.put_bytes(os.urandom(2048)).sha256 for _ in range(1500)}
        bucket = moto.new_bucket()
        target = f"s3://{bucket}/x"
        proc = subprocess.Popen([ARCA, "admin", "migrate-storage", "--to", target], env=st.server.env,
                                cwd=st.server.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = json.loads(proc.stderr.readline())
        assert first["event"] == "progress" and first["done"] == 0 and first["total"] == 1500
        proc.send_signal(signal.SIGTERM)  # as an orchestrator stops a job; Ctrl-C takes the same path
        rest = proc.stderr.read()
        assert proc.wait(60) == 130 and proc.stdout.read() == ""
        stopped = json_lines(rest)[-1]
        assert stopped["event"] == "interrupted" and stopped["done"] < 1500
        assert "run it again" in stopped["message"]

        s3 = S3BlobStore.from_url(target, endpoint_url=moto.url, **CREDS)
        copied_before = {h for h, _ in s3.iter_stats()}
        assert len(copied_before) < 1500
        again = st.admin_json("migrate-storage", "--to", target)
        assert again["ok"] is True and again["already_present"] == len(copied_before)
        assert again["copied"] == 1500 - len(copied_before)
        assert {h for h, _ in s3.iter_stats()} == shas
    finally:
        st.close()
