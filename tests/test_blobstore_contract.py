"""One BlobStore contract, run against the disk store and the S3 store (moto's standalone S3
server on loopback): hashes, ranged reads, dedup, and "nothing under a final name, no temp
object, no open multipart upload" after every kind of failed upload."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import anyio
import httpx
import pytest

from app.domain.errors import PayloadTooLarge, StorageUnavailable, ValidationError
from app.storage.file import FileBlobStore
from app.storage.s3 import S3BlobStore
from tests.support.moto_server import CREDS, start_moto
from tests.support.server import refused_port

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    m = start_moto(tmp_path_factory.mktemp("moto"))
    yield m
    m.stop()


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return FileBlobStore(tmp_path / "blobs")
    m = request.getfixturevalue("moto")
    return S3BlobStore.from_url(f"s3://{m.new_bucket()}/some/prefix", endpoint_url=m.url,
                                staging_dir=tmp_path / "staging", **CREDS)


def stored(store) -> list[str]:
    """Every name under the store's final (content-addressed) location."""
    if isinstance(store, FileBlobStore):
        base = store.root / "sha256"
        return sorted(p.name for p in base.rglob("*") if p.is_file()) if base.exists() else []
    resp = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.blob_prefix)
    return sorted(o["Key"].rsplit("/", 1)[-1] for o in resp.get("Contents", []))


def leftovers(store) -> list[str]:
    """Temp files / temp objects / unfinished multipart uploads."""
    if isinstance(store, FileBlobStore):
        return [p.name for p in store.tmp.iterdir()]
    staged = [f"staging:{p.name}" for p in store.staging.iterdir()]
    c = store.client
    objs = c.list_objects_v2(Bucket=store.bucket, Prefix=store.tmp_prefix).get("Contents", [])
    ups = c.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    return staged + [o["Key"] for o in objs] + [f"multipart:{u['Key']}" for u in ups]


async def _chunks(*parts: bytes):
    for p in parts:
        yield p


def _pieces(data: bytes, size: int = 64 * 1024):
    async def gen():
        for i in range(0, len(data), size):
            yield data[i:i + size]
    return gen()


def _put(store, chunks, **kw):
    return anyio.run(lambda: store.put_stream(chunks, **kw))


def _count_calls(store, operation: str) -> list:
    """Record S3 API calls of one operation (botocore event hook; keeps no reference to bodies)."""
    calls = []
    store.client.meta.events.register(f"before-call.s3.{operation}", lambda **kw: calls.append(operation))
    return calls


def test_hashes_size_and_ranged_reads(store):
    data = os.urandom(300_000)
    info = _put(store, _chunks(data[:1000], b"", data[1000:]))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.sha1 == hashlib.sha1(data).hexdigest() and info.md5 == hashlib.md5(data).hexdigest()
    assert info.sha512 == hashlib.sha512(data).hexdigest() and info.size == len(data)
    assert info.hashes()["SHA-256"] == info.sha256
    assert store.exists(info.sha256) and not store.exists("0" * 64)
    assert b"".join(store.open_chunks(info.sha256)) == data
    assert store.read_bytes(info.sha256) == data
    assert b"".join(store.open_chunks(info.sha256, 6, 12)) == data[6:12]
    assert b"".join(store.open_chunks(info.sha256, 299_990)) == data[299_990:]
    assert b"".join(store.open_chunks(info.sha256, 0, 1)) == data[:1]
    assert b"".join(store.open_chunks(info.sha256, 5, 5)) == b""
    assert b"".join(store.open_chunks(info.sha256, len(data))) == b""
    assert sorted(h for h, _ in store.iter_stats()) == stored(store) == [info.sha256]
    assert leftovers(store) == []


@pytest.mark.parametrize("size", [1000, 9 * MiB])  # one PUT, and a multipart upload on S3
def test_commit_file_stores_a_staged_file_and_consumes_it(store, size):
    data = os.urandom(size)
    staged = store.new_temp()
    staged.write_bytes(data)
    info = store.commit_file(staged, {"sha256": hashlib.sha256(data).hexdigest()})
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == size
    assert store.read_bytes(info.sha256) == data and not staged.exists()
    assert stored(store) == [info.sha256] and leftovers(store) == []
    st = store.stat(info.sha256)
    assert st.size == size and st.modified.tzinfo is not None
    assert store.stat("0" * 64) is None


@pytest.mark.parametrize("size", [1000, 9 * MiB])
def test_commit_file_with_wrong_digest_keeps_nothing(store, size):
    staged = store.new_temp()
    staged.write_bytes(os.urandom(size))
    with pytest.raises(ValidationError):
        store.commit_file(staged, {"sha256": "0" * 64})
    assert not staged.exists() and stored(store) == [] and leftovers(store) == []


def test_clean_temp_reports_and_removes_what_interrupted_uploads_left(store):
    from datetime import datetime, timedelta, timezone

    left = store.new_temp()
    left.write_bytes(b"x" * 1234)
    later = datetime.now(timezone.utc) + timedelta(seconds=60)
    earlier = datetime.now(timezone.utc) - timedelta(seconds=60)
    assert store.clean_temp(earlier).count == 0 and left.exists()  # too young: kept
    dry = store.clean_temp(later, dry_run=True)
    assert dry.count == 1 and dry.bytes == 1234 and left.exists()
    done = store.clean_temp(later)
    assert done.count == 1 and done.bytes == 1234 and not left.exists() and leftovers(store) == []


def test_describe_and_presigned_url(store):
    info = store.put_bytes(b"described")
    if isinstance(store, FileBlobStore):
        assert store.describe() == str(store.root) and store.presigned_url(info.sha256) is None
    else:
        assert store.describe() == f"s3://{store.bucket}/some/prefix"
        assert httpx.get(store.presigned_url(info.sha256)).content == b"described"


def test_empty_blob(store):
    info = _put(store, _chunks())
    assert info.size == 0 and info.sha256 == hashlib.sha256(b"").hexdigest()
    assert store.read_bytes(info.sha256) == b"" and stored(store) == [info.sha256]


def test_missing_blob_is_file_not_found(store):
    with pytest.raises(FileNotFoundError):
        b"".join(store.open_chunks("ab" * 32))


def test_same_content_deduplicates(store):
    a = store.put_bytes(b"same bytes")
    b = _put(store, _chunks(b"same ", b"bytes"))
    c = store.put_bytes(b"same bytes", expected={"sha1": hashlib.sha1(b"same bytes").hexdigest()})
    assert a == b == c and stored(store) == [a.sha256] and leftovers(store) == []


def test_large_body_dedup_keeps_one_object(store):
    data = os.urandom(9 * MiB)
    a = _put(store, _pieces(data))
    b = _put(store, _pieces(data))
    assert a == b and stored(store) == [a.sha256] and leftovers(store) == []
    assert store.read_bytes(a.sha256) == data


def test_expected_digests_match_and_mismatch(store):
    data = b"payload" * 1000
    good = {"sha256": hashlib.sha256(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest().upper(),
            "md5": hashlib.md5(data).hexdigest()}
    info = _put(store, _chunks(data), expected=good)
    store.delete(info.sha256)
    assert stored(store) == []
    with pytest.raises(ValidationError, match="sha1 mismatch"):
        _put(store, _chunks(data), expected={"sha1": "0" * 40})
    with pytest.raises(ValidationError):
        store.put_bytes(data, expected={"sha256": "1" * 64})
    assert stored(store) == [] and leftovers(store) == []


def test_expected_mismatch_on_multipart_body_leaves_nothing(store):
    data = os.urandom(20 * MiB)
    with pytest.raises(ValidationError):
        _put(store, _pieces(data), expected={"sha256": "0" * 64})
    assert stored(store) == [] and leftovers(store) == []


def test_size_limit_leaves_nothing(store):
    with pytest.raises(PayloadTooLarge):
        _put(store, _chunks(b"x" * 10, b"y" * 10), limit=15)
    with pytest.raises(PayloadTooLarge):  # over the limit after several parts went out
        _put(store, _pieces(os.urandom(20 * MiB)), limit=18 * MiB)
    assert stored(store) == [] and leftovers(store) == []
    info = _put(store, _chunks(b"x" * 15), limit=15)  # exactly the limit is fine
    assert stored(store) == [info.sha256]


@pytest.mark.parametrize("size", [100, 17 * MiB])
def test_stream_failing_midway_leaves_nothing(store, size):
    async def broken():
        sent = 0
        while sent < size:
            yield b"p" * min(64 * 1024, size - sent)
            sent += min(64 * 1024, size - sent)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        _put(store, broken())
    assert stored(store) == [] and leftovers(store) == []


def test_large_body_streams_without_holding_it(store):
    size = 40 * MiB
    chunk = os.urandom(MiB)
    expect = hashlib.sha256(chunk * 40).hexdigest()

    async def body():  # generated on the fly: the test itself never holds 40 MiB
        for _ in range(size // MiB):
            yield chunk

    parts = _count_calls(store, "UploadPart") if isinstance(store, S3BlobStore) else None
    tracemalloc.start()
    try:
        info = _put(store, body())
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.sha256 == expect and info.size == size
    assert peak < 24 * MiB, f"peak Python allocation {peak / MiB:.1f} MiB while storing a 40 MiB body"
    if parts is not None:
        assert len(parts) == 5  # 8 MiB parts: a multipart upload, completed after the hash was known
    h = hashlib.sha256()
    for piece in store.open_chunks(info.sha256):
        h.update(piece)
    assert h.hexdigest() == expect
    assert stored(store) == [info.sha256] and leftovers(store) == []


def test_delete_and_ping(store):
    info = store.put_bytes(b"to be deleted")
    store.ping()
    store.delete(info.sha256)
    store.delete(info.sha256)  # idempotent
    assert not store.exists(info.sha256) and stored(store) == []
    if isinstance(store, FileBlobStore):
        assert not store.local_path(info.sha256).exists()
    else:
        assert store.local_path(info.sha256) is None  # S3 objects have no local path


# ---- S3 only ---------------------------------------------------------------------------------------

@pytest.fixture
def unreachable_store():
    with refused_port() as port:  # nothing listens there
        yield S3BlobStore.from_url("s3://nowhere/p", endpoint_url=f"http://127.0.0.1:{port}", max_attempts=2,
                                   **CREDS)


def test_s3_unreachable_is_storage_unavailable(unreachable_store):
    s = unreachable_store
    for call in (s.ping, lambda: s.exists("0" * 64), lambda: s.put_bytes(b"x"),
                 lambda: b"".join(s.open_chunks("0" * 64)), lambda: list(s.iter_stats())):
        with pytest.raises(StorageUnavailable, match="blob store is unavailable"):
            call()
    with pytest.raises(StorageUnavailable) as err:
        _put(s, _chunks(b"abc"))
    assert err.value.status == 503 and "127.0.0.1" in err.value.message


def test_s3_missing_bucket_is_storage_unavailable(moto):
    s = S3BlobStore.from_url("s3://no-such-bucket-here/p", endpoint_url=moto.url, **CREDS)
    with pytest.raises(StorageUnavailable, match="no-such-bucket-here"):
        s.ping()
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        s.put_bytes(b"abc")


def test_s3_layout_and_presigned_url(moto):
    bucket = moto.new_bucket()
    s = S3BlobStore.from_url(f"s3://{bucket}/arca/blobs/", endpoint_url=moto.url, **CREDS)
    info = s.put_bytes(b"presigned content")
    key = f"arca/blobs/sha256/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"
    assert moto.client().head_object(Bucket=bucket, Key=key)["ContentLength"] == info.size
    resp = httpx.get(s.presigned_url(info.sha256, filename="demo 1.0.jar"))
    assert resp.status_code == 200 and resp.content == b"presigned content"
    assert 'filename="demo 1.0.jar"' in resp.headers["content-disposition"]
    assert s.local_path(info.sha256) is None
    no_prefix = S3BlobStore.from_url(f"s3://{bucket}", endpoint_url=moto.url, **CREDS)
    assert no_prefix.key_for(info.sha256) == key.removeprefix("arca/blobs/")


def test_s3_throttling_is_retried_then_unavailable(moto):
    """SlowDown (503) is retried with backoff by botocore; when it persists the caller gets 503."""
    s = S3BlobStore.from_url(f"s3://{moto.new_bucket()}/p", endpoint_url=moto.url, max_attempts=3, **CREDS)
    attempts = []

    def slow_down(http_response=None, **kw):
        attempts.append(1)
        from botocore.awsrequest import AWSResponse

        class Raw:
            def stream(self, **_):
                yield b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"

        return AWSResponse("http://x", 503, {}, Raw())

    s.client.meta.events.register("before-send.s3.PutObject", slow_down)
    with pytest.raises(StorageUnavailable, match="SlowDown"):
        s.put_bytes(b"throttled")
    assert len(attempts) == 3
    # A transient SlowDown followed by success is invisible to the caller.
    attempts.clear()
    s.client.meta.events.unregister("before-send.s3.PutObject", slow_down)

    def once(**kw):
        if not attempts:
            return slow_down(**kw)
        return None

    s.client.meta.events.register("before-send.s3.PutObject", once)
    info = s.put_bytes(b"throttled once")
    assert len(attempts) == 1 and s.read_bytes(info.sha256) == b"throttled once"


def test_s3_old_object_is_touched_on_dedup(moto):
    """Reusing an existing object refreshes its LastModified (gc's grace period then protects it)."""
    from datetime import timedelta

    import app.storage.s3 as s3mod

    s = S3BlobStore.from_url(f"s3://{moto.new_bucket()}/p", endpoint_url=moto.url, **CREDS)
    info = s.put_bytes(b"old object")
    copies = _count_calls(s, "CopyObject")
    s.put_bytes(b"old object")
    assert copies == []  # young: left alone
    old, s3mod.TOUCH_AFTER = s3mod.TOUCH_AFTER, timedelta(seconds=-1)
    try:
        s.put_bytes(b"old object")
    finally:
        s3mod.TOUCH_AFTER = old
    assert len(copies) == 1 and s.read_bytes(info.sha256) == b"old object"
