"""The web console end to end in a real headless Chromium: sign in, find a curl-uploaded Unfinished
Maven version, publish it (a token then downloads it), archive it (the download is refused), and
restore it. Screenshots of each main page go to $ARCA_TEST_ARTIFACTS/screenshots/ (see web_support.shot)."""

from __future__ import annotations

import re

from tests.web_support import browser, browser_login, console_user, get_maven, put_maven, sha256, shot  # noqa: F401

JAR = b"PK\x03\x04 pretend this is a jar " + bytes(range(256)) * 4
JAR_PATH = "com/acme/app/1.0.0/app-1.0.0.jar"


def _status(server, domain, repo) -> str:
    return server.boto().describe_package_version(domain=domain, repository=repo, format="maven",
                                                  namespace="com.acme", package="app",
                                                  packageVersion="1.0.0")["packageVersion"]["status"]


def test_publish_then_archive_a_curl_uploaded_maven_version(server, browser, shot, unique):
    domain, repo = f"d{unique}", "libs"
    server.create_repo(domain, repo, description="Shared Java libraries")
    server.create_repo(domain, "mirror")
    user = f"ops{unique}"
    console_user(server, user, admin=True)

    put = put_maven(server, domain, repo, JAR_PATH, JAR)
    assert put.status_code == 201, put.text
    assert _status(server, domain, repo) == "Unfinished"
    assert get_maven(server, domain, repo, JAR_PATH).status_code == 404  # not served before it is published

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(10_000)
    page.goto(server.url + "/ui/")
    shot(page, "01-sign-in")
    browser_login(page, server, user)
    shot(page, "02-domains")

    page.click(f"a:text-is('{domain}')")
    page.wait_for_selector("h1:has-text('Domain')")
    assert page.locator("table.list tbody tr").count() == 2
    shot(page, "03-domain-repositories")

    page.click(f"a:text-is('{repo}')")
    page.wait_for_selector("h1:has-text('Repository libs')")
    assert "Shared Java libraries" in page.inner_text("main")
    shot(page, "04-repository-packages")

    page.click("table.packages a")
    page.wait_for_selector("h2:has-text('Versions')")
    assert page.inner_text("table.versions tbody tr").split()[:2] == ["1.0.0", "Unfinished"]
    shot(page, "05-package-versions")

    page.click("table.versions a:text-is('1.0.0')")
    page.wait_for_selector("h2:has-text('Assets')")
    main = page.inner_text("main")
    assert "Unfinished" in main and "app-1.0.0.jar" in main and sha256(JAR) in main
    assert "<artifactId>app</artifactId>" in page.inner_text("figure.snippet pre")
    shot(page, "06-version-unfinished")

    page.click(".actions a:text-is('Publish')")
    page.wait_for_selector("section.confirm")
    assert _status(server, domain, repo) == "Unfinished"  # asking is not doing
    shot(page, "07-confirm-publish")
    page.click("section.confirm button:has-text('Yes, publish')")
    page.wait_for_selector("p.flash.ok")
    assert page.inner_text("p.flash.ok") == "Version 1.0.0 published."
    assert page.inner_text("h1 .badge") == "Published"
    shot(page, "08-version-published")

    assert _status(server, domain, repo) == "Published"
    got = get_maven(server, domain, repo, JAR_PATH)
    assert got.status_code == 200 and got.content == JAR

    page.click(".actions a:text-is('Archive')")
    page.click("section.confirm button:has-text('Yes, archive')")
    page.wait_for_selector("p.flash.ok")
    assert page.inner_text("h1 .badge") == "Archived"
    assert _status(server, domain, repo) == "Archived"
    assert get_maven(server, domain, repo, JAR_PATH).status_code == 404

    page.click(".actions a:text-is('Restore')")
    page.click("section.confirm button:has-text('Yes, restore')")
    page.wait_for_selector("p.flash.ok")
    assert page.inner_text("h1 .badge") == "Published"
    assert get_maven(server, domain, repo, JAR_PATH).status_code == 200

    # Connection instructions, with a token issued for the signed-in user.
    page.click("nav.crumbs a:text-is('libs')")
    page.click("a:text-is('Connection instructions')")
    page.wait_for_selector("h2:has-text('Connection instructions')")
    endpoint = server.endpoint(domain, "maven", repo)
    assert endpoint in page.inner_text("main")
    page.click("button:has-text('Get an authorization token')")
    page.wait_for_selector("p.flash.ok")
    settings = page.inner_text("main")
    token = re.search(r"export CODEARTIFACT_AUTH_TOKEN=(\S+)", settings).group(1)
    assert _download_with(server, endpoint + JAR_PATH, token) == 200
    shot(page, "09-connection-instructions")

    page.click(f"nav.crumbs a:text-is('{domain}')")
    page.fill("form.search input[name=q]", "ap")
    page.click("form.search button")
    page.wait_for_selector("h1:has-text('Search in')")
    assert page.locator("table.list tbody tr").count() == 1
    shot(page, "10-search")
    page.close()


def _download_with(server, url: str, token: str) -> int:
    import httpx

    return httpx.get(url, auth=("aws", token), timeout=30).status_code
