"""Issue 14, PyPI write-once under every spelling: a file is one file whatever the case and
separators of its name, versions equal under PEP 440 are one version (the second upload of a file
for it is a 409), a version has one sdist, and a local version label is its own version but is
listed below its public release."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.pypi_support import form_for, raw_upload, sdist_bytes, twine_upload, wheel_bytes


@pytest.fixture
def repo(server, unique):
    d = f"tp{unique}"
    server.create_repo(d, "py")
    return d, server.token(d), server.endpoint(d, "pypi", "py")


def _upload(repo, filename: str, name: str, version: str, content: bytes, filetype: str = "bdist_wheel"):
    _d, token, ep = repo
    return raw_upload(ep, token, form_for(name, version, content, filetype=filetype), filename, content)


def _state(server, repo, project: str) -> dict[str, list[str]]:
    """{version: [file names]} as the control plane reports them."""
    d = repo[0]
    c = server.boto()
    try:
        versions = c.list_package_versions(domain=d, repository="py", format="pypi", package=project)["versions"]
    except c.exceptions.ResourceNotFoundException:
        return {}
    return {v["version"]: sorted(a["name"] for a in c.list_package_version_assets(
        domain=d, repository="py", format="pypi", package=project, packageVersion=v["version"])["assets"])
        for v in versions}


def _page_files(repo, project: str) -> list[str]:
    _d, token, ep = repo
    page = httpx.get(f"{ep}simple/{project}/", auth=("aws", token))
    assert page.status_code == 200, page.text
    return re.findall(r'<a href="[^"]*"[^>]*>([^<]+)</a>', page.text)


def test_file_names_are_one_file_whatever_their_case_and_separators(server, repo, tmp_path):
    first = wheel_bytes("RT_Dup", "1.0")
    assert _upload(repo, "RT_Dup-1.0-py3-none-any.whl", "RT_Dup", "1.0", first).status_code == 200
    other = wheel_bytes("rt_dup", "1.0", module_source="EVIL = True\n")
    for spelling in ("rt_dup-1.0-py3-none-any.whl", "Rt_Dup-1.0-py3-none-any.whl", "rt_dup-1.0-PY3-none-any.whl"):
        resp = _upload(repo, spelling, "rt-dup", "1.0", other)
        assert resp.status_code == 409 and "File already exists" in resp.text, (spelling, resp.text)
        assert "RT_Dup-1.0-py3-none-any.whl" in resp.text
    # twine sees the same refusal
    path = tmp_path / "rt_dup-1.0-py3-none-any.whl"
    path.write_bytes(other)
    out = twine_upload(repo[2], repo[1], [path], check=False)
    assert out.returncode != 0 and "409" in out.stdout + out.stderr
    assert _state(server, repo, "rt-dup") == {"1.0": ["RT_Dup-1.0-py3-none-any.whl"]}
    assert _page_files(repo, "rt-dup") == ["RT_Dup-1.0-py3-none-any.whl"]
    # the same bytes under another spelling change nothing either (no second link to one file)
    assert _upload(repo, "rt_dup-1.0-py3-none-any.whl", "rt-dup", "1.0", first).status_code == 200
    assert _page_files(repo, "rt-dup") == ["RT_Dup-1.0-py3-none-any.whl"]


@pytest.mark.parametrize("second", ["1.0.0", "1.0.0.0", "01.0"])
def test_versions_equal_under_pep440_are_one_version(server, repo, second):
    assert _upload(repo, "same_ver-1.0-py3-none-any.whl", "same-ver", "1.0",
                   wheel_bytes("same-ver", "1.0")).status_code == 200
    resp = _upload(repo, f"same_ver-{second}-py3-none-any.whl", "same-ver", second,
                   wheel_bytes("same-ver", second, module_source="EVIL = True\n"))
    assert resp.status_code == 409 and "File already exists" in resp.text, resp.text
    assert _state(server, repo, "same-ver") == {"1.0": ["same_ver-1.0-py3-none-any.whl"]}


def test_another_file_for_an_equal_version_joins_that_version(server, repo):
    assert _upload(repo, "joins-1.0-py3-none-any.whl", "joins", "1.0", wheel_bytes("joins", "1.0")).status_code == 200
    sdist = sdist_bytes("joins", "1.0.0")
    assert _upload(repo, "joins-1.0.0.tar.gz", "joins", "1.0.0", sdist, filetype="sdist").status_code == 200
    assert _state(server, repo, "joins") == {"1.0": ["joins-1.0-py3-none-any.whl", "joins-1.0.0.tar.gz"]}


def test_a_version_has_one_sdist(server, repo):
    assert _upload(repo, "one_sdist-1.0.tar.gz", "one-sdist", "1.0", sdist_bytes("one-sdist", "1.0"),
                   filetype="sdist").status_code == 200
    zipped = _zip_sdist("one_sdist", "1.0")
    resp = _upload(repo, "one_sdist-1.0.zip", "one-sdist", "1.0", zipped, filetype="sdist")
    assert resp.status_code == 409 and "one_sdist-1.0.tar.gz" in resp.text, resp.text
    assert _state(server, repo, "one-sdist") == {"1.0": ["one_sdist-1.0.tar.gz"]}


def _zip_sdist(stem: str, version: str) -> bytes:
    import io
    import zipfile

    from tests.pypi_support import metadata_text

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{stem}-{version}/PKG-INFO", metadata_text(stem.replace("_", "-"), version))
    return buf.getvalue()


def test_a_local_version_is_its_own_version_listed_below_the_public_one(server, repo):
    for version in ("2.0.0+evil", "2.0.0", "1.0.0"):
        assert _upload(repo, f"loc-{version}-py3-none-any.whl", "loc", version,
                       wheel_bytes("loc", version)).status_code == 200
    assert set(_state(server, repo, "loc")) == {"1.0.0", "2.0.0", "2.0.0+evil"}
    assert _page_files(repo, "loc") == ["loc-1.0.0-py3-none-any.whl", "loc-2.0.0+evil-py3-none-any.whl",
                                        "loc-2.0.0-py3-none-any.whl"]
