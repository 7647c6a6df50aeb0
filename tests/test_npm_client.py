"""Real npm 11 against a real `arca serve`: every command users run, scoped and unscoped."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from tests.npm_support import escape, installed_version, setup_registry, write_consumer, write_package


@pytest.fixture
def reg(server, tmp_path, unique):
    return setup_registry(server, tmp_path, unique)


def versions_of(server, reg, name: str) -> dict:
    scope, _, bare = name[1:].partition("/") if name.startswith("@") else ("", "", name)
    kw = {"namespace": scope} if scope else {}
    out = server.boto().list_package_versions(domain=reg.domain, repository=reg.repo, format="npm",
                                              package=bare, **kw)
    return {v["version"]: v["status"] for v in out["versions"]}


def test_publish_scoped_and_unscoped_then_install_a_dependency_chain(server, reg, tmp_path):
    reg.publish("chain-base", "1.0.0")
    reg.publish("@acme/chain-mid", "1.0.0", deps={"chain-base": "^1.0.0"})
    reg.publish("chain-top", "1.0.0", deps={"@acme/chain-mid": "^1.0.0"})
    assert versions_of(server, reg, "@acme/chain-mid") == {"1.0.0": "Published"}

    app = write_consumer(tmp_path / "app", {"chain-top": "^1.0.0"})
    reg.npm("install", cwd=app)
    for name in ("chain-top", "@acme/chain-mid", "chain-base"):
        assert installed_version(app, name) == "1.0.0"
    lock = json.loads((app / "package-lock.json").read_text())
    resolved = lock["packages"]["node_modules/@acme/chain-mid"]["resolved"]
    # Tarball URLs stay on the registry's host:port (or npm would drop the token).
    assert resolved == f"{reg.url}@acme/chain-mid/-/chain-mid-1.0.0.tgz"
    assert lock["packages"]["node_modules/chain-base"]["integrity"].startswith("sha512-")

    # npm ci from the lockfile with `resolved` (tarballs fetched directly), fresh cache.
    shutil.rmtree(app / "node_modules")
    reg.npm("ci", cwd=app, cache=tmp_path / "cache-ci1")
    assert installed_version(app, "chain-base") == "1.0.0"

    # ... and without `resolved` (npm then asks the registry for the packuments).
    for entry in lock["packages"].values():
        entry.pop("resolved", None)
    (app / "package-lock.json").write_text(json.dumps(lock))
    shutil.rmtree(app / "node_modules")
    reg.npm("ci", cwd=app, cache=tmp_path / "cache-ci2")
    assert installed_version(app, "@acme/chain-mid") == "1.0.0"


def test_control_plane_sees_npm_shapes(server, reg):
    reg.publish("@acme/shapes", "1.2.3", deps={"left-pad": "^1.0.0", "@types/node": "*"},
                extra={"devDependencies": {"jest": "^29"}, "peerDependencies": {"react": ">=18"},
                       "optionalDependencies": {"fsevents": "^2"}})
    c = server.boto()
    pkgs = c.list_packages(domain=reg.domain, repository=reg.repo, format="npm")["packages"]
    assert [(p["namespace"], p["package"], p["format"]) for p in pkgs] == [("acme", "shapes", "npm")]
    lv = c.list_package_versions(domain=reg.domain, repository=reg.repo, format="npm", namespace="acme",
                                 package="shapes")
    assert lv["namespace"] == "acme" and lv["defaultDisplayVersion"] == "1.2.3"
    desc = c.describe_package_version(domain=reg.domain, repository=reg.repo, format="npm", namespace="acme",
                                      package="shapes", packageVersion="1.2.3")["packageVersion"]
    assert desc["displayName"] == "@acme/shapes" and desc["status"] == "Published"
    assert desc["summary"] == "@acme/shapes test package"
    assert desc["homePage"] == "https://example.invalid/@acme/shapes"
    assert desc["licenses"] == [{"name": "MIT"}]
    assets = c.list_package_version_assets(domain=reg.domain, repository=reg.repo, format="npm",
                                           namespace="acme", package="shapes", packageVersion="1.2.3")["assets"]
    assert [a["name"] for a in assets] == ["shapes-1.2.3.tgz"]
    deps = c.list_package_version_dependencies(domain=reg.domain, repository=reg.repo, format="npm",
                                               namespace="acme", package="shapes",
                                               packageVersion="1.2.3")["dependencies"]
    got = {(d.get("namespace"), d["package"], d["dependencyType"], d["versionRequirement"]) for d in deps}
    assert got == {(None, "left-pad", "regular", "^1.0.0"), ("types", "node", "regular", "*"),
                   (None, "jest", "dev", "^29"), (None, "react", "peer", ">=18"),
                   (None, "fsevents", "optional", "^2")}
    readme = c.get_package_version_readme(domain=reg.domain, repository=reg.repo, format="npm", namespace="acme",
                                          package="shapes", packageVersion="1.2.3")["readme"]
    assert "Version 1.2.3." in readme


def test_view_versions_dist_tags_and_fields(reg):
    reg.publish("viewed", "1.0.0")
    reg.publish("viewed", "1.1.0")
    reg.publish("viewed", "2.0.0-rc.1", tag="next")
    assert reg.npm_json("view", "viewed", "versions") == ["1.0.0", "1.1.0", "2.0.0-rc.1"]
    assert reg.npm_json("view", "viewed", "dist-tags") == {"latest": "1.1.0", "next": "2.0.0-rc.1"}
    assert reg.npm("view", "viewed@1.0.0", "description").stdout.strip() == "viewed test package"
    tarball = reg.npm("view", "viewed@1.0.0", "dist.tarball").stdout.strip()
    assert tarball == f"{reg.url}viewed/-/viewed-1.0.0.tgz"
    assert reg.npm("view", "@nope/missing", check=False).returncode != 0


def test_dist_tag_add_rm_ls_and_retag_changes_fresh_install(reg, tmp_path):
    reg.publish("tagged", "1.0.0")
    reg.publish("tagged", "1.1.0", tag="next")
    assert reg.npm_json("view", "tagged", "dist-tags") == {"latest": "1.0.0", "next": "1.1.0"}

    def fresh_install(n: int) -> str:
        app = write_consumer(tmp_path / f"app{n}", {"tagged": "^1.0.0"})
        reg.npm("install", cwd=app, cache=tmp_path / f"cache{n}")
        return installed_version(app, "tagged")

    assert fresh_install(1) == "1.0.0"  # `latest` satisfies ^1.0.0, so npm takes it
    reg.npm("dist-tag", "add", "tagged@1.1.0", "latest")
    assert fresh_install(2) == "1.1.0"

    reg.npm("dist-tag", "add", "tagged@1.0.0", "stable")
    ls = reg.npm("dist-tag", "ls", "tagged").stdout
    assert "stable: 1.0.0" in ls and "latest: 1.1.0" in ls and "next: 1.1.0" in ls
    reg.npm("dist-tag", "rm", "tagged", "stable")
    assert "stable" not in reg.npm("dist-tag", "ls", "tagged").stdout
    bad = reg.npm("dist-tag", "rm", "tagged", "latest", check=False)
    assert bad.returncode != 0 and "latest" in bad.stderr
    assert reg.npm_json("view", "tagged", "dist-tags")["latest"] == "1.1.0"


def test_scoped_dist_tags(reg):
    reg.publish("@team/tool", "1.0.0")
    reg.publish("@team/tool", "2.0.0-beta.0", tag="beta")
    reg.npm("dist-tag", "add", "@team/tool@1.0.0", "lts")
    assert reg.npm_json("view", "@team/tool", "dist-tags") == {"latest": "1.0.0", "beta": "2.0.0-beta.0",
                                                               "lts": "1.0.0"}


def test_deprecate_and_undeprecate(reg, tmp_path):
    reg.publish("oldlib", "1.0.0")
    reg.publish("oldlib", "2.0.0")
    reg.npm("deprecate", "oldlib@1.0.0", "use oldlib 2")
    assert reg.npm("view", "oldlib@1.0.0", "deprecated").stdout.strip() == "use oldlib 2"
    assert reg.npm("view", "oldlib@2.0.0", "deprecated").stdout.strip() == ""
    app = write_consumer(tmp_path / "app", {"oldlib": "1.0.0"})
    out = reg.npm("install", "--loglevel", "warn", cwd=app)
    assert "deprecated" in out.stderr and "use oldlib 2" in out.stderr
    reg.npm("deprecate", "oldlib@1.0.0", "")
    assert reg.npm("view", "oldlib@1.0.0", "deprecated").stdout.strip() == ""
    assert "deprecated" not in reg.packument("oldlib").json()["versions"]["1.0.0"]


def test_unpublish_a_version_then_the_whole_package(server, reg):
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        reg.publish("@acme/gone", v)
    reg.npm("unpublish", "@acme/gone@1.2.0")
    assert reg.npm_json("view", "@acme/gone", "versions") == ["1.0.0", "1.1.0"]
    assert reg.npm_json("view", "@acme/gone", "dist-tags") == {"latest": "1.1.0"}
    assert versions_of(server, reg, "@acme/gone") == {"1.0.0": "Published", "1.1.0": "Published"}
    with reg.http() as c:
        assert c.get("@acme/gone/-/gone-1.2.0.tgz").status_code == 404
        assert c.get("@acme/gone/-/gone-1.1.0.tgz").status_code == 200

    reg.npm("unpublish", "@acme/gone", "--force")
    assert reg.packument("@acme/gone").status_code == 404
    assert server.boto().list_packages(domain=reg.domain, repository=reg.repo, format="npm")["packages"] == []
    view = reg.npm("view", "@acme/gone", check=False)
    assert view.returncode != 0 and "E404" in view.stderr


def test_unpublish_the_only_version(server, reg):
    reg.publish("single", "1.0.0")
    reg.npm("unpublish", "single@1.0.0", "--force")
    assert reg.packument("single").status_code == 404


def test_ping_and_whoami(reg):
    ping = reg.npm("ping", "--loglevel", "notice")
    assert "PONG" in ping.stderr or "PONG" in ping.stdout
    assert reg.npm("whoami").stdout.strip() == "admin"


def test_force_republish_is_refused(reg, tmp_path):
    reg.publish("fixed", "1.0.0")
    before = reg.packument("fixed").json()["versions"]["1.0.0"]["dist"]["integrity"]
    d = write_package(tmp_path / "again", "fixed", "1.0.0", extra={"description": "different bytes"})
    plain = reg.npm("publish", cwd=d, check=False)
    assert plain.returncode != 0  # npm's own pre-check
    forced = reg.npm("publish", "--force", cwd=d, check=False)
    assert forced.returncode != 0 and "E409" in forced.stderr, forced.stderr
    assert "previously published version 1.0.0" in forced.stderr
    assert reg.packument("fixed").json()["versions"]["1.0.0"]["dist"]["integrity"] == before


def test_status_changes_are_seen_by_npm_view_and_install(server, reg, tmp_path):
    reg.publish("@acme/stat", "1.0.0")
    reg.publish("@acme/stat", "1.1.0")
    reg.npm("dist-tag", "add", "@acme/stat@1.1.0", "edge")
    c = server.boto()

    def set_status(version, status):
        out = c.update_package_versions_status(domain=reg.domain, repository=reg.repo, format="npm",
                                               namespace="acme", package="stat", versions=[version],
                                               targetStatus=status)
        assert version in out["successfulVersions"], out

    set_status("1.1.0", "Unlisted")
    assert reg.npm_json("view", "@acme/stat", "versions") == ["1.0.0"]
    assert reg.npm_json("view", "@acme/stat", "dist-tags") == {"latest": "1.0.0"}
    app = write_consumer(tmp_path / "app", {"@acme/stat": "^1.0.0"})
    reg.npm("install", cwd=app, cache=tmp_path / "c1")
    assert installed_version(app, "@acme/stat") == "1.0.0"
    with reg.http() as h:  # Unlisted: still downloadable by its exact coordinates
        assert h.get("@acme/stat/-/stat-1.1.0.tgz").status_code == 200
        assert h.get("@acme/stat/1.1.0").json()["version"] == "1.1.0"

    set_status("1.1.0", "Archived")
    with reg.http() as h:
        assert h.get("@acme/stat/-/stat-1.1.0.tgz").status_code == 404
    set_status("1.1.0", "Published")
    assert reg.npm_json("view", "@acme/stat", "versions") == ["1.0.0", "1.1.0"]
    assert reg.npm_json("view", "@acme/stat", "dist-tags") == {"latest": "1.1.0", "edge": "1.1.0"}


def test_wrong_token_is_e401(reg, tmp_path):
    reg.npmrc.write_text(reg.npmrc.read_text().replace(reg.token, "bogus"))
    d = write_package(tmp_path / "p", "nope", "1.0.0")
    out = reg.npm("publish", cwd=d, check=False)
    assert out.returncode != 0 and "E401" in out.stderr
    assert httpx.get(reg.url + escape("nope"), headers={"Authorization": f"Bearer {reg.token}"}).status_code == 404
