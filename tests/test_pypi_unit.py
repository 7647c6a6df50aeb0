"""In-process checks of the PyPI pieces that need no server: name rules, Accept negotiation, and
that a 5,000-file project page costs one database query (how long it takes is measured by
tests/bench/bench_pypi_page.py, not asserted here)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from app.db.models import Asset, Blob, Domain, Package, PackageVersion, Repository
from app.db.session import Database, upgrade
from app.domain.errors import ValidationError
from app.domain.views import PackageState
from app.formats.pypi import dists, simple
from app.services.resolve import index_files
from tests import pypi_support as ps


@pytest.mark.parametrize("filename,kind,name,version", [
    ("Demo_Beta-1.0-py3-none-any.whl", "wheel", "demo-beta", "1.0"),
    ("demo_beta-1.0.post1-1-cp311-cp311-manylinux_2_28_x86_64.whl", "wheel", "demo-beta", "1.0.post1"),
    ("zope.interface-6.0.tar.gz", "sdist", "zope-interface", "6.0"),
    ("Demo-Beta-1.0rc1.tar.gz", "sdist", "demo-beta", "1.0rc1"),
    ("legacy_pkg-2.0.zip", "sdist", "legacy-pkg", "2.0"),
])
def test_file_names(filename, kind, name, version):
    d = dists.parse_filename(filename)
    assert (d.kind, d.name, str(d.version)) == (kind, name, version)


@pytest.mark.parametrize("filename", ["x-1.0.exe", "x.whl", "x-1.0.tar.bz2", "../x-1.0.tar.gz", ".x-1.0.tar.gz",
                                      "x-1.0-py3-none.whl", "x-notaversion.tar.gz", "x\n-1.0.tar.gz", ""])
def test_bad_file_names(filename):
    with pytest.raises(ValidationError):
        dists.parse_filename(filename)


def test_names_and_versions():
    assert dists.check_name("Zope.Interface_x") == "zope-interface-x"
    for bad in ("-x", "x-", "a b", "", "ü"):
        with pytest.raises(ValidationError):
            dists.check_name(bad)
    assert str(dists.check_version("1.0-RC1")) == "1.0rc1"
    with pytest.raises(ValidationError):
        dists.check_version("1.0-foo-bar")


def test_core_metadata_to_attributes():
    text = ps.metadata_text("Demo", "1.0", requires=["a>=1", "b; extra == 'x'", "not valid !!"],
                            requires_python=">=3.8", summary="s", description="long\ntext",
                            home_page="https://h", license="MIT")
    core = dists.parse_core_metadata(text.encode(), "demo-1.0.tar.gz")
    assert core.summary == "s" and core.requires_python == ">=3.8"
    a = core.attributes
    assert a["readme"].strip() == "long\ntext" and a["homePage"] == "https://h" and a["licenses"] == [{"name": "MIT"}]
    assert a["dependencies"] == [
        {"package": "a", "dependencyType": "Requires-Dist", "versionRequirement": ">=1"},
        {"package": "b", "dependencyType": "Requires-Dist", "versionRequirement": 'extra == "x"'}]


@pytest.mark.parametrize("accept,expected", [
    (None, simple.TEXT_HTML),
    ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01",
     simple.JSON_V1),
    ("text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.4", simple.TEXT_HTML),
    ("*/*;q=0.1, application/vnd.pypi.simple.v1+json", simple.JSON_V1),
    ("application/vnd.pypi.simple.v1+html", simple.HTML_V1),
    ("image/png", simple.TEXT_HTML),
    ("text/*", simple.TEXT_HTML),
    ("application/vnd.pypi.simple.v1+json;q=bogus, text/html;q=0.1", simple.TEXT_HTML),
])
def test_negotiation(accept, expected):
    assert simple.negotiate(accept) == expected


def test_five_thousand_files_render_from_one_query(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        d = Domain(name="acme")
        s.add(d)
        s.flush()
        r = Repository(domain_id=d.id, name="py")
        s.add(r)
        s.flush()
        p = Package(repository_id=r.id, format="pypi", namespace="", name="big", display_name="Big", attributes={})
        s.add(p)
        s.flush()
        for i in range(1000):
            v = PackageVersion(package_id=p.id, version=f"1.{i}", status="Published", revision=str(i),
                               attributes={})
            s.add(v)
            s.flush()
            for j in range(5):
                b = Blob(domain_id=d.id, sha256=f"{i:032d}{j:032d}", sha1="0" * 40, md5="0" * 32, sha512="0" * 128,
                         size=1000 + j)
                s.add(b)
                s.flush()
                s.add(Asset(package_version_id=v.id, name=f"big-1.{i}-py3{j}-none-any.whl", blob_id=b.id,
                            attributes={"requires_python": ">=3.8", "metadata_sha256": "ab" * 32}))
        pid = p.id
    statements = []
    event.listen(db.read_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.read() as s:
        rows = simple.project_rows(index_files(s, PackageState(pid, 0, None)))
    html_body = simple.render_project_html("big", rows)
    json_body = simple.render_project_json("big", rows)
    selects = [x for x in statements if x.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, selects
    assert len(rows) == 5000 and html_body.count(b"<a ") == 5000 and json_body.count(b'"filename"') == 5000
    db.dispose()
