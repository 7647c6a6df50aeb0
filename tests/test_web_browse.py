"""Browsing pages: repository facts, paging through 10,000 packages and 1,000 versions (one page of
rows, a pager), filters, search across a domain, version details and snippets, origin controls,
connection instructions and the token button, every version action through the services."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx
from sqlalchemy import insert

from tests.web_support import console_user, seed_version, services, sha256, signed_in, text_of


def _rows(page: str, table_class: str) -> list[str]:
    m = re.search(rf'<table class="list {table_class}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert m, f"no table {table_class}"
    return [text_of(r).split() for r in re.findall(r"<tr>(.*?)</tr>", m.group(1), re.S)]


def _ids(server, domain: str, repo: str) -> tuple[int, int]:
    from app.services import domains as dm

    with services(server).db.read() as s:
        d = dm.get_domain(s, domain)
        return d.id, dm.get_repository(s, d, repo).id


def test_repository_with_10000_packages_shows_one_page_and_a_pager(server, unique):
    from app.db.models import Package

    domain, repo = f"d{unique}", "big"
    server.create_repo(domain, repo)
    _, rid = _ids(server, domain, repo)
    arca = services(server)
    with arca.db.session() as s:
        s.execute(insert(Package), [
            {"repository_id": rid, "format": "npm" if i % 2 else "pypi", "namespace": "", "name": f"pkg-{i:05d}",
             "display_name": f"pkg-{i:05d}", "attributes": {}} for i in range(10_000)])
    user = f"ops{unique}"
    console_user(server, user, admin=True)
    c = signed_in(server, user)

    first = c.get(f"/ui/d/{domain}/r/{repo}")
    assert first.status_code == 200
    assert "10000 packages" in text_of(first.text)
    rows = _rows(first.text, "packages")
    assert len(rows) == 50
    assert rows[0][0] == "pkg-00001" and rows[0][1] == "npm"  # ordered by format, namespace, name
    assert "Page 1 of 200" in first.text and 'rel="next"' in first.text and 'rel="prev"' not in first.text

    last = c.get(f"/ui/d/{domain}/r/{repo}?page=200")
    rows = _rows(last.text, "packages")
    assert len(rows) == 50 and rows[-1][0] == "pkg-09998"
    assert 'rel="next"' not in last.text and 'rel="prev"' in last.text

    # Filters: format, name prefix (combined with paging), namespace.
    pypi = c.get(f"/ui/d/{domain}/r/{repo}?" + urlencode({"format": "pypi", "prefix": "pkg-099"}))
    rows = _rows(pypi.text, "packages")
    assert [r[0] for r in rows] == [f"pkg-{i:05d}" for i in range(9900, 10_000, 2)]
    assert "50 packages match" in text_of(pypi.text)
    assert 'rel="next"' not in pypi.text
    page2 = c.get(f"/ui/d/{domain}/r/{repo}?" + urlencode({"format": "npm", "page": 2}))
    assert _rows(page2.text, "packages")[0][0] == "pkg-00101"
    assert "format=npm" in re.search(r'rel="next" href="([^"]+)"', page2.text).group(1)
    none = c.get(f"/ui/d/{domain}/r/{repo}?namespace=nothing")
    assert "No packages match these filters" in text_of(none.text)
    assert c.get(f"/ui/d/{domain}/r/{repo}?page=0").status_code == 400
    assert c.get(f"/ui/d/{domain}/r/{repo}?format=cobol").status_code == 400


def test_package_with_1000_versions_shows_one_page_newest_first(server, unique):
    from app.db.models import PackageVersion
    from app.domain.coords import Coordinates
    from app.services import domains as dm, rows as pk

    domain, repo = f"d{unique}", "libs"
    server.create_repo(domain, repo)
    arca = services(server)
    with arca.db.session() as s:
        r = dm.get_repository(s, dm.get_domain(s, domain), repo)
        p = pk.get_or_create_package(s, r, Coordinates("maven", "com.acme", "lib"))
        s.flush()
        s.execute(insert(PackageVersion), [
            {"package_id": p.id, "version": f"1.{i}.0", "status": "Published" if i % 3 else "Unlisted",
             "revision": f"r{i}", "origin_type": "INTERNAL", "attributes": {}} for i in range(1000)])
    user = f"ops{unique}"
    console_user(server, user, admin=True)
    c = signed_in(server, user)
    base = f"/ui/d/{domain}/r/{repo}/package?" + urlencode({"format": "maven", "namespace": "com.acme",
                                                             "name": "lib"})
    first = c.get(base)
    assert first.status_code == 200
    rows = _rows(first.text, "versions")
    assert len(rows) == 50 and rows[0][:2] == ["1.999.0", "Unlisted"] and rows[1][:2] == ["1.998.0", "Published"]
    assert "Page 1 of 20" in first.text
    last = c.get(base + "&page=20")
    assert _rows(last.text, "versions")[-1][0] == "1.0.0" and 'rel="next"' not in last.text

    listing = c.get(f"/ui/d/{domain}/r/{repo}")
    assert _rows(listing.text, "packages")[0][:4] == ["com.acme:", "lib", "maven", "1.999.0"]


def test_domain_page_shows_repository_facts_and_search_finds_packages(server, unique):
    domain = f"d{unique}"
    server.create_repo(domain, "base", description="Upstream of everything")
    server.create_repo(domain, "apps", description="Applications", upstreams=[{"repositoryName": "base"}])
    server.boto().associate_external_connection(domain=domain, repository="base",
                                                externalConnection="public:npmjs")
    data = b"x" * 3000
    seed_version(server, domain, "base", "npm", "acme", "widget", "1.0.0", files={"widget-1.0.0.tgz": data})
    seed_version(server, domain, "base", "npm", "acme", "widget", "1.1.0", files={"widget-1.1.0.tgz": data})
    seed_version(server, domain, "apps", "pypi", "", "widgetry", "2.0", files={"widgetry-2.0.tar.gz": b"y" * 10})
    seed_version(server, domain, "apps", "pypi", "", "other", "1.0")
    user = f"ops{unique}"
    console_user(server, user, admin=True)
    c = signed_in(server, user)

    page = c.get(f"/ui/d/{domain}")
    table = text_of(page.text)
    assert "Upstream of everything" in table and "Applications" in table
    assert re.search(r"apps\s+Applications\s+base\s+none\s+2\s+10 B", table), table
    # Identical bytes in two versions are stored (and counted) once.
    assert re.search(r"base\s+Upstream of everything\s+none\s+public:npmjs\s+\(npm\)\s+1\s+2\.9 KiB", table), table

    found = c.get(f"/ui/d/{domain}/search?q=WIDG")
    rows = _rows(found.text, "results")
    assert sorted((r[0], r[-4]) for r in rows) == [("@acme/widget", "base"), ("widgetry", "apps")]
    assert "/ui/d/" + domain + "/r/base/package?format=npm&amp;namespace=acme&amp;name=widget" in found.text
    assert "No package names contain" in c.get(f"/ui/d/{domain}/search?q=zzz").text
    assert c.get(f"/ui/d/{domain}/search?q=100%25").status_code == 200  # LIKE wildcards are escaped

    overview = c.get("/ui/")
    assert re.search(rf"{domain}\s+2\s+2\.9 KiB", text_of(overview.text))


def test_version_page_details_and_install_snippets(server, unique):
    domain, repo = f"d{unique}", "libs"
    server.create_repo(domain, repo)
    deps = [{"namespace": "org.slf4j", "package": "slf4j-api", "dependencyType": "compile",
             "versionRequirement": "2.0.9"}]
    seed_version(server, domain, repo, "maven", "com.acme", "core", "3.1.4", summary="Core library",
                 attributes={"dependencies": deps, "readme": "# Core\n\nUse *it*.", "homePage": "https://acme.test/",
                             "licenses": [{"name": "Apache-2.0", "url": "https://apache.org/licenses/LICENSE-2.0"}]},
                 files={"core-3.1.4.jar": b"jar-bytes", "core-3.1.4.pom": b"<project/>"})
    seed_version(server, domain, repo, "pypi", "", "acme-tools", "0.9")
    seed_version(server, domain, repo, "npm", "acme", "ui", "5.0.0")
    user = f"ops{unique}"
    console_user(server, user, admin=True)
    c = signed_in(server, user)

    def version(fmt, ns, name, v):
        r = c.get(f"/ui/d/{domain}/r/{repo}/version?" + urlencode({"format": fmt, "namespace": ns, "name": name,
                                                                    "version": v}))
        assert r.status_code == 200, r.text
        return r.text

    maven = version("maven", "com.acme", "core", "3.1.4")
    text = text_of(maven)
    for expected in ("Core library", "core-3.1.4.jar", "core-3.1.4.pom", sha256(b"jar-bytes"), "9 B",
                     "org.slf4j:slf4j-api", "2.0.9", "compile", "Apache-2.0", "https://acme.test/", "# Core",
                     "<groupId>com.acme</groupId>", "<artifactId>core</artifactId>", "<version>3.1.4</version>",
                     'implementation("com.acme:core:3.1.4")', server.endpoint(domain, "maven", repo)):
        assert expected in text, expected
    assert "pip install acme-tools==0.9" in text_of(version("pypi", "", "acme-tools", "0.9"))
    assert "npm install @acme/ui@5.0.0" in text_of(version("npm", "acme", "ui", "5.0.0"))
    missing = c.get(f"/ui/d/{domain}/r/{repo}/version?format=maven&namespace=com.acme&name=core&version=9")
    assert missing.status_code == 404 and "does not exist" in missing.text
    # the reason is shown once, as a problem, never in the success banner
    assert 'class="flash ok"' not in missing.text and missing.text.count("does not exist") == 1
    assert c.get(f"/ui/d/nosuch{unique}").status_code == 404


def _act(c, domain, repo, version, action, **coords):
    coords = coords or {"format": "pypi", "namespace": "", "name": "lib"}
    return c.post(f"/ui/d/{domain}/r/{repo}/version/action", {**coords, "version": version, "action": action},
                  csrf=c.csrf())


def test_every_version_action_goes_through_the_services(server, unique):
    domain, repo = f"d{unique}", "py"
    server.create_repo(domain, repo)
    for v in ("1.0", "2.0", "3.0"):
        seed_version(server, domain, repo, "pypi", "", "lib", v, files={f"lib-{v}.tar.gz": v.encode()})
    user = f"ops{unique}"
    console_user(server, user, admin=True)
    c = signed_in(server, user)
    boto = server.boto()

    def status(v):
        return {x["version"]: x["status"] for x in boto.list_package_versions(
            domain=domain, repository=repo, format="pypi", package="lib")["versions"]}.get(v)

    r = _act(c, domain, repo, "1.0", "unlist")
    assert r.status_code == 303 and "done=unlist" in r.headers["location"]
    assert "Version 1.0 unlisted." in c.get(r.headers["location"]).text
    assert status("1.0") == "Unlisted"
    assert _act(c, domain, repo, "1.0", "restore").status_code == 303 and status("1.0") == "Published"
    # The audit trail names the console user, as it names the API caller.
    from sqlalchemy import select

    from app.db.models import AuditEvent

    with services(server).db.read() as s:
        trail = s.execute(select(AuditEvent.principal, AuditEvent.details).where(
            AuditEvent.domain == domain, AuditEvent.action == "UpdatePackageVersionStatus")
            .order_by(AuditEvent.id)).all()
    assert [(p, d["status"]["to"], d.get("operation")) for p, d in trail] == [
        (f"arn:aws:iam::000000000000:user/{user}", "Unlisted", "UpdatePackageVersionsStatus"),
        (f"arn:aws:iam::000000000000:user/{user}", "Published", "UpdatePackageVersionsStatus")]
    assert _act(c, domain, repo, "2.0", "dispose").status_code == 303 and status("2.0") == "Disposed"
    assets = boto.list_package_version_assets(domain=domain, repository=repo, format="pypi", package="lib",
                                              packageVersion="2.0")["assets"]
    assert assets == []
    # The service's rules hold here too: a disposed version cannot be published again.
    refused = _act(c, domain, repo, "2.0", "publish")
    assert refused.status_code == 409 and "Disposed and cannot change status" in refused.text
    assert status("2.0") == "Disposed"
    gone = _act(c, domain, repo, "3.0", "delete")
    assert gone.status_code == 303 and "done=delete" in gone.headers["location"]
    assert "Version 3.0 deleted." in c.get(gone.headers["location"]).text
    assert status("3.0") is None
    assert _act(c, domain, repo, "1.0", "explode").status_code == 400
    assert _act(c, domain, repo, "9.9", "archive").status_code == 404

    # Origin controls: the page shows the defaults, the form stores what PutPackageOriginConfiguration stores.
    pkg_url = f"/ui/d/{domain}/r/{repo}/package?format=pypi&name=lib"
    assert re.search(r"Publish:\s+ALLOW\s+·\s+Upstream:\s+BLOCK\s+\(defaults\)", text_of(c.get(pkg_url).text))
    saved = c.post(f"/ui/d/{domain}/r/{repo}/package/origin",
                   {"format": "pypi", "namespace": "", "name": "lib", "publish": "BLOCK", "upstream": "ALLOW"},
                   csrf=c.csrf())
    assert saved.status_code == 303
    described = boto.describe_package(domain=domain, repository=repo, format="pypi", package="lib")["package"]
    assert described["originConfiguration"]["restrictions"] == {"publish": "BLOCK", "upstream": "ALLOW"}
    assert "Origin controls saved." in c.get(saved.headers["location"]).text
    bad = c.post(f"/ui/d/{domain}/r/{repo}/package/origin",
                 {"format": "pypi", "namespace": "", "name": "lib", "publish": "MAYBE", "upstream": "ALLOW"},
                 csrf=c.csrf())
    assert bad.status_code == 400


def test_connection_instructions_for_each_client_and_the_token_button(server, unique):
    domain, repo = f"d{unique}", "shared"
    server.create_repo(domain, repo)
    user = f"ops{unique}"
    console_user(server, user, admin=True)
    c = signed_in(server, user)
    expected = {
        "mvn": ["<url>" + server.endpoint(domain, "maven", repo) + "</url>", "<username>aws</username>",
                "${env.CODEARTIFACT_AUTH_TOKEN}", "<distributionManagement>"],
        "pip": [f"--index-url http://aws:$CODEARTIFACT_AUTH_TOKEN@{server.hostport}/{domain}/pypi/{repo}/simple/",
                "uv pip install"],
        "twine": ["repository = " + server.endpoint(domain, "pypi", repo), "username = aws"],
        "npm": ["registry=" + server.endpoint(domain, "npm", repo),
                f"//{server.hostport}/{domain}/npm/{repo}/:_authToken=$CODEARTIFACT_AUTH_TOKEN"],
        "curl": ["--upload-file app-1.0.0.jar", server.endpoint(domain, "maven", repo)],
    }
    for client, needles in expected.items():
        page = c.get(f"/ui/d/{domain}/r/{repo}/connect?client={client}")
        assert page.status_code == 200
        text = text_of(page.text)
        for needle in needles:
            assert needle in text, (client, needle)
    assert c.get(f"/ui/d/{domain}/r/{repo}/connect?client=gradle").status_code == 404

    issued = c.post(f"/ui/d/{domain}/r/{repo}/connect", {"client": "npm"}, csrf=c.csrf())
    assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
    token = re.search(r":_authToken=([A-Za-z0-9._\-]+)", text_of(issued.text)).group(1)
    assert token != "$CODEARTIFACT_AUTH_TOKEN"
    url = server.endpoint(domain, "maven", repo) + "com/acme/none/1.0/none-1.0.jar"
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 404
    assert httpx.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
