"""Pure npm rules, table-driven: names, SemVer order, dist-tag derivation, Accept negotiation,
and the streaming publish-body scanner (fed in every chunk size, including one byte)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from app.domain.errors import PayloadTooLarge, ValidationError
from app.formats.npm import names, packument as pm, publish_body as pub
from tests.npm_support import make_tarball, publish_body


@pytest.mark.parametrize("name", ["a", "left-pad", "@acme/demo-lib", "a.b_c-d", "x" * 214, "@a/b", "lodash.get"])
def test_valid_names(name):
    assert names.name_problem(name) is None


@pytest.mark.parametrize("name", ["", "A", ".a", "_a", "-a", " a", "a ", "node_modules", "favicon.ico", "fs",
                                  "x" * 215, "a!", "a(b)", "a/b", "@a", "@/b", "@a/b/c", "ä", "@a/_b", "a%20b"])
def test_invalid_names(name):
    assert names.name_problem(name) is not None


def test_split_name():
    assert names.split_name("@acme/x") == ("acme", "x")
    assert names.split_name("x") == ("", "x")
    with pytest.raises(ValidationError):
        names.split_name("@Acme/x")


@pytest.mark.parametrize("v,ok", [("1.0.0", True), ("0.0.0-alpha.1+b.2", True), ("10.20.30", True),
                                  ("1.0", False), ("01.0.0", False), ("1.0.0-01", False), ("v1.0.0", False),
                                  ("1.0.0-", False), ("1.0.0+", False), (" 1.0.0", False)])
def test_semver(v, ok):
    assert names.is_semver(v) is ok


def test_semver_order_and_highest():
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
    assert sorted(reversed(order), key=names.semver_key) == order
    assert names.highest(["1.0.0", "2.0.0-rc.1", "1.5.0"]) == "1.5.0"
    assert names.highest(["2.0.0-rc.1", "2.0.0-rc.2"]) == "2.0.0-rc.2"
    assert names.highest([]) is None


def test_effective_tags_follow_visible_versions():
    rows = {"latest": "2.0.0", "beta": "3.0.0-b", "old": "1.0.0"}
    assert pm.effective_tags(rows, ["1.0.0", "2.0.0", "3.0.0-b"]) == rows
    assert pm.effective_tags(rows, ["1.0.0", "1.5.0", "3.0.0-b"]) == {"latest": "1.5.0", "beta": "3.0.0-b",
                                                                        "old": "1.0.0"}
    assert pm.effective_tags(rows, []) == {}
    assert list(pm.effective_tags({"a": "1.0.0", "latest": "1.0.0"}, ["1.0.0"])) == ["latest", "a"]


@pytest.mark.parametrize("accept,corgi", [
    ("application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", True),
    ("application/vnd.npm.install-v1+json", True),
    ("application/json", False),
    (None, False),
    ("application/vnd.npm.install-v1+json; q=0.1, application/json", False),
    ("application/vnd.npm.install-v1+json; q=0", False),
])
def test_accept_negotiation(accept, corgi):
    assert pm.wants_corgi(accept) is corgi


@pytest.mark.parametrize("tag,ok", [("latest", True), ("next", True), ("v2-lts", False), ("1.0.0", False),
                                    ("beta.1", True), ("", False), ("a/b", False), ("has space", False)])
def test_tags(tag, ok):
    if ok:
        assert names.check_tag(tag) == tag
    else:
        with pytest.raises(ValidationError):
            names.check_tag(tag)


# ---- the body scanner ----------------------------------------------------------------------------

def scan(body: bytes, tmp_path, chunk: int, limit: int = 10**8):
    counter = iter(range(10**6))
    s = pub.BodyScanner(limit=limit, temp_path_factory=lambda: tmp_path / f"att{next(counter)}")
    for i in range(0, len(body), chunk):
        s.feed(body[i:i + chunk])
    return s, s.finish()


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 4096, 10**7])
def test_scanner_extracts_the_tarball_in_any_chunking(tmp_path, chunk):
    tgz = make_tarball("@a/b", "1.0.0", files={"x.bin": bytes(range(256)) * 40})
    body = publish_body("@a/b", "1.0.0", tgz, manifest={"readme": 'quote " back\\slash \u00e9 \\/ "data":"x"'})
    raw = json.dumps(body, indent=1 if chunk % 2 else None).encode()
    s, doc = scan(raw, tmp_path, chunk)
    assert doc["versions"]["1.0.0"]["readme"] == body["versions"]["1.0.0"]["readme"]
    assert doc["_attachments"]["@a/b-1.0.0.tgz"]["data"] == ""
    assert doc["_attachments"]["@a/b-1.0.0.tgz"]["length"] == len(tgz)
    [att] = s.attachments
    assert att.name == "@a/b-1.0.0.tgz" and att.path.read_bytes() == tgz
    assert att.info.sha512 == hashlib.sha512(tgz).hexdigest() and att.info.size == len(tgz)
    p = pub.check_publish(doc, "@a/b", s.attachments)
    assert pub.check_digests(p.attachment, p.expected)["sha1"] == hashlib.sha1(tgz).hexdigest()
    assert pub.check_tarball(att.path, "@a/b", "1.0.0", 1024 * 1024)["name"] == "@a/b"
    s.cleanup()
    assert not att.path.exists()


def test_scanner_only_treats_attachment_data_as_binary(tmp_path):
    # a "data" key elsewhere is an ordinary string; escaped slashes in base64 are accepted
    tgz = b"\x00\x01binary\xff" * 10
    b64 = base64.b64encode(tgz).decode().replace("/", "\\/")
    raw = ('{"name":"n","data":"keep me","versions":{"1.0.0":{"data":"also"}},'
           f'"_attachments":{{"n-1.0.0.tgz":{{"content_type":"x","data":"{b64}"}}}}}}').encode()
    s, doc = scan(raw, tmp_path, 5)
    assert doc["data"] == "keep me" and doc["versions"]["1.0.0"]["data"] == "also"
    assert s.attachments[0].path.read_bytes() == tgz


@pytest.mark.parametrize("raw,words", [
    (b'{"a": [1, 2}', "not valid JSON"),
    (b'{"a": 1', "not complete"),
    (b'[1, 2]', "JSON object"),
    (b'{"_attachments": {"x": {"data": "QUJD!"}}}', "base64"),
    (b'{"_attachments": {"x": {"data": "QUJDR"}}}', "truncated"),
    (b'{"_attachments": {"x": {"data": "QU\\nJD"}}}', "plain base64"),
    (b'}', "not valid JSON"),
])
def test_scanner_rejects_bad_bodies(tmp_path, raw, words):
    with pytest.raises(ValidationError, match=words):
        scan(raw, tmp_path, 3)


def test_scanner_limit_is_checked_while_reading(tmp_path):
    s = pub.BodyScanner(limit=100, temp_path_factory=lambda: tmp_path / "a")
    s.feed(b'{"name": "' + b"x" * 80)
    with pytest.raises(PayloadTooLarge, match="limit of 100 bytes"):
        s.feed(b"y" * 30)
    s.cleanup()


def test_integrity_parsing():
    digest = hashlib.sha512(b"x").digest()
    sri = f"sha1-AAAA sha512-{base64.b64encode(digest).decode()}?opt"
    assert pub.integrity_sha512(sri) == [digest.hex()]
    assert pub.integrity_sha512("sha1-abc") == []
    with pytest.raises(ValidationError):
        pub.integrity_sha512("sha512-!!!")
