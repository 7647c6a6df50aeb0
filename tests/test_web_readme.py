"""READMEs in the console as the public registries show them: Markdown (npm READMEs, PyPI
`text/markdown`), reStructuredText (PyPI's default), plain text; always sanitised. Real uploads
(twine, npm) and a real Chromium with the CSP switched off, so the sanitiser alone must hold."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from app.web.readme import kind_of, render
from tests.npm_support import setup_registry
from tests.pypi_support import make_wheel, twine_upload
from tests.web_support import browser, browser_login, console_user, shot, signed_in  # noqa: F401  (fixtures)

XSS_MARKDOWN = """# Widget

| column | other |
|--------|-------|
| cell   | `code` |

```python
print("fenced")
```

~~gone~~ and [a link](https://example.invalid/docs) and [bad](javascript:window.__xss=1)

![badge](https://img.example.invalid/badge.svg) ![plain](http://img.example.invalid/plain.png)
![data](data:image/png;base64,AAAA)

<script>window.__xss = 2</script>
<img src="https://img.example.invalid/x.png" onerror="window.__xss = 3">
<a href="https://example.invalid/" onclick="window.__xss = 4" target="_blank" rel="opener">raw html link</a>
<iframe src="https://example.invalid/"></iframe>
<form action="https://example.invalid/"><button>go</button></form>
<div style="position:fixed;top:0">overlay</div>
<svg><script>window.__xss = 5</script></svg>
"""

XSS_RST = """Widget
======

A *reStructuredText* description with `a link <https://example.invalid/rst>`_ and
`bad <javascript:window.__xss=6>`_.

.. code-block:: python

   print("rst code")

============  =========
rst table     second
============  =========
cell one      cell two
============  =========
"""


# ---- the renderer alone ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,ctype,kind", [
    ("npm", None, "markdown"), ("pypi", "text/markdown; charset=UTF-8; variant=GFM", "markdown"),
    ("pypi", "text/x-rst", "rst"), ("pypi", None, "rst"), ("pypi", "text/plain", "plain"),
    ("pypi", "application/evil", "plain"), ("maven", "text/markdown", "plain"), ("generic", None, "plain")])
def test_the_renderer_follows_the_declared_content_type(fmt, ctype, kind):
    assert kind_of(fmt, ctype) == kind


def test_markdown_renders_tables_and_fenced_code_and_drops_everything_active():
    html = str(render(XSS_MARKDOWN, "markdown"))
    assert "<table>" in html and "<td>cell</td>" in html and '<code class="language-python">' in html
    assert "<s>gone</s>" in html
    assert '<a href="https://example.invalid/docs" rel="nofollow noopener">a link</a>' in html
    assert '<img src="https://img.example.invalid/badge.svg" alt="badge">' in html
    for bad in ("<script", 'href="javascript', "onerror", "onclick", "<iframe", "<form", "style=", "http://img",
                "data:image", "window.__xss = ", 'target="_blank"', 'rel="opener"', "<svg"):
        assert bad not in html, bad
    assert "[bad](javascript:window.__xss=1)" in html  # a link markdown-it refuses stays text


def test_rst_renders_like_pypi_and_plain_text_stays_text():
    html = str(render(XSS_RST, "rst"))
    assert "<em>reStructuredText</em>" in html and "<table" in html and "rst code" in html
    assert 'href="https://example.invalid/rst" rel="nofollow noopener"' in html and "javascript:" not in html
    assert str(render("<b>not bold</b>", "plain")) == "<pre>&lt;b&gt;not bold&lt;/b&gt;</pre>"
    # rst docutils refuses (a raw directive) is shown as text, as PyPI would not render it either
    assert str(render(".. raw:: html\n\n   <script>x</script>\n", "rst")).startswith("<pre>")
    assert str(render("  \n", "markdown")) == ""


# ---- uploads, the console, the browser ------------------------------------------------------------------

def _version_path(domain, repo, fmt, name, version):
    return f"/ui/d/{domain}/r/{repo}/version?" + urlencode({"format": fmt, "name": name, "version": version})


def test_readmes_of_real_uploads_render_in_the_browser_and_stay_inert(server, browser, shot, unique,  # noqa: F811
                                                                       tmp_path):
    reg = setup_registry(server, tmp_path / "npm", unique)
    domain, repo = reg.domain, reg.repo
    pkg = tmp_path / "npm-src"
    from tests.npm_support import write_package

    write_package(pkg, "widget", "1.0.0")
    (pkg / "README.md").write_text(XSS_MARKDOWN)
    reg.npm("publish", cwd=pkg)
    pypi_url = server.endpoint(domain, "pypi", repo)
    rst_meta = ("Metadata-Version: 2.1\nName: rsty\nVersion: 1.0\nSummary: rst readme\n"
                "Description-Content-Type: text/x-rst\n\n" + XSS_RST)
    md_meta = ("Metadata-Version: 2.1\nName: mdy\nVersion: 1.0\nSummary: md readme\n"
               "Description-Content-Type: text/markdown\n\n" + XSS_MARKDOWN)
    twine_upload(pypi_url, reg.token, [make_wheel(tmp_path / "dist", "rsty", "1.0", metadata=rst_meta),
                                       make_wheel(tmp_path / "dist", "mdy", "1.0", metadata=md_meta)])
    user = f"reader{unique}"
    console_user(server, user, admin=True)
    pages = {"npm": _version_path(domain, repo, "npm", "widget", "1.0.0"),
             "pypi-md": _version_path(domain, repo, "pypi", "mdy", "1.0"),
             "pypi-rst": _version_path(domain, repo, "pypi", "rsty", "1.0")}
    c = signed_in(server, user)
    for path in pages.values():
        r = c.get(path)
        assert r.status_code == 200 and "img-src 'self' data: https:;" in r.headers["content-security-policy"]
        assert "script-src 'none'" in r.headers["content-security-policy"]

    ctx = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    page.route("https://**/*", lambda route: route.abort())  # nothing leaves the machine
    browser_login(page, server, user)
    for kind, path in pages.items():
        page.goto(server.url + path)
        readme = page.locator("div.readme")
        assert page.evaluate("window.__xss") is None, kind
        assert page.locator("script").count() == 0 and readme.locator("iframe, form, svg").count() == 0, kind
        assert readme.locator("a[href^='javascript']").count() == 0, kind
        for link in readme.locator("a").all():
            assert link.get_attribute("rel") == "nofollow noopener" and link.get_attribute("target") is None
        for img in readme.locator("img").all():  # one whose URL was not https keeps only its alt text
            assert (img.get_attribute("src") or "https://").startswith("https://"), kind
        shot(page, f"12-readme-{kind}")
        if kind == "pypi-rst":
            assert readme.locator("em").first.inner_text() == "reStructuredText"
            assert readme.locator("table td").first.inner_text() == "cell one"
        else:
            assert readme.locator("h1").inner_text() == "Widget"
            assert readme.locator("table td").first.inner_text() == "cell"
            assert "print(\"fenced\")" in readme.locator("pre code").inner_text()
            assert readme.locator("img[src]").count() == 2  # the https badge and the raw https <img>
    ctx.close()
