"""`GET /`: a browser is sent to the console, a program that asks for JSON learns the endpoints."""

from __future__ import annotations

import httpx

from tests.web_support import browser  # noqa: F401  (fixture)


def test_a_browser_opening_the_root_lands_on_the_console(server, browser):  # noqa: F811
    page = browser.new_page()
    try:
        resp = page.goto(server.url + "/")
        assert resp.status == 200
        assert page.url.startswith(server.url + "/ui/")  # the sign-in page of the console
        assert page.locator("input[name=username]").count() == 1
    finally:
        page.close()


def test_a_client_asking_for_json_gets_the_endpoints(server):
    r = httpx.get(server.url + "/", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["service"] == "arca"
    assert doc["endpoints"]["console"] == server.url + "/ui/"
    assert doc["endpoints"]["npm"] == server.url + "/{domain}/npm/{repository}/"
    assert doc["endpoints"]["controlPlane"].startswith(server.url + "/v1/")


def test_html_wins_only_when_the_client_prefers_it(server):
    # A client that names both but prefers JSON gets JSON; curl's */* gets JSON too (no redirect to
    # follow for a program); a browser's Accept gets the redirect.
    prefers_json = httpx.get(server.url + "/", headers={"Accept": "text/html;q=0.5, application/json"})
    assert prefers_json.status_code == 200 and prefers_json.json()["service"] == "arca"
    assert httpx.get(server.url + "/", headers={"Accept": "*/*"}).json()["service"] == "arca"
    chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
    r = httpx.get(server.url + "/", headers={"Accept": chrome})
    assert r.status_code == 302 and r.headers["location"] == "/ui/"
    assert httpx.head(server.url + "/", headers={"Accept": "application/json"}).status_code == 200


def test_other_methods_on_the_root_are_not_the_description(server):
    r = httpx.delete(server.url + "/")
    assert r.status_code == 405
