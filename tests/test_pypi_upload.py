"""twine uploads into a PyPI repository: what is stored, how the control plane shows it, and every
rule that refuses an upload (400/409/413/401/403 with a reason, nothing stored)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile

import httpx
import pytest

from tests import pypi_support as ps
from tests.support.server import start_server


@pytest.fixture
def repo(server, unique):
    d, r = f"py{unique}", "py"
    server.create_repo(d, r)
    return d, r, server.token(d), server.endpoint(d, "pypi", r)


def _versions(server, d, r, package):
    c = server.boto()
    return {v["version"]: v["status"] for v in
            c.list_package_versions(domain=d, repository=r, format="pypi", package=package)["versions"]}


def _status_line_reason(body: str) -> str:
    """What the status line's reason phrase must carry: the error text on one line, printable
    ASCII, at most 300 characters (twine prints only the status line without --verbose)."""
    text = " ".join(body.split())
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)[:300]


def _packages(server, d, r):
    return [p["package"] for p in server.boto().list_packages(domain=d, repository=r, format="pypi")["packages"]]


def test_twine_uploads_wheels_and_sdists_with_mixed_case_and_separators(server, repo, tmp_path):
    d, r, token, url = repo
    dist = tmp_path / "dist"
    readme = "# Demo Beta\n\nThe *second* demo."
    files = [
        ps.make_wheel(dist, "Demo_Beta", "1.0", requires=["Demo.Alpha>=1.0", "zeta-gamma; python_version<'4'"],
                      requires_python=">=3.8", summary="The beta demo", description=readme,
                      home_page="https://example.com/beta", license="MIT"),
        ps.make_sdist(dist, "Demo_Beta", "1.0", requires=["Demo.Alpha>=1.0", "zeta-gamma; python_version<'4'"],
                      requires_python=">=3.8", summary="The beta demo", description=readme,
                      home_page="https://example.com/beta", license="MIT"),
        ps.make_wheel(dist, "Demo.Alpha", "1.0.0", summary="alpha"),
        ps.make_sdist(dist, "Demo.Alpha", "1.0.0", summary="alpha"),
        ps.make_wheel(dist, "zeta-gamma", "2.0rc1"),
    ]
    out = ps.twine_upload(url, token, files)
    uploaded = [line.split()[1] for line in out.stdout.splitlines()
                if line.startswith("Uploading ") and not line.startswith("Uploading distributions")]
    assert sorted(uploaded) == sorted(f.name for f in files), out.stdout  # twine sends wheels first

    assert sorted(_packages(server, d, r)) == ["demo-alpha", "demo-beta", "zeta-gamma"]
    assert _versions(server, d, r, "demo-beta") == {"1.0": "Published"}
    assert _versions(server, d, r, "zeta-gamma") == {"2.0rc1": "Published"}
    # The control plane takes the name in any PEP 503 spelling.
    assert _versions(server, d, r, "Demo_Beta") == {"1.0": "Published"}

    c = server.boto()
    pv = c.describe_package_version(domain=d, repository=r, format="pypi", package="demo-beta",
                                    packageVersion="1.0")["packageVersion"]
    assert pv["packageName"] == "demo-beta" and pv["displayName"] == "Demo_Beta"
    assert pv["summary"] == "The beta demo" and pv["homePage"] == "https://example.com/beta"
    assert pv["licenses"] == [{"name": "MIT"}] and pv["status"] == "Published" and pv["publishedTime"]
    assert pv["origin"]["originType"] == "INTERNAL"

    assets = c.list_package_version_assets(domain=d, repository=r, format="pypi", package="demo-beta",
                                           packageVersion="1.0")["assets"]
    assert sorted(a["name"] for a in assets) == ["demo_beta-1.0-py3-none-any.whl", "demo_beta-1.0.tar.gz"]
    by_name = {f.name: f.read_bytes() for f in files}
    for a in assets:
        data = by_name[a["name"]]
        assert a["size"] == len(data)
        assert a["hashes"]["SHA-256"] == hashlib.sha256(data).hexdigest()
        assert a["hashes"]["MD5"] == hashlib.md5(data).hexdigest()

    readme_out = c.get_package_version_readme(domain=d, repository=r, format="pypi", package="demo-beta",
                                              packageVersion="1.0")
    assert readme_out["readme"].strip() == readme
    deps = c.list_package_version_dependencies(domain=d, repository=r, format="pypi", package="demo-beta",
                                               packageVersion="1.0")["dependencies"]
    assert {"package": "demo-alpha", "dependencyType": "Requires-Dist", "versionRequirement": ">=1.0"} in deps
    assert any(x["package"] == "zeta-gamma" and "python_version" in x["versionRequirement"] for x in deps)

    # The arca CLI shows the same rows.
    listed = server.cli_json("list-packages", "--domain", d, "--repository", r, "--format", "pypi")
    assert sorted(p["package"] for p in listed["packages"]) == ["demo-alpha", "demo-beta", "zeta-gamma"]

    # The files come back byte for byte from the index links.
    page = httpx.get(url + "simple/demo-beta/", auth=("aws", token),
                     headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    for f in page["files"]:
        body = httpx.get(url + "simple/demo-beta/" + f["url"], auth=("aws", token)).content
        assert body == by_name[f["filename"]]
        assert hashlib.sha256(body).hexdigest() == f["hashes"]["sha256"]


def test_reupload_identical_is_accepted_and_different_bytes_conflict(server, repo, tmp_path):
    d, r, token, url = repo
    wheel = ps.make_wheel(tmp_path / "a", "Retry_Me", "1.0")
    ps.twine_upload(url, token, [wheel])
    ps.twine_upload(url, token, [wheel])  # a retried half-finished upload succeeds
    original = hashlib.sha256(wheel.read_bytes()).hexdigest()

    other = ps.make_wheel(tmp_path / "b", "Retry_Me", "1.0", summary="different bytes")
    quiet = ps.twine_upload(url, token, [other], check=False)
    assert quiet.returncode == 1
    # without --verbose twine prints the status and the reason phrase: ours carries the reason
    assert "409" in quiet.stdout and "File already exists" in quiet.stdout, quiet.stdout
    verbose = ps.twine_upload(url, token, [other], check=False, extra=["--verbose"])
    assert verbose.returncode == 1 and "File already exists" in " ".join(verbose.stdout.split())

    raw = ps.raw_upload(url, token, ps.form_for("Retry_Me", "1.0", other.read_bytes()), other.name,
                        other.read_bytes())
    assert raw.status_code == 409 and raw.text.startswith("File already exists")
    assert raw.reason_phrase.startswith("File already exists")
    assert "x-reason-phrase" not in raw.headers

    assets = server.boto().list_package_version_assets(domain=d, repository=r, format="pypi", package="retry-me",
                                                       packageVersion="1.0")["assets"]
    assert [a["hashes"]["SHA-256"] for a in assets] == [original]
    served = httpx.get(url + f"simple/retry-me/{wheel.name}", auth=("aws", token)).content
    assert served == wheel.read_bytes()


def test_new_file_for_an_existing_version_is_added(server, repo, tmp_path):
    d, r, token, url = repo
    ps.twine_upload(url, token, [ps.make_wheel(tmp_path, "addon", "1.0")])
    ps.twine_upload(url, token, [ps.make_sdist(tmp_path, "addon", "1.0")])
    assets = server.boto().list_package_version_assets(domain=d, repository=r, format="pypi", package="addon",
                                                       packageVersion="1.0")["assets"]
    assert sorted(a["name"] for a in assets) == ["addon-1.0-py3-none-any.whl", "addon-1.0.tar.gz"]


def test_version_is_stored_in_pep440_normal_form(server, repo):
    d, r, token, url = repo
    content = ps.wheel_bytes("normver", "1.0.0-RC1")
    resp = ps.raw_upload(url, token, ps.form_for("normver", "1.0.0-RC1", content), "normver-1.0.0rc1-py3-none-any.whl",
                         content)
    assert resp.status_code == 200, resp.text
    assert _versions(server, d, r, "normver") == {"1.0.0rc1": "Published"}


def test_legacy_endpoint_accepts_uploads(server, repo, tmp_path):
    d, r, token, url = repo
    ps.twine_upload(url + "legacy/", token, [ps.make_wheel(tmp_path, "via-legacy", "0.1")])
    assert _versions(server, d, r, "via-legacy") == {"0.1": "Published"}


# ---- refusals: every rule through raw HTTP (what twine itself would refuse to send) -------------

def _wheel_with(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


GOOD = ps.wheel_bytes("Good_Pkg", "1.0")
GOOD_NAME = "good_pkg-1.0-py3-none-any.whl"
SDIST = ps.sdist_bytes("Good_Pkg", "1.0")
WRONG_META = ps.wheel_bytes("Good_Pkg", "1.0", metadata=ps.metadata_text("other-pkg", "1.0"))
WRONG_META_VERSION = ps.wheel_bytes("Good_Pkg", "1.0", metadata=ps.metadata_text("Good_Pkg", "2.0"))
NO_METADATA = _wheel_with({"good_pkg/__init__.py": b"", "good_pkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\n"})
NO_WHEEL_FILE = _wheel_with({"good_pkg-1.0.dist-info/METADATA": ps.metadata_text("Good_Pkg", "1.0").encode()})
SDIST_NO_PKGINFO = ps.sdist_bytes("Good_Pkg", "1.0", top="elsewhere")


def _form(**changes):
    fields = ps.form_for("Good_Pkg", "1.0", GOOD)
    for key, value in changes.items():
        key = key.replace("__", ":")
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


CASES = {
    "action-missing": (dict(fields=_form(__action=None)), "':action'"),
    "action-wrong": (dict(fields=_form(__action="submit")), "':action'"),
    "protocol-version": (dict(fields=_form(protocol_version="2")), "protocol_version"),
    "content-missing": (dict(filename=None), "'content'"),
    "name-missing": (dict(fields=_form(name=None)), "'name' is missing"),
    "name-invalid": (dict(fields=_form(name="-bad name-")), "Invalid project name"),
    "version-missing": (dict(fields=_form(version=None)), "'version' is missing"),
    "version-invalid": (dict(fields=_form(version="one.two")), "not a PEP 440 version"),
    "filename-extension": (dict(filename="good_pkg-1.0.exe"), "only wheels"),
    "filename-egg": (dict(filename="good_pkg-1.0-py3.11.egg"), "only wheels"),
    "filename-invalid-wheel": (dict(filename="good_pkg-1.0.whl"), "Invalid wheel file name"),
    "filename-traversal": (dict(filename="../good_pkg-1.0-py3-none-any.whl"), "Invalid file name"),
    "filename-other-project": (dict(filename="other_pkg-1.0-py3-none-any.whl"), "is for project 'other-pkg'"),
    "filename-other-version": (dict(filename="good_pkg-1.1-py3-none-any.whl"), "is for version 1.1"),
    "filetype-mismatch": (dict(fields=_form(filetype="sdist")), "filetype 'sdist' does not fit"),
    "not-a-zip": (dict(content=b"this is not a zip", fields=_form(**{
        "sha256_digest": hashlib.sha256(b"this is not a zip").hexdigest(), "blake2_256_digest": None})),
        "not a valid zip archive"),
    "not-a-tar-gz": (dict(filename="good_pkg-1.0.tar.gz", content=b"not gzip", fields=_form(**{
        "filetype": "sdist", "sha256_digest": hashlib.sha256(b"not gzip").hexdigest(),
        "blake2_256_digest": None})), "not a valid gzip-compressed tar archive"),
    "wheel-without-metadata": (dict(content=NO_METADATA, fields=ps.form_for("Good_Pkg", "1.0", NO_METADATA)),
                               "has no {name}-{version}.dist-info/METADATA"),
    "wheel-without-WHEEL": (dict(content=NO_WHEEL_FILE, fields=ps.form_for("Good_Pkg", "1.0", NO_WHEEL_FILE)),
                            "WHEEL"),
    "metadata-name-disagrees": (dict(content=WRONG_META, fields=ps.form_for("Good_Pkg", "1.0", WRONG_META)),
                                "METADATA in good_pkg-1.0-py3-none-any.whl says Name: other-pkg"),
    "metadata-version-disagrees": (dict(content=WRONG_META_VERSION,
                                        fields=ps.form_for("Good_Pkg", "1.0", WRONG_META_VERSION)),
                                   "says Version: 2.0"),
    "sdist-without-pkg-info": (dict(filename="good_pkg-1.0.tar.gz", content=SDIST_NO_PKGINFO,
                                    fields=ps.form_for("Good_Pkg", "1.0", SDIST_NO_PKGINFO, filetype="sdist")),
                               "has no top-level {name}-{version}/PKG-INFO"),
    "sha256-mismatch": (dict(fields=_form(sha256_digest="0" * 64)), "sha256_digest mismatch"),
    "blake2-mismatch": (dict(fields=_form(blake2_256_digest="ab" * 32)), "blake2_256_digest mismatch"),
    "md5-mismatch": (dict(fields=_form(md5_digest="0" * 32)), "md5_digest mismatch"),
    "no-digest": (dict(fields=_form(sha256_digest=None, blake2_256_digest=None)), "at least one message digest"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_uploads_are_refused_with_a_reason_and_nothing_stored(server, repo, case):
    d, r, token, url = repo
    spec, reason = CASES[case]
    fields = spec.get("fields", _form())
    filename = spec.get("filename", GOOD_NAME)
    content = spec.get("content", GOOD)
    resp = ps.raw_upload(url, token, fields, filename, content if filename is not None else None)
    assert resp.status_code == 400, resp.text
    assert reason in resp.text
    assert resp.reason_phrase == _status_line_reason(resp.text)
    assert _packages(server, d, r) == []
    # the valid upload of the same file still works afterwards (nothing half-stored blocks it)
    ok = ps.raw_upload(url, token, _form(), GOOD_NAME, GOOD)
    assert ok.status_code == 200, ok.text
    ok = ps.raw_upload(url, token, ps.form_for("Good_Pkg", "1.0", SDIST, filetype="sdist"), "good_pkg-1.0.tar.gz",
                       SDIST)
    assert ok.status_code == 200, ok.text


def test_non_multipart_body_is_refused(server, repo):
    d, r, token, url = repo
    resp = httpx.post(url, content=json.dumps({"name": "x"}), headers={"Content-Type": "application/json"},
                      auth=("aws", token))
    assert resp.status_code == 400 and "multipart/form-data" in resp.text
    truncated = ps.raw_upload(url, token, _form(), GOOD_NAME, GOOD)
    assert truncated.status_code == 200
    body = b'--xyz\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n--xyz\r\nContent-Dispo'
    resp = httpx.post(url, content=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"},
                      auth=("aws", token))
    assert resp.status_code == 400
    assert _versions(server, d, r, "good-pkg") == {"1.0": "Published"}


def test_twine_shows_the_reason_for_a_refused_upload(server, repo, tmp_path):
    """twine builds the form from the wheel, so a file name that disagrees with METADATA is one
    thing it sends; with --verbose it prints our reason (the body)."""
    d, r, token, url = repo
    bad = tmp_path / "named_wrong-1.0-py3-none-any.whl"
    bad.write_bytes(ps.wheel_bytes("Something_Else", "1.0"))
    proc = ps.twine_upload(url, token, [bad], check=False, extra=["--verbose"])
    assert proc.returncode == 1
    text = " ".join(proc.stdout.split())
    assert "400" in text and "is for project 'named-wrong'" in text, text
    quiet = ps.twine_upload(url, token, [bad], check=False)
    assert quiet.returncode == 1 and "is for project 'named-wrong'" in " ".join(quiet.stdout.split())
    assert _packages(server, d, r) == []


def test_archived_version_takes_no_new_files(server, repo, tmp_path):
    d, r, token, url = repo
    ps.twine_upload(url, token, [ps.make_wheel(tmp_path, "frozen", "1.0")])
    server.cli("update-package-versions-status", "--domain", d, "--repository", r, "--format", "pypi",
               "--package", "frozen", "--versions", "1.0", "--target-status", "Archived")
    sdist = ps.make_sdist(tmp_path, "frozen", "1.0")
    resp = ps.raw_upload(url, token, ps.form_for("frozen", "1.0", sdist.read_bytes(), filetype="sdist"),
                         sdist.name, sdist.read_bytes())
    assert resp.status_code == 409 and "Archived" in resp.text
    assets = server.boto().list_package_version_assets(domain=d, repository=r, format="pypi", package="frozen",
                                                       packageVersion="1.0")["assets"]
    assert [a["name"] for a in assets] == ["frozen-1.0-py3-none-any.whl"]


def test_upload_needs_credentials_and_publish_permission(server, repo, unique, tmp_path):
    d, r, token, url = repo
    wheel = ps.make_wheel(tmp_path, "guarded", "1.0")
    content = wheel.read_bytes()
    anon = ps.raw_upload(url, None, ps.form_for("guarded", "1.0", content), wheel.name, content)
    assert anon.status_code == 401 and anon.headers["www-authenticate"].startswith("Basic")
    bad = ps.raw_upload(url, "not-a-token", ps.form_for("guarded", "1.0", content), wheel.name, content)
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Basic")
    proc = ps.twine_upload(url, "not-a-token", [wheel], check=False)
    assert proc.returncode == 1 and "401" in proc.stdout

    # A reader may read but not publish.
    name = f"reader{unique}"
    key = server.new_user(name)
    arn = f"arn:aws:iam::000000000000:user/{name}"
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": arn},
        "Action": ["codeartifact:GetAuthorizationToken", "codeartifact:ReadFromRepository",
                   "sts:GetServiceBearerToken"],
        "Resource": "*"}]}
    server.boto().put_domain_permissions_policy(domain=d, policyDocument=json.dumps(policy))
    reader_token = server.token(d, key=key)
    denied = ps.raw_upload(url, reader_token, ps.form_for("guarded", "1.0", content), wheel.name, content)
    assert denied.status_code == 403, denied.text
    proc = ps.twine_upload(url, reader_token, [wheel], check=False)
    assert proc.returncode == 1 and "403" in proc.stdout
    assert _packages(server, d, r) == []
    ps.twine_upload(url, token, [wheel])
    page = httpx.get(url + "simple/guarded/", auth=("aws", reader_token))
    assert page.status_code == 200 and wheel.name in page.text


def test_size_limit_is_configurable(tmp_path):
    srv = start_server(tmp_path / "srv", env={"ARCA_MAX_UPLOAD_BYTES": "4000"})
    try:
        srv.create_repo("acme", "py")
        token, url = srv.token("acme"), srv.endpoint("acme", "pypi", "py")
        small = ps.make_wheel(tmp_path / "s", "small", "1.0")
        ps.twine_upload(url, token, [small])
        big = ps.make_wheel(tmp_path / "b", "big", "1.0", module_source=f"DATA = {os.urandom(3000).hex()!r}\n")
        assert big.stat().st_size > 4000
        data = big.read_bytes()
        resp = ps.raw_upload(url, token, ps.form_for("big", "1.0", data), big.name, data)
        assert resp.status_code == 413 and "limit of 4000 bytes" in resp.text
        # without Content-Length (chunked), the limit holds while streaming
        resp = ps.raw_upload(url, token, ps.form_for("big", "1.0", data), big.name, data, chunk=1024)
        assert resp.status_code == 413
        proc = ps.twine_upload(url, token, [big], check=False)
        assert proc.returncode == 1 and "413" in proc.stdout
        names = [p["package"] for p in srv.boto().list_packages(domain="acme", repository="py")["packages"]]
        assert names == ["small"]
    finally:
        srv.stop()


def test_origin_configuration_can_block_publishing(server, repo, tmp_path):
    d, r, token, url = repo
    server.boto().put_package_origin_configuration(
        domain=d, repository=r, format="pypi", package="Blocked_Pkg",
        restrictions={"publish": "BLOCK", "upstream": "ALLOW"})
    wheel = ps.make_wheel(tmp_path, "Blocked.Pkg", "1.0")
    resp = ps.raw_upload(url, token, ps.form_for("Blocked.Pkg", "1.0", wheel.read_bytes()), wheel.name,
                         wheel.read_bytes())
    assert resp.status_code == 403 and "publish=BLOCK" in resp.text, resp.text
    assert _versions(server, d, r, "blocked-pkg") == {}
    proc = ps.twine_upload(url, token, [wheel], check=False)
    assert proc.returncode == 1 and "403" in proc.stdout
