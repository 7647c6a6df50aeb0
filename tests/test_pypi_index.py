"""The simple repository API over HTTP: PEP 503 HTML and PEP 691 JSON, content negotiation,
PEP 658/714 metadata, PEP 700 fields, redirects, statuses, ETag/304 and gzip."""

from __future__ import annotations

import gzip
import hashlib
import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx
import pytest

from tests import pypi_support as ps

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
PIP_ACCEPT = f"{JSON_V1}, {HTML_V1}; q=0.1, text/html; q=0.01"


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[dict] = []
        self.meta: dict = {}

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs))
        if tag == "meta":
            a = dict(attrs)
            self.meta[a.get("name")] = a.get("content")


def links_of(text: str) -> Links:
    p = Links()
    p.feed(text)
    return p


@pytest.fixture
def repo(server, unique):
    d, r = f"ix{unique}", "py"
    server.create_repo(d, r)
    token = server.token(d)
    url = server.endpoint(d, "pypi", r)
    return d, r, token, url, httpx.Client(auth=("aws", token), timeout=60)


def _upload(url, token, *paths):
    for p in paths:
        data = p.read_bytes()
        kind = "bdist_wheel" if p.name.endswith(".whl") else "sdist"
        name, version = (p.name.split("-")[:2] if kind == "bdist_wheel"
                         else p.name[: -len(".tar.gz")].rsplit("-", 1))
        resp = ps.raw_upload(url, token, ps.form_for(name, version, data, filetype=kind), p.name, data)
        assert resp.status_code == 200, resp.text


def _status(server, d, r, package, version, status):
    server.cli("update-package-versions-status", "--domain", d, "--repository", r, "--format", "pypi",
               "--package", package, "--versions", version, "--target-status", status)


def test_content_negotiation(repo, tmp_path):
    d, r, token, url, http = repo
    _upload(url, token, ps.make_wheel(tmp_path, "Nego.Tiate", "1.0"))
    cases = [
        (PIP_ACCEPT, JSON_V1),
        (None, "text/html; charset=utf-8"),
        ("*/*", "text/html; charset=utf-8"),
        ("text/html", "text/html; charset=utf-8"),
        (HTML_V1, HTML_V1),
        (JSON_V1, JSON_V1),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("application/vnd.pypi.simple.latest+html", HTML_V1),
        (f"{JSON_V1};q=0.5, text/html;q=0.9", "text/html; charset=utf-8"),
        (f"text/html;q=0, {JSON_V1}", JSON_V1),
        (f"application/*;q=0.2, text/html;q=0.1", HTML_V1),
        ("application/json", "text/html; charset=utf-8"),  # not offered: HTML, as PyPI does
    ]
    for path in ("simple/", "simple/nego-tiate/"):
        for accept, expected in cases:
            headers = {"Accept": accept} if accept else {}
            resp = http.get(url + path, headers=headers)
            assert resp.status_code == 200
            assert resp.headers["content-type"] == expected, (path, accept)
            assert "Accept" in resp.headers["vary"]
            if expected == JSON_V1:
                assert resp.json()["meta"] == {"api-version": "1.3"}
            else:
                assert links_of(resp.text).meta["pypi:repository-version"] == "1.3"
        resp = http.get(url + path, params={"format": JSON_V1}, headers={"Accept": "text/html"})
        assert resp.headers["content-type"] == JSON_V1


def test_project_page_fields(repo, tmp_path):
    d, r, token, url, http = repo
    dist = tmp_path / "dist"
    files = [ps.make_wheel(dist, "Field_Test", v, requires_python="<4,>=3.8" if v != "1.0" else None,
                           requires=["dep-x>=1"]) for v in ("1.10", "1.2", "1.0")]
    files.append(ps.make_sdist(dist, "Field_Test", "1.2", requires_python="<4,>=3.8", requires=["dep-x>=1"]))
    started = datetime.now(timezone.utc)
    _upload(url, token, *files)
    finished = datetime.now(timezone.utc)
    by_name = {f.name: f.read_bytes() for f in files}

    page = http.get(url + "simple/field-test/", headers={"Accept": PIP_ACCEPT}).json()
    assert page["name"] == "field-test"
    assert page["versions"] == ["1.0", "1.2", "1.10"]  # PEP 440 order, not string order
    assert [f["filename"] for f in page["files"]] == [
        "field_test-1.0-py3-none-any.whl", "field_test-1.2-py3-none-any.whl", "field_test-1.2.tar.gz",
        "field_test-1.10-py3-none-any.whl"]
    for f in page["files"]:
        data = by_name[f["filename"]]
        assert f["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
        assert f["size"] == len(data)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", f["upload-time"])
        # UTC ("Z"), and the moment of its upload (mktime() - time.timezone was an hour off under DST)
        uploaded = datetime.strptime(f["upload-time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        assert started <= uploaded <= finished, (started, f["upload-time"], finished)
        assert f.get("requires-python") == (None if f["filename"].startswith("field_test-1.0-") else "<4,>=3.8")
        assert f["core-metadata"] == f["dist-info-metadata"]
        file_url = urljoin(url + "simple/field-test/", f["url"])
        assert http.get(file_url).content == data
        meta = http.get(file_url + ".metadata")
        assert meta.status_code == 200
        assert hashlib.sha256(meta.content).hexdigest() == f["core-metadata"]["sha256"]
        assert b"Name: Field_Test" in meta.content and b"Requires-Dist: dep-x>=1" in meta.content
    # the .metadata is exactly the wheel's METADATA / the sdist's PKG-INFO
    import io
    import tarfile
    import zipfile

    with zipfile.ZipFile(io.BytesIO(by_name["field_test-1.2-py3-none-any.whl"])) as zf:
        wheel_meta = zf.read("field_test-1.2.dist-info/METADATA")
    assert http.get(url + "simple/field-test/field_test-1.2-py3-none-any.whl.metadata").content == wheel_meta
    with tarfile.open(fileobj=io.BytesIO(by_name["field_test-1.2.tar.gz"])) as tf:
        pkg_info = tf.extractfile("field_test-1.2/PKG-INFO").read()
    assert http.get(url + "simple/field-test/field_test-1.2.tar.gz.metadata").content == pkg_info

    html_page = http.get(url + "simple/field-test/", headers={"Accept": "text/html"})
    assert 'data-requires-python="&lt;4,&gt;=3.8"' in html_page.text
    links = links_of(html_page.text).links
    assert [a["href"].split("#")[0] for a in links] == [f["url"] for f in page["files"]]
    for a, f in zip(links, page["files"]):
        assert a["href"].split("#", 1)[1] == f"sha256={f['hashes']['sha256']}"
        assert a.get("data-requires-python") == f.get("requires-python")
        assert a["data-core-metadata"] == f"sha256={f['core-metadata']['sha256']}"
        assert a["data-dist-info-metadata"] == a["data-core-metadata"]


def test_redirects_unknown_names_and_methods(repo, tmp_path):
    d, r, token, url, http = repo
    _upload(url, token, ps.make_wheel(tmp_path, "Re.Direct_Me", "1.0"))
    base = f"/{d}/pypi/{r}/"
    for path, location in (("simple/Re.Direct_Me/", "simple/re-direct-me/"), ("simple/RE-DIRECT-ME/",
                           "simple/re-direct-me/"), ("simple/re-direct-me", "simple/re-direct-me/"),
                           ("simple", "simple/")):
        resp = http.get(url + path)
        assert resp.status_code == 301, path
        assert resp.headers["location"] == base + location
    followed = http.get(url + "simple/Re_Direct.Me/", follow_redirects=True, headers={"Accept": JSON_V1})
    assert followed.status_code == 200 and followed.json()["name"] == "re-direct-me"
    assert http.get(url + "simple/no-such-project/").status_code == 404
    assert http.get(url + "simple/re-direct-me/re_direct_me-9.9-py3-none-any.whl").status_code == 404
    assert http.get(url + "simple/re-direct-me/re_direct_me-9.9-py3-none-any.whl.metadata").status_code == 404
    assert http.get(url + "nonsense/").status_code == 404
    assert http.post(url + "simple/re-direct-me/").status_code == 405
    assert http.get(url + "legacy/").status_code == 405
    head = http.head(url + "simple/re-direct-me/re_direct_me-1.0-py3-none-any.whl")
    assert head.status_code == 200 and int(head.headers["content-length"]) > 0 and head.content == b""
    head = http.head(url + "simple/re-direct-me/", headers={"Accept": JSON_V1})
    assert head.status_code == 200 and head.headers["content-type"] == JSON_V1 and head.content == b""


def test_statuses_decide_what_is_listed_and_served(server, repo, tmp_path):
    d, r, token, url, http = repo
    w1 = ps.make_wheel(tmp_path, "stat-pkg", "1.0")
    w2 = ps.make_wheel(tmp_path, "stat-pkg", "2.0")
    other = ps.make_wheel(tmp_path, "only-one", "1.0")
    _upload(url, token, w1, w2, other)

    def listed():
        return [x["name"] for x in http.get(url + "simple/", headers={"Accept": JSON_V1}).json()["projects"]]

    def versions(project):
        resp = http.get(url + f"simple/{project}/", headers={"Accept": JSON_V1})
        return resp.json()["versions"] if resp.status_code == 200 else resp.status_code

    def fetch(project, wheel):
        return http.get(url + f"simple/{project}/{wheel.name}").status_code

    def yanked(project):
        page = http.get(url + f"simple/{project}/", headers={"Accept": JSON_V1}).json()
        return {f["filename"]: f["yanked"] for f in page["files"]}

    assert sorted(listed()) == ["only-one", "stat-pkg"] and versions("stat-pkg") == ["1.0", "2.0"]
    _status(server, d, r, "stat-pkg", "2.0", "Unlisted")
    # Unlisted is PEP 592's yank: still on the page (an exact pin takes it), marked "Unlisted".
    assert versions("stat-pkg") == ["1.0", "2.0"] and yanked("stat-pkg") == {w1.name: False, w2.name: "Unlisted"}
    html = http.get(url + "simple/stat-pkg/", headers={"Accept": "text/html"}).text
    assert f'>{w2.name}</a>' in html and 'data-yanked="Unlisted"' in html and html.count("data-yanked") == 1
    assert fetch("stat-pkg", w2) == 200  # Unlisted: served by exact URL
    assert http.get(url + f"simple/stat-pkg/{w2.name}.metadata").status_code == 200
    _status(server, d, r, "stat-pkg", "2.0", "Archived")
    assert versions("stat-pkg") == ["1.0"] and fetch("stat-pkg", w2) == 404
    assert http.get(url + f"simple/stat-pkg/{w2.name}.metadata").status_code == 404
    _status(server, d, r, "stat-pkg", "2.0", "Published")
    assert versions("stat-pkg") == ["1.0", "2.0"] and fetch("stat-pkg", w2) == 200

    _status(server, d, r, "only-one", "1.0", "Unlisted")
    assert listed() == ["stat-pkg"] and fetch("only-one", other) == 200
    assert versions("only-one") == ["1.0"] and yanked("only-one") == {other.name: "Unlisted"}
    server.boto().dispose_package_versions(domain=d, repository=r, format="pypi", package="only-one",
                                           versions=["1.0"])
    assert fetch("only-one", other) == 404 and listed() == ["stat-pkg"]
    assert server.boto().list_package_versions(domain=d, repository=r, format="pypi", package="only-one")[
        "versions"][0]["status"] == "Disposed"


def test_etag_304_and_gzip(server, repo, tmp_path):
    d, r, token, url, http = repo
    _upload(url, token, *[ps.make_wheel(tmp_path, "cache-me", f"1.{i}", requires_python=">=3.8")
                          for i in range(12)])
    page = url + "simple/cache-me/"
    raw = httpx.Client(auth=("aws", token), timeout=60)
    for accept in (JSON_V1, "text/html"):
        plain = raw.get(page, headers={"Accept": accept, "Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        with raw.stream("GET", page, headers={"Accept": accept, "Accept-Encoding": "gzip, deflate"}) as zipped:
            wire = b"".join(zipped.iter_raw())  # the bytes as sent, not decoded by httpx
        assert zipped.headers["content-encoding"] == "gzip"
        assert int(zipped.headers["content-length"]) == len(wire) < len(plain.content)
        assert gzip.decompress(wire) == plain.content
        etag = plain.headers["etag"]
        assert etag != zipped.headers["etag"] and etag.startswith('"')
        again = raw.get(page, headers={"Accept": accept, "Accept-Encoding": "identity", "If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag and again.content == b""
        # The other representation does not match this ETag.
        other = JSON_V1 if accept != JSON_V1 else "text/html"
        assert raw.get(page, headers={"Accept": other, "If-None-Match": etag}).status_code == 200

    etag = raw.get(page, headers={"Accept": JSON_V1}).headers["etag"]
    _upload(url, token, ps.make_wheel(tmp_path, "cache-me", "2.0"))
    fresh = raw.get(page, headers={"Accept": JSON_V1, "If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag and "2.0" in fresh.json()["versions"]
    etag = fresh.headers["etag"]
    _status(server, d, r, "cache-me", "2.0", "Unlisted")
    fresh = raw.get(page, headers={"Accept": JSON_V1, "If-None-Match": etag})
    assert fresh.status_code == 200 and "2.0" in fresh.json()["versions"]
    assert [f["yanked"] for f in fresh.json()["files"] if f["filename"].startswith("cache_me-2.0")] == ["Unlisted"]

    root = raw.get(url + "simple/", headers={"Accept-Encoding": "identity"})
    assert raw.get(url + "simple/", headers={"Accept-Encoding": "identity",
                                             "If-None-Match": root.headers["etag"]}).status_code == 304


def test_index_needs_read_permission(server, repo, unique):
    d, r, token, url, http = repo
    anon = httpx.get(url + "simple/")
    assert anon.status_code == 401 and anon.headers["www-authenticate"].startswith("Basic")
    name = f"nobody{unique}"
    key = server.new_user(name)
    import json

    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::000000000000:user/{name}"},
        "Action": ["codeartifact:GetAuthorizationToken", "sts:GetServiceBearerToken"], "Resource": "*"}]}
    server.boto().put_domain_permissions_policy(domain=d, policyDocument=json.dumps(policy))
    outsider = server.token(d, key=key)
    assert httpx.get(url + "simple/", auth=("aws", outsider)).status_code == 403
    assert httpx.get(url + "simple/x/", auth=("aws", outsider)).status_code == 403
