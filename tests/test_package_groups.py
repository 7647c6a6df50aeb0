"""Package groups: pattern syntax, most-specific association, hierarchy and inheritance of
origin restrictions, and their effect on publishing (generic PublishPackageVersion) and on
upstream/external ingestion (check_upstream_allowed)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from app.db.models import Domain, PackageGroup
from app.domain.errors import AccessDenied, ValidationError
from app.services import package_groups as pg

NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _code(exc) -> str:
    return exc.value.response["Error"]["Code"]


def groups(*specs) -> pg.Groups:
    """Groups of a detached domain from (pattern, {type: mode}, {type: [repos]}) tuples."""
    rows = []
    for spec in specs:
        pattern, modes, allowed = (spec + ({}, {}))[:3] if isinstance(spec, tuple) else (spec, {}, {})
        rows.append(PackageGroup(pattern=pg.parse_pattern(pattern).text, restrictions=modes,
                                 allowed_repositories=allowed, created_at=NOW))
    return pg.Groups(Domain(name="acme", created_at=NOW), rows)


# ---- syntax ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, canonical, level", [
    ("/*", "/*", pg.L_ROOT),
    ("/npm/*", "/npm/*", pg.L_FORMAT),
    ("/maven/com.acme~", "/maven/com.acme~", pg.L_NS_PREFIX),
    ("/npm/@acme/*", "/npm/acme/*", pg.L_NS),
    ("/npm//*", "/npm//*", pg.L_NS),
    ("/npm/acme/ui-~", "/npm/acme/ui-~", pg.L_NAME_PREFIX),
    ("/maven/org.apache/log4j-core$", "/maven/org.apache/log4j-core$", pg.L_NAME),
    ("/pypi//My_Package$", "/pypi//my-package$", pg.L_NAME),
])
def test_valid_patterns(text, canonical, level):
    p = pg.parse_pattern(text)
    assert (p.text, p.level) == (canonical, level)


@pytest.mark.parametrize("text, problem", [
    ("npm/*", "must start with '/'"),
    ("/rpm/*", "unknown format"),
    ("/npm", "use /*"),
    ("/npm/acme/react", "use /*"),
    ("/npm/a/b/c$", "use /*"),
    ("/pypi/ns/requests$", "no namespace"),
    ("/maven//junit$", "needs its namespace"),
    ("/maven//*", "need a namespace"),
    ("/npm/acme/re*act$", "'*'"),
    ("/npm/*/*", "'*'"),
    ("/npm/ac me/*", "whitespace"),
    ("/" + "a" * 600, "2-520"),
])
def test_invalid_patterns(text, problem):
    with pytest.raises(ValidationError) as exc:
        pg.parse_pattern(text)
    assert problem in exc.value.message


# ---- matching, hierarchy, inheritance ----------------------------------------------------------------

def test_most_specific_group_wins():
    g = groups("/npm/*", "/npm/acme~", "/npm/acme/*", "/npm/acme/ui-~", "/npm/acme/ui-core$", "/maven/*")
    assert g.associated("npm", "acme", "ui-core")[0].text == "/npm/acme/ui-core$"
    assert g.associated("npm", "acme", "ui-button")[0].text == "/npm/acme/ui-~"
    assert g.associated("npm", "acme", "server")[0].text == "/npm/acme/*"
    assert g.associated("npm", "acme-labs", "x")[0].text == "/npm/acme~"
    assert g.associated("npm", "", "react")[0].text == "/npm/*"
    assert g.associated("pypi", "", "requests")[0].text == "/*"


def test_association_strength():
    g = groups("/maven/com.acme~")
    assert g.associated("maven", "com.acme", "x")[1] == "STRONG"
    assert g.associated("maven", "com.acme.tools", "x")[1] == "STRONG"
    assert g.associated("maven", "com.acmecorp", "x")[1] == "WEAK"
    assert g.associated("maven", "com.other", "x")[0].text == "/*"


def test_parents_and_children():
    g = groups("/npm/*", "/npm/acme/*", "/npm/acme/ui-~", "/npm/acme/ui-core$", "/npm/ac~")
    parent = {x.text: (g.parent(x).text if g.parent(x) else None) for x in g.sorted()}
    assert parent == {"/*": None, "/npm/*": "/*", "/npm/ac~": "/npm/*", "/npm/acme/*": "/npm/ac~",
                      "/npm/acme/ui-~": "/npm/acme/*", "/npm/acme/ui-core$": "/npm/acme/ui-~"}
    assert [c.text for c in g.children(g.get("/npm/*"))] == ["/npm/ac~"]


def test_inherit_follows_the_nearest_explicit_mode():
    g = groups(("/npm/*", {"PUBLISH": "BLOCK"}),
               ("/npm/acme/*", {"PUBLISH": "INHERIT"}),
               ("/npm/acme/ui-~", {"PUBLISH": "ALLOW_SPECIFIC_REPOSITORIES"}, {"PUBLISH": ["release"]}),
               ("/npm/acme/ui-core$", {"PUBLISH": "INHERIT"}))
    mode, source = g.effective(g.get("/npm/acme/*"), "PUBLISH")
    assert (mode, source.text) == ("BLOCK", "/npm/*")
    mode, source = g.effective(g.get("/npm/acme/ui-core$"), "PUBLISH")
    assert (mode, source.text, source.allowed("PUBLISH")) == ("ALLOW_SPECIFIC_REPOSITORIES", "/npm/acme/ui-~",
                                                              ["release"])
    assert g.effective(g.get("/npm/acme/*"), "EXTERNAL_UPSTREAM")[0] == "ALLOW"  # root default


# ---- through the API: effect on publishing --------------------------------------------------------

def _publish(c, domain, repo, package, version="1.0", ns="acme"):
    data = f"{package}-{version}".encode()
    return c.publish_package_version(domain=domain, repository=repo, format="generic", namespace=ns,
                                     package=package, packageVersion=version, assetContent=data, assetName="f",
                                     assetSHA256=hashlib.sha256(data).hexdigest())


def _stored(c, domain, repo) -> set[str]:
    return {p["package"] for p in c.list_packages(domain=domain, repository=repo)["packages"]}


def test_publish_restrictions_and_inheritance(server, domain):
    c = server.boto()
    for r in ("dev", "release"):
        c.create_repository(domain=domain, repository=r)
    c.create_package_group(domain=domain, packageGroup="/generic/acme/*")
    c.create_package_group(domain=domain, packageGroup="/generic/acme/tool-~")
    c.update_package_group_origin_configuration(domain=domain, packageGroup="/generic/acme/*",
                                                restrictions={"PUBLISH": "BLOCK"})
    for pkg in ("lib", "tool-a"):
        with pytest.raises(ClientError) as exc:
            _publish(c, domain, "dev", pkg)
        assert _code(exc) == "AccessDeniedException"
        assert "/generic/acme/*" in str(exc.value)
    desc = c.describe_package_group(domain=domain, packageGroup="/generic/acme/tool-~")["packageGroup"]
    publish = desc["originConfiguration"]["restrictions"]["PUBLISH"]
    assert publish["mode"] == "INHERIT" and publish["effectiveMode"] == "BLOCK"
    assert publish["inheritedFrom"]["pattern"] == "/generic/acme/*"
    # the child allows only the release repository
    c.update_package_group_origin_configuration(
        domain=domain, packageGroup="/generic/acme/tool-~", restrictions={"PUBLISH": "ALLOW_SPECIFIC_REPOSITORIES"},
        addAllowedRepositories=[{"repositoryName": "release", "originRestrictionType": "PUBLISH"}])
    with pytest.raises(ClientError) as exc:
        _publish(c, domain, "dev", "tool-a")
    assert "not one of them" in str(exc.value)
    _publish(c, domain, "release", "tool-a")
    with pytest.raises(ClientError):
        _publish(c, domain, "release", "lib")  # still BLOCKed by the parent
    assert _stored(c, domain, "dev") == set() and _stored(c, domain, "release") == {"tool-a"}
    # other namespaces fall to the root group (ALLOW)
    _publish(c, domain, "dev", "lib", ns="other")
    # deleting the blocking group lets its packages through again
    c.delete_package_group(domain=domain, packageGroup="/generic/acme/*")
    assert c.describe_package_group(domain=domain, packageGroup="/generic/acme/tool-~")["packageGroup"][
        "parent"]["pattern"] == "/*"
    _publish(c, domain, "dev", "lib")
    c.update_package_group_origin_configuration(
        domain=domain, packageGroup="/generic/acme/tool-~",
        removeAllowedRepositories=[{"repositoryName": "release", "originRestrictionType": "PUBLISH"}])
    assert c.list_allowed_repositories_for_group(domain=domain, packageGroup="/generic/acme/tool-~",
                                                 originRestrictionType="PUBLISH")["allowedRepositories"] == []


def test_root_group_restriction_applies_to_everything(server, domain):
    c = server.boto()
    c.create_repository(domain=domain, repository="dev")
    root = c.describe_package_group(domain=domain, packageGroup="/*")["packageGroup"]
    assert root["originConfiguration"]["restrictions"]["PUBLISH"] == {"mode": "ALLOW", "effectiveMode": "ALLOW",
                                                                      "repositoriesCount": 0}
    assert "parent" not in root
    c.update_package_group_origin_configuration(domain=domain, packageGroup="/*", restrictions={"PUBLISH": "BLOCK"})
    with pytest.raises(ClientError) as exc:
        _publish(c, domain, "dev", "anything")
    assert _code(exc) == "AccessDeniedException"
    c.create_package_group(domain=domain, packageGroup="/generic/acme/open$")
    c.update_package_group_origin_configuration(domain=domain, packageGroup="/generic/acme/open$",
                                                restrictions={"PUBLISH": "ALLOW"})
    _publish(c, domain, "dev", "open")
    assert _stored(c, domain, "dev") == {"open"}


def test_invalid_group_requests_change_nothing(server, domain):
    c = server.boto()
    before = c.list_package_groups(domain=domain)["packageGroups"]
    for bad in ("/npm/acme/react", "/pypi/ns/x$", "/nope/*"):
        with pytest.raises(ClientError) as exc:
            c.create_package_group(domain=domain, packageGroup=bad)
        assert _code(exc) == "ValidationException"
    c.create_package_group(domain=domain, packageGroup="/npm/acme/*")
    for kwargs, code in (({"restrictions": {"PUBLISH": "SOMETIMES"}}, "ValidationException"),
                         ({"restrictions": {"DOWNLOAD": "BLOCK"}}, "ValidationException"),
                         ({"addAllowedRepositories": [{"repositoryName": "nope", "originRestrictionType": "PUBLISH"}]},
                          "ResourceNotFoundException")):
        with pytest.raises(ClientError) as exc:
            c.update_package_group_origin_configuration(domain=domain, packageGroup="/npm/acme/*", **kwargs)
        assert _code(exc) == code, kwargs
    after = c.list_package_groups(domain=domain)["packageGroups"]
    assert [g["pattern"] for g in after] == [g["pattern"] for g in before] + ["/npm/acme/*"]
    pub = c.describe_package_group(domain=domain, packageGroup="/npm/@acme/*")["packageGroup"]
    assert pub["originConfiguration"]["restrictions"]["PUBLISH"]["mode"] == "INHERIT"
    assert pub["originConfiguration"]["restrictions"]["PUBLISH"]["repositoriesCount"] == 0


def test_group_tags_follow_the_group(server, domain):
    c = server.boto()
    arn = c.create_package_group(domain=domain, packageGroup="/npm/acme/*",
                                 tags=[{"key": "team", "value": "web"}])["packageGroup"]["arn"]
    assert arn.endswith(f"package-group/{domain}/npm/acme/%2a")
    assert c.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "web"}]
    c.delete_package_group(domain=domain, packageGroup="/npm/acme/*")
    with pytest.raises(ClientError) as exc:
        c.list_tags_for_resource(resourceArn=arn)
    assert _code(exc) == "ResourceNotFoundException"
    c.create_package_group(domain=domain, packageGroup="/npm/acme/*")
    assert c.list_tags_for_resource(resourceArn=arn)["tags"] == []


# ---- the enforcement functions the formats call --------------------------------------------------------

@pytest.fixture
def db(tmp_path):
    from app.config import settings_from_env
    from app.services.context import Arca
    from tests.support.server import fresh_database_url

    data = tmp_path / "data"
    data.mkdir()
    arca = Arca.from_settings(settings_from_env({"ARCA_DATA_DIR": str(data),
                                                 "ARCA_DATABASE_URL": fresh_database_url(data)}))
    return arca


def _setup(arca):
    from app.domain.coords import Coordinates
    from app.domain.status import PUBLISHED
    from app.services import domains, rows
    from app.services.context import Principal

    admin = Principal(0, "admin", True, f"arn:aws:iam::{arca.account}:user/admin")
    domains.create_domain(arca, admin, "acme")
    for r in ("proxy", "internal"):
        domains.create_repository(arca, admin, "acme", r)
    with arca.db.session() as s:
        repo = domains.get_repository(s, domains.get_domain(s, "acme"), "internal")
        p = rows.get_or_create_package(s, repo, Coordinates("npm", "acme", "ui"))
        rows.get_or_create_version(s, p, "1.0.0", status=PUBLISHED)


def test_check_upstream_allowed(db):
    from app.services import domains, origins

    _setup(db)
    with db.db.session() as s:
        d = domains.get_domain(s, "acme")
        proxy, internal = domains.get_repository(s, d, "proxy"), domains.get_repository(s, d, "internal")
        origins.check_upstream_allowed(s, d, proxy, "npm", "@acme", "ui", external=True)
        # published internally in `internal`: upstream is BLOCKed there by default (dependency confusion)
        with pytest.raises(AccessDenied) as exc:
            origins.check_upstream_allowed(s, d, internal, "npm", "acme", "ui", external=True)
        assert "upstream=BLOCK" in exc.value.message
        row = pg.create(s, d, "/npm/acme/*", None, None)
        row.restrictions = {"EXTERNAL_UPSTREAM": "BLOCK", "INTERNAL_UPSTREAM": "ALLOW_SPECIFIC_REPOSITORIES"}
        row.allowed_repositories = {"INTERNAL_UPSTREAM": ["proxy"]}
        s.flush()
        with pytest.raises(AccessDenied) as exc:
            origins.check_upstream_allowed(s, d, proxy, "npm", "acme", "left-pad", external=True)
        assert "EXTERNAL_UPSTREAM is BLOCKed" in exc.value.message
        origins.check_upstream_allowed(s, d, proxy, "npm", "acme", "left-pad", external=False)
        origins.check_upstream_allowed(s, d, proxy, "npm", "", "left-pad", external=True)  # not in the group
        origins.check_publish_allowed(s, d, proxy, "npm", "acme", "left-pad")
        row.restrictions = {**row.restrictions, "PUBLISH": "BLOCK"}
        s.flush()
        with pytest.raises(AccessDenied):
            origins.check_publish_allowed(s, d, internal, "npm", "@acme", "ui")
