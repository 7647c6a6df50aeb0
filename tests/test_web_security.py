"""Console security: CSRF, escaping of untrusted text (checked in Chromium), permissions on pages,
buttons and forged POSTs, and the session cookie."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from tests.web_support import (Console, PASSWORD, browser, browser_login, console_user, csrf_of,  # noqa: F401
                               seed_version, set_password, shot, signed_in, text_of)

XSS = '<script>window.__xss = 1</script><img src="x" onerror="window.__xss = 2">'


def _describe(server, domain, repo, fmt, ns, name, version) -> dict:
    kw = {"namespace": ns} if ns else {}
    return server.boto().describe_package_version(domain=domain, repository=repo, format=fmt, package=name,
                                                  packageVersion=version, **kw)["packageVersion"]


def _version_path(domain, repo, fmt, ns, name, version, **extra) -> str:
    from urllib.parse import urlencode

    q = {"format": fmt, "namespace": ns, "name": name, "version": version, **extra}
    return f"/ui/d/{domain}/r/{repo}/version?" + urlencode({k: v for k, v in q.items() if v})


def _action(domain, repo, fmt, ns, name, version, action) -> tuple[str, dict]:
    return (f"/ui/d/{domain}/r/{repo}/version/action",
            {"format": fmt, "namespace": ns, "name": name, "version": version, "action": action})


def test_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(server, unique):
    domain, repo = f"d{unique}", "libs"
    server.create_repo(domain, repo)
    seed_version(server, domain, repo, "maven", "com.acme", "app", "1.0.0", status="Unfinished",
                 files={"app-1.0.0.jar": b"jar"})
    user = f"ops{unique}"
    console_user(server, user, admin=True)
    c = signed_in(server, user)
    path, form = _action(domain, repo, "maven", "com.acme", "app", "1.0.0", "publish")

    missing = c.post(path, form)
    assert missing.status_code == 403 and "security token" in missing.text
    wrong = c.post(path, form, csrf="0" * 64)
    assert wrong.status_code == 403
    # A token from another session is wrong here too.
    other = signed_in(server, user)
    assert c.post(path, form, csrf=other.csrf()).status_code == 403
    assert _describe(server, domain, repo, "maven", "com.acme", "app", "1.0.0")["status"] == "Unfinished"

    origin = c.post(f"/ui/d/{domain}/r/{repo}/package/origin",
                    {"format": "maven", "namespace": "com.acme", "name": "app", "publish": "BLOCK",
                     "upstream": "BLOCK"})
    assert origin.status_code == 403
    pkg = server.boto().describe_package(domain=domain, repository=repo, format="maven", namespace="com.acme",
                                         package="app")["package"]
    assert pkg["originConfiguration"]["restrictions"]["publish"] == "ALLOW"
    assert c.post(f"/ui/d/{domain}/r/{repo}/connect", {"client": "curl"}).status_code == 403

    # The same POST with this session's token works (the check is not refusing everything).
    ok = c.post(path, form, csrf=c.csrf())
    assert ok.status_code == 303
    assert _describe(server, domain, repo, "maven", "com.acme", "app", "1.0.0")["status"] == "Published"

    # Sign-in and sign-out forms are protected as well.
    fresh = Console(server)
    assert fresh.post("/ui/login", {"username": user, "password": PASSWORD}).status_code == 403
    assert c.post("/ui/logout", {}).status_code == 403
    assert c.get("/ui/").status_code == 200  # still signed in


def test_untrusted_readme_description_and_names_render_inert(server, browser, shot, unique):
    domain, repo = f"d{unique}", "web"
    server.create_repo(domain, repo, description="Front end " + XSS)
    seed_version(server, domain, repo, "npm", "", "evil-pkg", "1.0.0", summary="Summary " + XSS,
                 attributes={"readme": "# Title\n" + XSS + "\n<a href=\"javascript:window.__xss=3\">click</a>",
                             "dependencies": [{"package": "dep" + XSS, "dependencyType": "regular",
                                               "versionRequirement": "^1.0.0 " + XSS}],
                             "homePage": "javascript:window.__xss=4"},
                 files={"evil-pkg-1.0.0.tgz": b"tgz"})
    # A name no format accepts, written directly, is escaped all the same.
    seed_version(server, domain, repo, "generic", "ns" + XSS, "name" + XSS, "1" + XSS, summary=XSS)
    user = f"ops{unique}"
    console_user(server, user, admin=True)

    c = signed_in(server, user)
    pages = [f"/ui/d/{domain}", f"/ui/d/{domain}/r/{repo}", f"/ui/d/{domain}/search?q=name",
             _version_path(domain, repo, "npm", "", "evil-pkg", "1.0.0"),
             f"/ui/d/{domain}/r/{repo}/package?" + urlencode({"format": "generic", "namespace": "ns" + XSS,
                                                              "name": "name" + XSS}),
             _version_path(domain, repo, "generic", "ns" + XSS, "name" + XSS, "1" + XSS)]
    for path in pages:
        r = c.get(path)
        assert r.status_code == 200, (path, r.text)
        assert "<script>window.__xss" not in r.text and "<img src=\"x\"" not in r.text, path
        assert "script-src 'none'" in r.headers["content-security-policy"]
    version_html = c.get(pages[3]).text
    # The README is rendered (Markdown, as npm shows it) and sanitised: its script and handler are gone.
    readme = version_html.split('<div class="readme">', 1)[1].split("</div>", 1)[0]
    assert "<h1>Title</h1>" in readme and "__xss" not in readme and "<script" not in readme
    assert 'href="javascript:' not in version_html and "onerror" not in readme

    # In the browser, with the CSP switched off, so escaping alone must keep the scripts inert.
    ctx = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    browser_login(page, server, user)
    for path in pages:
        page.goto(server.url + path)
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("script").count() == 0, path
    page.goto(server.url + pages[3])
    assert page.inner_text("div.readme h1") == "Title"
    assert page.locator("main a[href^='javascript']").count() == 0
    shot(page, "11-untrusted-readme-escaped")
    ctx.close()


def _grant(server, domain: str, user: str, actions: list[str]) -> None:
    doc = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::000000000000:user/{user}"},
        "Action": actions, "Resource": "*"}]}
    server.boto().put_domain_permissions_policy(domain=domain, policyDocument=json.dumps(doc))


def test_reader_sees_no_action_buttons_and_forged_posts_are_403(server, unique):
    domain, repo = f"d{unique}", "libs"
    server.create_repo(domain, repo)
    seed_version(server, domain, repo, "maven", "com.acme", "app", "1.0.0", status="Unfinished",
                 files={"app-1.0.0.jar": b"jar"})
    reader = f"reader{unique}"
    console_user(server, reader)
    _grant(server, domain, reader, ["codeartifact:ReadFromRepository", "codeartifact:DescribeDomain",
                                    "codeartifact:DescribeRepository"])
    c = signed_in(server, reader)

    assert domain in text_of(c.get("/ui/").text)
    page = c.get(_version_path(domain, repo, "maven", "com.acme", "app", "1.0.0"))
    assert page.status_code == 200 and "Unfinished" in page.text
    assert 'class="actions"' not in page.text and "confirm=" not in page.text
    asked = c.get(_version_path(domain, repo, "maven", "com.acme", "app", "1.0.0", confirm="publish"))
    assert "version/action" not in asked.text  # no confirmation form either
    pkg = c.get(f"/ui/d/{domain}/r/{repo}/package?format=maven&namespace=com.acme&name=app")
    assert "package/origin" not in pkg.text
    connect = c.get(f"/ui/d/{domain}/r/{repo}/connect")
    assert connect.status_code == 200 and "Get an authorization token" not in connect.text

    token = c.csrf()
    for action, operation in (("publish", "UpdatePackageVersionsStatus"), ("archive", "UpdatePackageVersionsStatus"),
                              ("dispose", "DisposePackageVersions"), ("delete", "DeletePackageVersions")):
        path, form = _action(domain, repo, "maven", "com.acme", "app", "1.0.0", action)
        forged = c.post(path, form, csrf=token)
        assert forged.status_code == 403, (action, forged.text)
        assert operation in forged.text, (action, forged.text)  # the refusal names the permission it lacks
    origin = c.post(f"/ui/d/{domain}/r/{repo}/package/origin",
                    {"format": "maven", "namespace": "com.acme", "name": "app", "publish": "BLOCK",
                     "upstream": "BLOCK"}, csrf=token)
    assert origin.status_code == 403
    assert c.post(f"/ui/d/{domain}/r/{repo}/connect", {"client": "curl"}, csrf=token).status_code == 403
    assert _describe(server, domain, repo, "maven", "com.acme", "app", "1.0.0")["status"] == "Unfinished"
    restrictions = server.boto().describe_package(domain=domain, repository=repo, format="maven",
                                                  namespace="com.acme", package="app")["package"]
    assert restrictions["originConfiguration"]["restrictions"]["publish"] == "ALLOW"

    # Granted the status action, the same user gets the buttons and the POST works.
    _grant(server, domain, reader, ["codeartifact:ReadFromRepository", "codeartifact:DescribeDomain",
                                    "codeartifact:DescribeRepository", "codeartifact:UpdatePackageVersionsStatus"])
    page = c.get(_version_path(domain, repo, "maven", "com.acme", "app", "1.0.0"))
    assert "confirm=publish" in page.text and "confirm=dispose" not in page.text
    path, form = _action(domain, repo, "maven", "com.acme", "app", "1.0.0", "publish")
    assert c.post(path, form, csrf=token).status_code == 303
    assert _describe(server, domain, repo, "maven", "com.acme", "app", "1.0.0")["status"] == "Published"


def test_user_without_any_permission_sees_no_domain_and_gets_403(server, unique):
    domain, repo = f"d{unique}", "libs"
    server.create_repo(domain, repo, description="secret-description")
    seed_version(server, domain, repo, "maven", "com.acme", "app", "1.0.0")
    stranger = f"nobody{unique}"
    console_user(server, stranger)
    c = signed_in(server, stranger)
    assert domain not in c.get("/ui/").text
    for path in (f"/ui/d/{domain}", f"/ui/d/{domain}/r/{repo}", f"/ui/d/{domain}/r/{repo}/connect",
                 _version_path(domain, repo, "maven", "com.acme", "app", "1.0.0"),
                 f"/ui/d/{domain}/r/{repo}/package?format=maven&namespace=com.acme&name=app"):
        r = c.get(path)
        assert r.status_code == 403, path
        assert "secret-description" not in r.text
    search = c.get(f"/ui/d/{domain}/search?q=app")
    assert search.status_code == 403


def test_session_cookie_sign_in_and_sign_out(server, unique):
    user = f"ops{unique}"
    console_user(server, user)
    anon = Console(server)
    r = anon.get("/ui/d/whatever")
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")
    assert anon.get("/ui").status_code == 307

    bad = anon.login(user, "wrong password!")
    assert bad.status_code == 401 and "Wrong user name or password" in bad.text
    assert anon.login(f"ghost{unique}", PASSWORD).status_code == 401
    assert anon.get("/ui/").status_code == 303

    ok = anon.login(user)
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/ui" in lowered
    assert "max-age=43200" in lowered
    assert anon.get("/ui/").status_code == 200

    # A tampered cookie is not a session.
    forged = Console(server)
    value = anon.http.cookies.get("arca_ui")
    forged.http.cookies.set("arca_ui", value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
                            domain="127.0.0.1", path="/ui")
    assert forged.get("/ui/").status_code == 303

    # Changing the password ends existing sessions.
    other = signed_in(server, user)
    set_password(server, user, PASSWORD + "!")
    assert other.get("/ui/").status_code == 303
    set_password(server, user, PASSWORD)

    # Sign out.
    c = signed_in(server, user)
    out = c.post("/ui/logout", {}, csrf=c.csrf())
    assert out.status_code == 303 and "arca_ui=" in out.headers["set-cookie"]
    assert c.get("/ui/").status_code == 303

    # `next` only leads inside the console.
    for target in ("https://evil.example/", "//evil.example/ui/", "/ui/\\evil"):
        c2 = Console(server)
        token = csrf_of(c2.get("/ui/login").text)
        r = c2.post("/ui/login", {"username": user, "password": PASSWORD, "next": target}, csrf=token)
        assert r.headers["location"] == "/ui/", target
